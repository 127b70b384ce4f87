/*
 * store_index.c - the index entry: its two encodings (store_int.h), the
 * version history a write carries forward, and the answer to "did this
 * node ever hold version v of this key?" (docs/protocol.md,
 * "X-Simplekv-Held").
 *
 * Why a "no" is certain.  Every applied write replaces the current
 * version by a newer one and pushes the replaced version onto the
 * history, so the versions a key held form an increasing sequence and
 * the history is its most recent stretch.  A version that is not in the
 * history (nor current) was therefore never held if the history reaches
 * back to the first version (complete), or if it is newer than the oldest
 * recorded one: everything held before that one is older still.  Three
 * things break the premises, and each turns "no" into "unknown":
 *   - replacing an invalid future version (store.c) goes backwards: the
 *     entry is marked unordered for good, and then only a complete
 *     history gives "no";
 *   - a purged tombstone, or a removed copy, takes the entry, and so the
 *     history, with it: every version it held has a time part below the
 *     purge watermark (or now minus the grace), the floor below which
 *     there is no "no";
 *   - an entry of the legacy form has no history (complete is false).
 *
 * The origin maxima answer "no" where the history cannot.  A version is
 * (time, origin), and each router's clock is one origin.  For up to
 * INDEX_ORIGINS_MAX origins the entry keeps the newest version of that
 * origin the key held here (the maximum, so this holds unordered too): a
 * version above its origin's maximum was never held, nor was any version
 * of an origin the key never held, while no origin has fallen out of the
 * list (origins_complete).  That is the case of a router's first write to
 * a key that another router has overwritten many times since: older than
 * the history, but of a clock the key never held.  An origin that falls
 * out (the one with the oldest maximum) makes the list incomplete; with
 * the entry ordered, the maxima of the origins left stay exact, since
 * versions held later are newer.  Purges and removals take the list with
 * the entry, as they take the history (the purge floor covers them).
 */
#include <string.h>

#include "skv_bytes.h"
#include "store_int.h"

static void
put_version(unsigned char *p, const skv_version_t *v)
{
    skv_put_be64(p, v->hlc);
    skv_put_be64(p + 8, v->origin);
}

static void
get_version(const unsigned char *p, skv_version_t *v)
{
    v->hlc = skv_get_be64(p);
    v->origin = skv_get_be64(p + 8);
}

size_t
store_index_encode(unsigned char *out, const index_entry_t *e)
{
    unsigned  i;
    size_t    at;

    out[0] = INDEX_FORMAT;
    out[1] = (unsigned char) ((e->tombstone ? INDEX_TOMBSTONE : 0)
                              | (e->complete ? INDEX_COMPLETE : 0)
                              | (e->unordered ? INDEX_UNORDERED : 0)
                              | (e->origins_known ? INDEX_ORIGINS_KNOWN : 0)
                              | (e->origins_complete
                                 ? INDEX_ORIGINS_COMPLETE : 0));
    put_version(out + 2, &e->version);
    skv_put_be64(out + 18, e->value_len);
    out[26] = (unsigned char) e->n_history;
    at = INDEX_FIXED_SIZE;
    for (i = 0; i < e->n_history; i++, at += 16) {
        put_version(out + at, &e->history[i]);
    }
    out[at++] = (unsigned char) e->n_origins;
    for (i = 0; i < e->n_origins; i++, at += 16) {
        put_version(out + at, &e->origin_max[i]);
    }
    return at;
}

/* The 25-byte form written before the history existed: no history, and
 * nothing known about the versions before the current one. */
static int
decode_legacy(const unsigned char *p, index_entry_t *e)
{
    if (p[0] & ~0x01u) {
        return -1;
    }
    e->legacy = true;
    e->tombstone = (p[0] & 0x01u) != 0;
    get_version(p + 1, &e->version);
    e->value_len = skv_get_be64(p + 17);
    return 0;
}

int
store_index_decode(const DBT *data, index_entry_t *e)
{
    const unsigned char *p = data->data;
    unsigned             i, n, m;
    size_t               at;

    memset(e, 0, sizeof(*e));
    if (data->size == INDEX_LEGACY_SIZE) {
        if (decode_legacy(p, e) != 0) {
            return -1;
        }
        e->found = true;
        return 0;
    }
    if (data->size < INDEX_FIXED_SIZE
        || (p[0] != INDEX_FORMAT && p[0] != INDEX_FORMAT_2)
        || (p[1] & ~INDEX_FLAGS) || p[26] > INDEX_HISTORY_MAX)
    {
        return -1;
    }
    n = p[26];
    at = INDEX_FIXED_SIZE + 16u * n;
    m = 0;
    if (p[0] == INDEX_FORMAT_2) {
        if (data->size != at
            || (p[1] & (INDEX_ORIGINS_KNOWN | INDEX_ORIGINS_COMPLETE)))
        {
            return -1;
        }
    } else {
        if (data->size <= at) {
            return -1;
        }
        m = p[at++];
        if (m > INDEX_ORIGINS_MAX || data->size != at + 16u * m) {
            return -1;
        }
    }
    e->found = true;
    e->tombstone = (p[1] & INDEX_TOMBSTONE) != 0;
    e->complete = (p[1] & INDEX_COMPLETE) != 0;
    e->unordered = (p[1] & INDEX_UNORDERED) != 0;
    e->origins_known = (p[1] & INDEX_ORIGINS_KNOWN) != 0;
    e->origins_complete = (p[1] & INDEX_ORIGINS_COMPLETE) != 0;
    get_version(p + 2, &e->version);
    e->value_len = skv_get_be64(p + 18);
    e->n_history = n;
    for (i = 0; i < n; i++) {
        get_version(p + INDEX_FIXED_SIZE + 16 * i, &e->history[i]);
    }
    e->n_origins = m;
    for (i = 0; i < m; i++, at += 16) {
        get_version(p + at, &e->origin_max[i]);
    }
    return 0;
}

