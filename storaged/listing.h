/*
 * listing.h - the GET /v1/keys (and /v1/ns/<name>/keys) stream: key lines (core/skv_keyline.h) in
 * byte order, produced block by block from the store's index.
 *
 * Only this small state lives between blocks; every block rescans from
 * the last key sent, so memory does not grow with the listing and no
 * database lock is held while the client is slow to read.
 */
#ifndef STORAGED_LISTING_H
#define STORAGED_LISTING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "store.h"

typedef struct listing listing_t;

/* Keys of namespace sp (NULL: one never held, so none) starting with
 * prefix, strictly after `after` (empty: from the start), at most limit
 * of them (0: no limit).  NULL when out of memory. */
listing_t *listing_new(store_t *st, store_space_t *sp,
                       const unsigned char *prefix, size_t prefix_len,
                       const unsigned char *after, size_t after_len,
                       uint64_t limit);

/* Fill buf with up to max bytes of the listing.  Returns the byte count,
 * 0 at the end, or -1 on a store error (err filled). */
ssize_t listing_next(listing_t *l, char *buf, size_t max, char *err);

void listing_free(listing_t *l);

#endif
