/*
 * fuzz_listmerge.c - the merges of the nodes' key listings: the router's
 * pages (core/skv_listmerge.c, used by ngx_http_simplekv_list.c) and the
 * CLI's streamed merge in key order (cli/skv_scan.c, skv_merge_next, used
 * by repair, verify and rebalance).
 *
 * The bytes describe 1..5 nodes over a universe of up to 12 short keys
 * (bytes 'a', 'b', 0x00 and 0xff, so that keys are prefixes of each other
 * and sort by byte value), each node holding some of them with a version
 * and a tombstone flag, and a page size.  In "hostile" inputs the nodes
 * also send lines out of order, repeated, or at or before the cursor.
 *
 * Pages are fetched as the router does, from the start until a page says
 * there is no more, every node sending at most a page of its keys after
 * the cursor.  Checked on every page: at most `limit` keys, in strictly
 * increasing byte order (skv_bytes_cmp), all after the cursor and up to
 * the next one, the next cursor past the previous one (so paging ends),
 * only keys whose newest version is not a tombstone, and every such key
 * the page covers shown.  With well-behaved nodes, the pages together are
 * exactly the live keys.
 *
 * The CLI merge gets each node's listing as its text (skv_keyline_format)
 * and must give every key once, in increasing order, with each node's
 * copy present (with its version and flag) or absent as the node listed
 * it; a malformed line makes that node's copies unknown from there on.
 */
#include <string.h>

#include "fuzz.h"
#include "skv_bytes.h"
#include "skv_keyline.h"
#include "skv_listmerge.h"
#include "skv_scan.h"

#define MAX_NODES  5
#define MAX_KEYS   12
#define MAX_KLEN   4
#define MAX_LINES  (MAX_KEYS * 3)

typedef struct {
    unsigned char key[MAX_KLEN];
    size_t        len;
} key_t_;

typedef struct {
    bool          has;
    uint64_t      version;
    bool          tombstone;
} copy_t;

typedef struct {
    size_t   nkeys, nnodes, limit;
    bool     hostile;
    key_t_   keys[MAX_KEYS];           /* sorted, distinct */
    copy_t   copy[MAX_NODES][MAX_KEYS];
} world_t;

static skv_version_t
version_of(uint64_t v)
{
    skv_version_t ver;

    memset(&ver, 0, sizeof(ver));
    ver.hlc = v;     /* small positive numbers: compare as they are */
    return ver;
}

static int
key_cmp(const key_t_ *a, const key_t_ *b)
{
    return skv_bytes_cmp(a->key, a->len, b->key, b->len);
}

static void
build(world_t *w, fuzz_in_t *in)
{
    static const unsigned char alphabet[] = {'a', 'b', 0x00, 0xff};
    key_t_  k;
    size_t  i, j;

    w->hostile = fuzz_bool(in);
    w->nnodes = fuzz_range(in, 1, MAX_NODES);
    w->limit = fuzz_range(in, 1, 6);
    w->nkeys = 0;
    for (i = fuzz_range(in, 0, MAX_KEYS); i > 0; i--) {
        k.len = fuzz_range(in, 1, MAX_KLEN);
        for (j = 0; j < k.len; j++) {
            k.key[j] = alphabet[fuzz_u8(in) % 4];
        }
        /* insert sorted, once */
        for (j = 0; j < w->nkeys && key_cmp(&w->keys[j], &k) < 0; j++) {
        }
        if (j < w->nkeys && key_cmp(&w->keys[j], &k) == 0) {
            continue;
        }
        memmove(&w->keys[j + 1], &w->keys[j],
                (w->nkeys - j) * sizeof(k));
        w->keys[j] = k;
        w->nkeys++;
    }
    for (i = 0; i < w->nnodes; i++) {
        for (j = 0; j < w->nkeys; j++) {
            uint8_t b = fuzz_u8(in);

            w->copy[i][j].has = (b & 3) != 0;
            w->copy[i][j].version = 1 + (b >> 2) % 4;
            w->copy[i][j].tombstone = (b & 0x40) != 0;
        }
    }
}

/* Hidden when a copy at the newest version among entries is a tombstone. */
static bool
live_in(const skv_listentry_t *e, size_t n, const unsigned char *key,
        size_t len, bool *listed)
{
    const skv_listentry_t *best = NULL;
    bool                   dead = false;

    for (size_t i = 0; i < n; i++) {
        if (skv_bytes_cmp(e[i].key, e[i].key_len, key, len) != 0) {
            continue;
        }
        if (best == NULL || skv_version_cmp(&e[i].version, &best->version)
                            > 0)
        {
            best = &e[i];
            dead = e[i].tombstone;
        } else if (skv_version_cmp(&e[i].version, &best->version) == 0) {
            dead |= e[i].tombstone;
        }
    }
    *listed = best != NULL;
    return best != NULL && !dead;
}

