/*
 * skv_listmerge.h - one page of a listing merged from the nodes' sorted
 * key listings (the router's GET /<prefix>?list, ngx_http_simplekv_list.c).
 *
 * Each node is asked for at most L lines after the page's cursor.  The
 * merge sorts every line it got by key, keeps for each key its newest
 * version (so a key deleted on a quorum stays out however many stale
 * copies exist), leaves tombstones out of the page but lets them move the
 * cursor, and ends the page at the smallest last key of any node that
 * returned a full page of L lines: past it such a node may hold keys not
 * fetched yet.  Plain C, no allocation: tests/fuzz/fuzz_listmerge.c
 * drives it against a model of the nodes.
 */
#ifndef SKV_LISTMERGE_H
#define SKV_LISTMERGE_H

#include <stdbool.h>
#include <stddef.h>

#include "skv_version.h"

/* One line of one node's listing; key is the caller's (decoded). */
typedef struct {
    const unsigned char *key;
    size_t               key_len;
    skv_version_t        version;
    bool                 tombstone;
} skv_listentry_t;

typedef struct {
    const unsigned char *after;      /* the page's cursor ("" = start) */
    size_t               after_len;
    size_t               limit;      /* keys shown at most, >= 1 */
    bool                 bounded;    /* a node returned a full page */
    const unsigned char *bound;      /* then the page ends at this key */
    size_t               bound_len;
} skv_listmerge_t;

typedef struct {
    size_t               shown;      /* e[0 .. shown): the page, in order */
    bool                 more;       /* a next page starts after cursor */
    const unsigned char *cursor;     /* the last key the page covers */
    size_t               cursor_len;
} skv_listpage_t;

void skv_listmerge_init(skv_listmerge_t *m, const unsigned char *after,
                        size_t after_len, size_t limit);

/*
 * One node's lines e[0 .. n) as it sent them; full when it sent as many
 * lines as it was asked for.  Lines at or before the cursor are ignored
 * here and by the page (a node that sent only such lines bounds nothing,
 * so a page always moves past its cursor).
 */
void skv_listmerge_node(skv_listmerge_t *m, const skv_listentry_t *e,
                        size_t n, bool full);

/*
 * The page from every node's lines e[0 .. n) (in any order): sorts e and
 * moves the page's keys to e[0 .. page->shown).  page->more is set, with
 * page->cursor past the page's cursor, when a next page may hold keys;
 * the cursor then points at a key of e's caller.
 */
void skv_listmerge_page(const skv_listmerge_t *m, skv_listentry_t *e,
                        size_t n, skv_listpage_t *page);

#endif
