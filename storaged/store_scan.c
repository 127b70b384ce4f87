/*
 * store_scan.c - walks over the index: ordered scans for listings
 * (store_scan) and the background purge of old tombstones.  Index entries
 * of both forms (store_int.h) are read alike.
 *
 * The purge removes a tombstone only when its time part is below the
 * cutoff (now minus --tombstone-grace) and its version is below the
 * repair watermark (every replica was repaired past it), and never while
 * the epoch window is a transition (min < max): each purge checks the
 * window holding the fence, so a transition that begins is never raced.
 * It walks every namespace alike, one after the other in byte order of
 * their names; where it stands is a namespace name and a key in it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

store_rc_t
store_scan(store_t *st, store_space_t *sp, const unsigned char *from,
           size_t from_len, bool after, size_t max_entries, store_scan_fn fn,
           void *arg, size_t *visited, char *err)
{
    DBC           *cur;
    DBT            key, data;
    unsigned char  kbuf[SKV_KEY_MAX], dbuf[INDEX_ENTRY_MAX];
    store_entry_t  entry;
    index_entry_t  e;
    unsigned       attempt;
    int            ret;

    *visited = 0;
    if (sp == NULL) {
        return STORE_OK;        /* a namespace never held here: empty */
    }
    if (from_len > SKV_KEY_MAX) {
        snprintf(err, STORE_ERR_MAX, "scan start longer than a key");
        return STORE_ERR_INVALID;
    }
    memcpy(kbuf, from, from_len);

    for (attempt = 0;; attempt++) {
        /* No transaction: a cursor outside one holds a read lock only on
         * the page it stands on, and this one is closed before returning,
         * so a slow listing reader never blocks writers. */
        ret = sp->index->cursor(sp->index, NULL, &cur, 0);
        if (ret != 0) {
            return store_db_fail(st, ret, "index cursor", err);
        }
        memset(&key, 0, sizeof(key));
        memset(&data, 0, sizeof(data));
        key.data = kbuf;
        key.ulen = sizeof(kbuf);
        key.size = (u_int32_t) from_len;
        key.flags = DB_DBT_USERMEM;
        data.data = dbuf;
        data.ulen = sizeof(dbuf);
        data.flags = DB_DBT_USERMEM;

        ret = cur->get(cur, &key, &data, from_len > 0 ? DB_SET_RANGE
                                                      : DB_FIRST);
        if (ret == 0 && after && key.size == from_len
            && memcmp(kbuf, from, from_len) == 0)
        {
            ret = cur->get(cur, &key, &data, DB_NEXT);
        }

        while ((ret == 0 || ret == DB_BUFFER_SMALL)
               && *visited < max_entries)
        {
            if (ret != 0 || store_index_decode(&data, &e) != 0) {
                cur->close(cur);
                snprintf(err, STORE_ERR_MAX,
                         "corrupt index entry for a %u-byte key", key.size);
                return STORE_ERR_CORRUPT;
            }
            entry.key = kbuf;
            entry.key_len = key.size;
            entry.version = e.version;
            entry.tombstone = e.tombstone;
            (*visited)++;
            if (!fn(arg, &entry)) {
                break;
            }
            ret = cur->get(cur, &key, &data, DB_NEXT);
        }
        cur->close(cur);

        /* Stopped at max_entries before an entry too large to read: that
         * one is for the next call to report. */
        if (ret == 0 || ret == DB_NOTFOUND || ret == DB_BUFFER_SMALL) {
            return STORE_OK;
        }
        /* Only a deadlock before anything was visited is retried; after
         * that the caller would see entries twice. */
        if (!store_retryable(ret) || *visited > 0 || attempt == WRITE_RETRIES) {
            return store_db_fail(st, ret, "listing keys", err);
        }
        store_retry_pause(st, attempt);
    }
}

typedef struct {
    const skv_version_t *version;   /* the tombstone the scan saw */
    uint64_t             cutoff_ms;
} purge_arg_t;

static void
purge_body(store_t *st, store_space_t *sp, DB_TXN *txn, DBT *k,
           const index_entry_t *old, bool corrupt, void *arg,
           txn_step_t *step, char *err)
{
    const purge_arg_t *pa = arg;

    (void) err;
    step->rc = STORE_OK;
    /* Gone, or a newer write since the scan: not ours to remove.  An
     * unordered history may hold a version newer than the tombstone and
     * than the watermark: purging it would let a later "no" be wrong. */
    if (corrupt || !old->found || !old->tombstone || old->unordered
        || skv_version_cmp(&old->version, pa->version) != 0)
    {
        return;
    }
    /* The watermark first: raised in memory before the purge can be seen,
     * and saved in the same transaction. */
    step->what = "saving the purge watermark";
    step->ret = store_raise_purged_below(st, txn, pa->cutoff_ms);
    if (step->ret != 0) {
        return;
    }
    step->what = "purging a tombstone";
    step->ret = sp->records->del(sp->records, txn, k, 0);
    if (step->ret == DB_NOTFOUND) {
        step->ret = 0;
    }
    if (step->ret == 0) {
        step->ret = sp->index->del(sp->index, txn, k, 0);
    }
    step->commit = true;
}

static bool
in_transition(const store_epochs_t *w)
{
    return w->set && w->min < w->max;
}

/* Remove one tombstone if it is still the same (old) tombstone, and the
 * window is not a transition. */