static void
add_line(skv_listentry_t *e, size_t *n, const world_t *w, size_t node,
         size_t k)
{
    FUZZ_CHECK(*n < MAX_NODES * MAX_LINES);
    e[*n].key = w->keys[k].key;
    e[*n].key_len = w->keys[k].len;
    e[*n].version = version_of(w->copy[node][k].version);
    e[*n].tombstone = w->copy[node][k].tombstone;
    (*n)++;
}

static void
check_pages(const world_t *w, fuzz_in_t *in)
{
    skv_listentry_t  e[MAX_NODES * MAX_LINES], copy[MAX_NODES * MAX_LINES];
    skv_listmerge_t  m;
    skv_listpage_t   page;
    unsigned char    after[MAX_KLEN];
    size_t           after_len = 0, n, first, sent, i, k, pages = 0;
    key_t_           seen[MAX_KEYS];
    size_t           nseen = 0;
    bool             listed;

    for (;;) {
        skv_listmerge_init(&m, after, after_len, w->limit);
        n = 0;
        for (i = 0; i < w->nnodes; i++) {
            first = n;
            sent = 0;
            for (k = 0; k < w->nkeys && sent < w->limit; k++) {
                if (w->copy[i][k].has
                    && skv_bytes_cmp(w->keys[k].key, w->keys[k].len, after,
                                     after_len) > 0)
                {
                    add_line(e, &n, w, i, k);
                    sent++;
                }
            }
            if (w->hostile) {
                /* repeats, keys at or before the cursor, any order */
                for (k = fuzz_range(in, 0, 3); k > 0 && w->nkeys > 0; k--) {
                    size_t pick = fuzz_u8(in) % w->nkeys;

                    if (w->copy[i][pick].has) {
                        add_line(e, &n, w, i, pick);
                    }
                }
                for (k = first; k + 1 < n; k++) {
                    if (fuzz_bool(in)) {
                        skv_listentry_t t = e[k];

                        e[k] = e[k + 1];
                        e[k + 1] = t;
                    }
                }
            }
            /* the router: a full page is as many lines as it asked for */
            skv_listmerge_node(&m, e + first, n - first,
                               n - first >= w->limit);
        }
        memcpy(copy, e, n * sizeof(e[0]));
        skv_listmerge_page(&m, e, n, &page);

        FUZZ_CHECK(page.shown <= w->limit);
        for (i = 0; i < page.shown; i++) {
            FUZZ_CHECK(skv_bytes_cmp(e[i].key, e[i].key_len, after,
                                     after_len) > 0);
            if (i > 0) {
                FUZZ_CHECK(skv_bytes_cmp(e[i - 1].key, e[i - 1].key_len,
                                         e[i].key, e[i].key_len) < 0);
            }
            if (page.more) {
                FUZZ_CHECK(skv_bytes_cmp(e[i].key, e[i].key_len,
                                         page.cursor, page.cursor_len)
                           <= 0);
            }
            FUZZ_CHECK(live_in(copy, n, e[i].key, e[i].key_len, &listed));
            FUZZ_CHECK(!e[i].tombstone);
        }
        if (page.more) {
            FUZZ_CHECK(page.cursor != NULL
                       && skv_bytes_cmp(page.cursor, page.cursor_len,
                                        after, after_len) > 0);
        }
        /* every live key the page covers is on it */
        for (k = 0; k < w->nkeys; k++) {
            const key_t_ *key = &w->keys[k];
            bool          shown = false;

            if (skv_bytes_cmp(key->key, key->len, after, after_len) <= 0
                || (page.more
                    && skv_bytes_cmp(key->key, key->len, page.cursor,
                                     page.cursor_len) > 0)
                || !live_in(copy, n, key->key, key->len, &listed))
            {
                continue;
            }
            for (i = 0; i < page.shown && !shown; i++) {
                shown = skv_bytes_cmp(e[i].key, e[i].key_len, key->key,
                                      key->len) == 0;
            }
            FUZZ_CHECK(shown);
        }

        for (i = 0; i < page.shown; i++) {
            FUZZ_CHECK(nseen < MAX_KEYS);
            memcpy(seen[nseen].key, e[i].key, e[i].key_len);
            seen[nseen].len = e[i].key_len;
            if (nseen > 0) {
                FUZZ_CHECK(key_cmp(&seen[nseen - 1], &seen[nseen]) < 0);
            }
            nseen++;
        }
        if (!page.more) {
            break;
        }
        FUZZ_CHECK(page.cursor_len <= MAX_KLEN);
        memmove(after, page.cursor, page.cursor_len);
        after_len = page.cursor_len;
        FUZZ_CHECK(++pages <= MAX_KEYS + 1);
    }

    if (w->hostile) {
        return;
    }
    /* well-behaved nodes: the pages are exactly the live keys */
    k = 0;
    for (size_t j = 0; j < w->nkeys; j++) {
        skv_listentry_t all[MAX_NODES];
        size_t          na = 0;

        for (i = 0; i < w->nnodes; i++) {
            if (w->copy[i][j].has) {
                add_line(all, &na, w, i, j);
            }
        }
        if (live_in(all, na, w->keys[j].key, w->keys[j].len, &listed)) {
            FUZZ_CHECK(k < nseen && key_cmp(&seen[k], &w->keys[j]) == 0);
            k++;
        }
    }
    FUZZ_CHECK(k == nseen);
}

