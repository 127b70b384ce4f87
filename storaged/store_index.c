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
    unsigned i;

    out[0] = INDEX_FORMAT;
    out[1] = (unsigned char) ((e->tombstone ? INDEX_TOMBSTONE : 0)
                              | (e->complete ? INDEX_COMPLETE : 0)
                              | (e->unordered ? INDEX_UNORDERED : 0));
    put_version(out + 2, &e->version);
    skv_put_be64(out + 18, e->value_len);
    out[26] = (unsigned char) e->n_history;
    for (i = 0; i < e->n_history; i++) {
        put_version(out + INDEX_FIXED_SIZE + 16 * i, &e->history[i]);
    }
    return INDEX_FIXED_SIZE + 16 * (size_t) e->n_history;
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
    unsigned             i;

    memset(e, 0, sizeof(*e));
    if (data->size == INDEX_LEGACY_SIZE) {
        if (decode_legacy(p, e) != 0) {
            return -1;
        }
        e->found = true;
        return 0;
    }
    if (data->size < INDEX_FIXED_SIZE || p[0] != INDEX_FORMAT
        || (p[1] & ~(INDEX_TOMBSTONE | INDEX_COMPLETE | INDEX_UNORDERED))
        || p[26] > INDEX_HISTORY_MAX
        || data->size != INDEX_FIXED_SIZE + 16u * p[26])
    {
        return -1;
    }
    e->found = true;
    e->tombstone = (p[1] & INDEX_TOMBSTONE) != 0;
    e->complete = (p[1] & INDEX_COMPLETE) != 0;
    e->unordered = (p[1] & INDEX_UNORDERED) != 0;
    get_version(p + 2, &e->version);
    e->value_len = skv_get_be64(p + 18);
    e->n_history = p[26];
    for (i = 0; i < e->n_history; i++) {
        get_version(p + INDEX_FIXED_SIZE + 16 * i, &e->history[i]);
    }
    return 0;
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
        return;
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
    never = e->complete;
    if (!never && !e->unordered && e->n_history > 0) {
        oldest = &e->history[e->n_history - 1];
        never = skv_version_cmp(v, oldest) > 0;
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
    return top + 1;
}
