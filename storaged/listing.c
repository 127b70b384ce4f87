/*
 * listing.c - the GET /v1/keys stream of one namespace (see listing.h).
 *
 * A key line may be longer than the space left in a block: the part that
 * did not fit waits in `line` and opens the next block.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "listing.h"
#include "skv_bytes.h"
#include "skv_key.h"
#include "skv_keyline.h"

/* Keys visited per store_scan call: bounds the time a cursor is open. */
#define SCAN_BATCH 256

struct listing {
    store_t       *store;
    store_space_t *space;                 /* NULL: a namespace never held */
    unsigned char  prefix[SKV_KEY_MAX];
    size_t         prefix_len;
    unsigned char  from[SKV_KEY_MAX];     /* where the next scan starts */
    size_t         from_len;
    bool           from_exclusive;
    uint64_t       remaining;             /* lines still allowed by limit */
    bool           eof;
    char           line[SKV_KEYLINE_MAX]; /* a line that did not fit yet */
    size_t         line_len;
    size_t         line_off;
    char          *out;                   /* the block being filled */
    size_t         out_cap;
    size_t         out_len;
};

listing_t *
listing_new(store_t *st, store_space_t *sp, const unsigned char *prefix,
            size_t prefix_len, const unsigned char *after, size_t after_len,
            uint64_t limit)
{
    listing_t *l;

    if (prefix_len > SKV_KEY_MAX || after_len > SKV_KEY_MAX) {
        return NULL;
    }
    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        return NULL;
    }
    l->store = st;
    l->space = sp;
    memcpy(l->prefix, prefix, prefix_len);
    l->prefix_len = prefix_len;
    l->remaining = limit > 0 ? limit : UINT64_MAX;

    /* Start at the later of the prefix (inclusive) and after (exclusive):
     * keys sharing a prefix are contiguous in byte order, so the scan ends
     * at the first key without it. */
    if (after_len > 0
        && skv_bytes_cmp(after, after_len, prefix, prefix_len) >= 0)
    {
        memcpy(l->from, after, after_len);
        l->from_len = after_len;
        l->from_exclusive = true;
    } else {
        memcpy(l->from, prefix, prefix_len);
        l->from_len = prefix_len;
        l->from_exclusive = false;
    }
    return l;
}

/* Copy as much of the pending line as fits into the block. */
static void
flush_line(listing_t *l)
{
    size_t n = l->line_len - l->line_off;

    if (n > l->out_cap - l->out_len) {
        n = l->out_cap - l->out_len;
    }
    memcpy(l->out + l->out_len, l->line + l->line_off, n);
    l->out_len += n;
    l->line_off += n;
}

static bool
visit(void *arg, const store_entry_t *e)
{
    listing_t     *l = arg;
    skv_keyline_t  kl;

    if (e->key_len < l->prefix_len
        || memcmp(e->key, l->prefix, l->prefix_len) != 0)
    {
        l->eof = true;
        return false;
    }
    kl.version = e->version;
    kl.tombstone = e->tombstone;
    memcpy(kl.key, e->key, e->key_len);
    kl.key_len = e->key_len;
    l->line_len = skv_keyline_format(&kl, l->line, sizeof(l->line));
    l->line_off = 0;
    flush_line(l);

    memcpy(l->from, e->key, e->key_len);
    l->from_len = e->key_len;
    l->from_exclusive = true;
    if (--l->remaining == 0) {
        l->eof = true;
        return false;
    }
    return l->out_len < l->out_cap;
}

ssize_t
listing_next(listing_t *l, char *buf, size_t max, char *err)
{
    size_t visited;

    l->out = buf;
    l->out_cap = max;
    l->out_len = 0;

    if (l->line_off < l->line_len) {
        flush_line(l);
    }
    while (!l->eof && l->out_len < l->out_cap) {
        if (store_scan(l->store, l->space, l->from, l->from_len,
                       l->from_exclusive, SCAN_BATCH, visit, l, &visited,
                       err) != STORE_OK)
        {
            return -1;
        }
        if (visited == 0) {
            l->eof = true;
        }
    }
    return (ssize_t) l->out_len;
}

void
listing_free(listing_t *l)
{
    free(l);
}