/* The CLI's merge over each node's listing text. */
static void
check_scan(const world_t *w, fuzz_in_t *in)
{
    skv_stream_t   s[MAX_NODES];
    skv_view_t     view[MAX_NODES];
    skv_keyline_t *line = malloc(sizeof(*line));
    char          *text = malloc(SKV_KEYLINE_MAX);
    unsigned char  key[SKV_KEY_MAX], prev[SKV_KEY_MAX];
    size_t         key_len, prev_len = 0, i, k, len, next[MAX_NODES];
    size_t         bad_at[MAX_NODES], lines[MAX_NODES], steps = 0;
    int            rc;

    FUZZ_CHECK(line != NULL && text != NULL);
    memset(s, 0, sizeof(s));
    for (i = 0; i < w->nnodes; i++) {
        s[i].buf = malloc(MAX_KEYS * SKV_KEYLINE_MAX + 8);
        FUZZ_CHECK(s[i].buf != NULL);
        s[i].eof = 1;
        /* hostile: one line may be damaged */
        bad_at[i] = w->hostile && fuzz_bool(in) ? fuzz_u8(in) % MAX_KEYS
                                                : (size_t) -1;
        lines[i] = 0;
        for (k = 0; k < w->nkeys; k++) {
            if (!w->copy[i][k].has) {
                continue;
            }
            line->version = version_of(w->copy[i][k].version);
            line->tombstone = w->copy[i][k].tombstone;
            memcpy(line->key, w->keys[k].key, w->keys[k].len);
            line->key_len = w->keys[k].len;
            len = skv_keyline_format(line, text, SKV_KEYLINE_MAX);
            FUZZ_CHECK(len > 0);
            if (lines[i] == bad_at[i]) {
                text[fuzz_u8(in) % (len - 1)] = (char) fuzz_u8(in);
            }
            memcpy(s[i].buf + s[i].len, text, len);
            s[i].len += len;
            lines[i]++;
        }
        next[i] = 0;
    }

    while ((rc = skv_merge_next(s, w->nnodes, key, &key_len, view)) == 1) {
        FUZZ_CHECK(++steps <= MAX_NODES * MAX_KEYS);
        /* a damaged "%00" may decode to three bytes */
        FUZZ_CHECK(key_len >= 1
                   && key_len <= (w->hostile ? 3 * MAX_KLEN : MAX_KLEN));
        if (!w->hostile && steps > 1) {
            FUZZ_CHECK(skv_bytes_cmp(prev, prev_len, key, key_len) < 0);
        }
        memcpy(prev, key, key_len);
        prev_len = key_len;
        for (i = 0; i < w->nnodes; i++) {
            /* the node's next listed key, as it sent them */
            while (next[i] < w->nkeys && !w->copy[i][next[i]].has) {
                next[i]++;
            }
            if (view[i].state == SKV_COPY_PRESENT) {
                FUZZ_CHECK(next[i] < w->nkeys);
                if (!w->hostile) {
                    FUZZ_CHECK(w->keys[next[i]].len == key_len
                               && memcmp(w->keys[next[i]].key, key,
                                         key_len) == 0);
                    FUZZ_CHECK(skv_version_cmp(&view[i].version,
                               &(skv_version_t) {
                                   .hlc = w->copy[i][next[i]].version})
                               == 0);
                    FUZZ_CHECK(view[i].tombstone
                               == (int) w->copy[i][next[i]].tombstone);
                }
                next[i]++;
            } else if (!w->hostile) {
                /* a well-formed listing that ended: never unknown */
                FUZZ_CHECK(view[i].state == SKV_COPY_ABSENT);
                FUZZ_CHECK(next[i] >= w->nkeys
                           || skv_bytes_cmp(w->keys[next[i]].key,
                                            w->keys[next[i]].len, key,
                                            key_len) > 0);
            }
        }
    }
    FUZZ_CHECK(rc == -1);
    if (!w->hostile) {
        /* every listed key was merged */
        for (i = 0; i < w->nnodes; i++) {
            while (next[i] < w->nkeys && !w->copy[i][next[i]].has) {
                next[i]++;
            }
            FUZZ_CHECK(next[i] == w->nkeys);
        }
    }
    for (i = 0; i < w->nnodes; i++) {
        skv_stream_free(&s[i]);
    }
    free(text);
    free(line);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_t in = {data, size};
    world_t  *w = malloc(sizeof(*w));

    FUZZ_CHECK(w != NULL);
    build(w, &in);
    check_pages(w, &in);
    check_scan(w, &in);
    free(w);
    return 0;
}