/* Raise v's origin's maximum to v, adding the origin if it is new; when
 * the list is full, the origin with the oldest maximum falls out. */
static void
origins_note(index_entry_t *e, const skv_version_t *v)
{
    unsigned i, oldest;

    for (i = 0; i < e->n_origins; i++) {
        if (e->origin_max[i].origin == v->origin) {
            if (skv_version_cmp(v, &e->origin_max[i]) > 0) {
                e->origin_max[i] = *v;
            }
            return;
        }
    }
    if (e->n_origins < INDEX_ORIGINS_MAX) {
        e->origin_max[e->n_origins++] = *v;
        return;
    }
    oldest = 0;
    for (i = 1; i < e->n_origins; i++) {
        if (skv_version_cmp(&e->origin_max[i], &e->origin_max[oldest]) < 0) {
            oldest = i;
        }
    }
    e->origin_max[oldest] = *v;
    e->origins_complete = false;
}

/* The origin maxima of an entry written before they existed (format 2 or
 * legacy), from what it records: exact for every origin its current
 * version and history hold when those are ordered (the newest of an
 * origin there is its newest ever), or complete when the history reaches
 * the first version; otherwise unknown. */
static void
origins_from_history(index_entry_t *neu, const index_entry_t *old)
{
    unsigned i;

    neu->n_origins = 0;
    neu->origins_complete = old->complete;
    neu->origins_known = old->complete || !old->unordered;
    if (!neu->origins_known) {
        return;
    }
    origins_note(neu, &old->version);
    for (i = 0; i < old->n_history; i++) {
        origins_note(neu, &old->history[i]);
    }
}

void
store_index_follow(index_entry_t *neu, const index_entry_t *old,
                   bool overruled)
{
    unsigned keep;

    if (!old->found) {
        /* The first version this node stores for the key (or the first
         * since a purge: store_purge_floor covers what came before). */
        neu->n_history = 0;
        neu->complete = true;
        neu->unordered = false;
        neu->origins_known = true;
        neu->origins_complete = true;
        neu->n_origins = 0;
        origins_note(neu, &neu->version);
        return;
    }
    if (old->origins_known) {
        neu->origins_known = true;
        neu->origins_complete = old->origins_complete;
        neu->n_origins = old->n_origins;
        memcpy(neu->origin_max, old->origin_max,
               old->n_origins * sizeof(old->origin_max[0]));
    } else {
        origins_from_history(neu, old);
    }
    if (neu->origins_known) {
        origins_note(neu, &neu->version);
    }
    keep = old->n_history;
    neu->complete = old->complete;
    if (keep == INDEX_HISTORY_MAX) {
        keep--;
        neu->complete = false;
    }
    neu->history[0] = old->version;
    memcpy(&neu->history[1], old->history, keep * sizeof(old->history[0]));
    neu->n_history = keep + 1;
    neu->unordered = old->unordered || overruled;
}

/* Whether the origin maxima show that the key never held v here. */
static bool
origins_never(const index_entry_t *e, const skv_version_t *v)
{
    unsigned i;

    for (i = 0; i < e->n_origins; i++) {
        if (e->origin_max[i].origin == v->origin) {
            /* an origin that fell out and came back restarted its
             * maximum: exact only if versions held later are newer */
            return skv_version_cmp(v, &e->origin_max[i]) > 0
                   && (e->origins_complete || !e->unordered);
        }
    }
    return e->origins_complete;
}

store_held_t
store_index_held(const index_entry_t *e, const skv_version_t *v,
                 uint64_t floor_ms)
{
    const skv_version_t *oldest;
    unsigned             i;
    bool                 never;

    if (skv_version_cmp(v, &e->version) == 0) {
        return STORE_HELD_YES;
    }
    for (i = 0; i < e->n_history; i++) {
        if (skv_version_cmp(v, &e->history[i]) == 0) {
            return STORE_HELD_YES;
        }
    }
    for (i = 0; i < e->n_origins; i++) {
        if (skv_version_cmp(v, &e->origin_max[i]) == 0) {
            return STORE_HELD_YES;
        }
    }
    never = e->complete;
    if (!never && !e->unordered && e->n_history > 0) {
        oldest = &e->history[e->n_history - 1];
        never = skv_version_cmp(v, oldest) > 0;
    }
    if (!never && e->origins_known) {
        never = origins_never(e, v);
    }
    if (!never || skv_version_ms(v) < floor_ms) {
        return STORE_HELD_UNKNOWN;
    }
    return STORE_HELD_NO;
}

uint64_t
store_purge_floor(store_t *st)
{
    uint64_t floor = atomic_load(&st->purged_below);
    uint64_t now;

    if (st->grace_ms > 0) {
        now = skv_clock_now_ms();
        if (now > st->grace_ms && now - st->grace_ms > floor) {
            floor = now - st->grace_ms;
        }
    }
    return floor;
}

uint64_t
store_index_floor(const index_entry_t *e)
{
    uint64_t top = skv_version_ms(&e->version);
    unsigned i;

    /* Ordered, the current version is the newest the key ever held (a
     * legacy entry assumes so too); the history is looked at anyway. */
    for (i = 0; i < e->n_history; i++) {
        if (skv_version_ms(&e->history[i]) > top) {
            top = skv_version_ms(&e->history[i]);
        }
    }
    for (i = 0; i < e->n_origins; i++) {
        if (skv_version_ms(&e->origin_max[i]) > top) {
            top = skv_version_ms(&e->origin_max[i]);
        }
    }
    return top + 1;
}