static store_rc_t
purge_one(store_t *st, store_space_t *sp, const unsigned char *key,
          size_t key_len, const skv_version_t *version, uint64_t cutoff_ms,
          bool *purged, char *err)
{
    purge_arg_t    pa;
    store_epochs_t window;
    store_rc_t     rc = STORE_OK;

    *purged = false;
    pa.version = version;
    pa.cutoff_ms = cutoff_ms;
    store_fence_hold(st, &window);
    if (!in_transition(&window)) {
        rc = store_index_txn(st, sp, key, key_len, purge_body, &pa, purged,
                             err);
    }
    store_fence_exit(st);
    if (*purged) {
        store_purged_below_committed(st, cutoff_ms);
        atomic_fetch_sub(&sp->tombstones, 1);
        atomic_fetch_add(&st->purged, 1);
    }
    return rc;
}

typedef struct {
    uint64_t       cutoff_ms;
    skv_version_t  repaired;    /* the repair watermark */
    /* Candidates found by the scan, purged after the cursor is closed. */
    struct {
        unsigned char key[SKV_KEY_MAX];
        size_t        key_len;
        skv_version_t version;
    }              *cand;
    size_t          n_cand;
    size_t          scanned;    /* entries visited by this call so far */
    unsigned char   last[SKV_KEY_MAX];
    size_t          last_len;
} purge_scan_t;

static bool
purge_visit(void *arg, const store_entry_t *entry)
{
    purge_scan_t *ps = arg;

    memcpy(ps->last, entry->key, entry->key_len);
    ps->last_len = entry->key_len;
    if (entry->tombstone && skv_version_ms(&entry->version) < ps->cutoff_ms
        && skv_version_cmp(&entry->version, &ps->repaired) < 0)
    {
        memcpy(ps->cand[ps->n_cand].key, entry->key, entry->key_len);
        ps->cand[ps->n_cand].key_len = entry->key_len;
        ps->cand[ps->n_cand].version = entry->version;
        ps->n_cand++;
    }
    return true;
}

/* Scan sp from the purge position for up to max_scan entries and purge
 * the candidates; *ended when sp's last key was reached. */
static store_rc_t
purge_in_space(store_t *st, store_space_t *sp, purge_scan_t *ps,
               size_t max_scan, size_t *purged, bool *ended, char *err)
{
    size_t     visited, i;
    bool       done;
    store_rc_t rc;

    ps->n_cand = 0;
    rc = store_scan(st, sp, st->purge_key, st->purge_key_len,
                    st->purge_key_len > 0, max_scan, purge_visit, ps,
                    &visited, err);
    if (rc != STORE_OK) {
        return rc;
    }
    *ended = visited < max_scan;
    if (*ended) {
        st->purge_key_len = 0;
    } else {
        memcpy(st->purge_key, ps->last, ps->last_len);
        st->purge_key_len = ps->last_len;
    }
    for (i = 0; i < ps->n_cand; i++) {
        rc = purge_one(st, sp, ps->cand[i].key, ps->cand[i].key_len,
                       &ps->cand[i].version, ps->cutoff_ms, &done, err);
        if (rc != STORE_OK) {
            return rc;
        }
        *purged += done;
    }
    ps->scanned += visited;
    return STORE_OK;
}

store_rc_t
store_purge_tombstones(store_t *st, uint64_t cutoff_ms, size_t max_scan,
                       size_t *purged, bool *wrapped, char *err)
{
    purge_scan_t   ps;
    store_epochs_t window;
    store_space_t *sp;
    bool           ended;
    store_rc_t     rc = STORE_OK;

    *purged = 0;
    *wrapped = true;
    memset(&ps, 0, sizeof(ps));
    ps.cutoff_ms = cutoff_ms;
    store_epochs_get(st, &window);
    if (!store_repair_get(st, &ps.repaired) || in_transition(&window)) {
        return STORE_OK;        /* not allowed now: see the top */
    }
    *wrapped = false;
    ps.cand = malloc(max_scan * sizeof(*ps.cand));
    if (ps.cand == NULL) {
        snprintf(err, STORE_ERR_MAX, "out of memory");
        return STORE_ERR_DB;
    }

    /* From the namespace the last call stopped in (or the next one, by
     * name, if it was finished), on into the following ones while the
     * budget lasts. */
    while (ps.scanned < max_scan) {
        sp = store_space_next(st, st->purge_space, st->purge_space_len,
                              st->purge_space_done);
        if (sp == NULL) {
            /* Past the last namespace: start again from the first. */
            st->purge_space_len = 0;
            st->purge_space_done = false;
            st->purge_key_len = 0;
            *wrapped = true;
            break;
        }
        if (st->purge_space_done || sp->name_len != st->purge_space_len
            || memcmp(sp->name, st->purge_space, sp->name_len) != 0)
        {
            /* Another namespace: from its first key. */
            memcpy(st->purge_space, sp->name, sp->name_len);
            st->purge_space_len = sp->name_len;
            st->purge_space_done = false;
            st->purge_key_len = 0;
        }
        rc = purge_in_space(st, sp, &ps, max_scan - ps.scanned, purged,
                            &ended, err);
        if (rc != STORE_OK) {
            break;
        }
        st->purge_space_done = ended;
    }
    free(ps.cand);
    return rc;
}
