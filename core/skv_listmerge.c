/*
 * skv_listmerge.c - one page of a listing merged from the nodes' key
 * listings (see skv_listmerge.h).
 */
#include <stdlib.h>

#include "skv_bytes.h"
#include "skv_listmerge.h"

void
skv_listmerge_init(skv_listmerge_t *m, const unsigned char *after,
                   size_t after_len, size_t limit)
{
    m->after = after;
    m->after_len = after_len;
    m->limit = limit > 0 ? limit : 1;
    m->bounded = false;
    m->bound = NULL;
    m->bound_len = 0;
}

static bool
past_cursor(const skv_listmerge_t *m, const skv_listentry_t *e)
{
    return skv_bytes_cmp(e->key, e->key_len, m->after, m->after_len) > 0;
}

void
skv_listmerge_node(skv_listmerge_t *m, const skv_listentry_t *e, size_t n,
                   bool full)
{
    const skv_listentry_t *last = NULL;

    if (!full) {
        return;
    }
    /* its largest key: the last one, for a node that sorts as it should */
    for (size_t i = 0; i < n; i++) {
        if (past_cursor(m, &e[i])
            && (last == NULL
                || skv_bytes_cmp(e[i].key, e[i].key_len, last->key,
                                 last->key_len) > 0))
        {
            last = &e[i];
        }
    }
    if (last != NULL
        && (!m->bounded
            || skv_bytes_cmp(last->key, last->key_len, m->bound,
                             m->bound_len) < 0))
    {
        m->bound = last->key;
        m->bound_len = last->key_len;
        m->bounded = true;
    }
}

/* By key, then newest version first (a tombstone first on a tie, so
 * equal inputs always give the same page). */
static int
entry_cmp(const void *one, const void *two)
{
    const skv_listentry_t *a = one, *b = two;
    int                    rc;

    rc = skv_bytes_cmp(a->key, a->key_len, b->key, b->key_len);
    if (rc != 0) {
        return rc;
    }
    rc = skv_version_cmp(&b->version, &a->version);
    if (rc != 0) {
        return rc;
    }
    return (int) b->tombstone - (int) a->tombstone;
}

void
skv_listmerge_page(const skv_listmerge_t *m, skv_listentry_t *e, size_t n,
                   skv_listpage_t *page)
{
    const unsigned char *prev = NULL;
    size_t               prev_len = 0, i;

    if (n > 1) {
        qsort(e, n, sizeof(*e), entry_cmp);
    }
    page->shown = 0;
    page->more = m->bounded;
    page->cursor = NULL;
    page->cursor_len = 0;

    for (i = 0; i < n; i++) {
        if (!past_cursor(m, &e[i])) {
            continue;
        }
        /* older copies of the same key: the first (newest) decided */
        if (prev != NULL
            && skv_bytes_cmp(prev, prev_len, e[i].key, e[i].key_len) == 0)
        {
            continue;
        }
        prev = e[i].key;
        prev_len = e[i].key_len;

        if (m->bounded
            && skv_bytes_cmp(e[i].key, e[i].key_len, m->bound,
                             m->bound_len) > 0)
        {
            break;
        }
        if (page->shown == m->limit) {
            page->more = true;
            break;
        }
        /* the page covers this key, shown or not */
        page->cursor = e[i].key;
        page->cursor_len = e[i].key_len;
        if (!e[i].tombstone) {
            e[page->shown++] = e[i];
        }
    }

    if (page->more && page->cursor == NULL) {
        /* cannot happen (the bound is a line past the cursor, and the
         * page covers at least it), but never send the cursor back */
        page->cursor = m->bound;
        page->cursor_len = m->bound_len;
    }
}
