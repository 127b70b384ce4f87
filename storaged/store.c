/*
 * store.c - the storage engine's reads and writes of one key: a Berkeley
 * DB 5.3 transactional environment (opened in store_env.c; listings and
 * the tombstone purge are in store_scan.c, namespaces in store_space.c).
 *
 * Each namespace has two databases in the one environment, always written
 * in one transaction:
 *   records  DB_HASH   key -> skv record (core/skv_record.h: header+value)
 *   index    DB_BTREE  key -> index entry (flags, version, value length,
 *                      the versions held before: store_index.c)
 * The default namespace's are records.db and index.db (what a data
 * directory always held); namespace N's are ns-N.records.db and
 * ns-N.index.db.  The hash serves GET; the btree gives byte-ordered
 * listings and carries enough (version, tombstone flag) that a listing
 * never reads values.  The index entry is also what a write reads, with
 * DB_RMW, to decide "newer or not": the write lock taken by that read
 * makes the compare-and-write atomic against concurrent writers of the
 * same key.  store_index_txn is that one prologue (begin, read with
 * DB_RMW, retry on deadlock), shared by writes, removals
 * (store_remove_if_version) and the purge.
 *
 * Why a namespace has databases of its own rather than a prefix on its
 * keys: keys are arbitrary bytes, NUL and '/' included, so no separator
 * exists that a key cannot contain; "ns\0key" in one namespace could be
 * the key "key" of namespace "ns" or the key "ns\0key" of the default
 * one.  A length-prefixed encoding would be unambiguous but would change
 * every existing key of the default namespace (a migration) and make
 * listings, the purge and the counters decode and skip foreign keys.
 * Separate databases make a collision impossible by construction, leave
 * the default namespace's files exactly as they were, and give every
 * namespace its own byte-ordered index to list and purge.
 *
 * A held version too far in the future (more than max_skew_ms ahead of the
 * clock when a write reads it) counts as older than any write that is not
 * itself too far ahead: see held_version_invalid and docs/protocol.md.
 *
 * Durability: every write commits its transaction before it is
 * acknowledged (see store_env.c for the two modes).
 *
 * Counters for /v1/stats (keys, tombstones, bytes) are computed from each
 * namespace's index at open and then maintained in memory, per namespace,
 * after each commit, so that writers do not all contend on one counter
 * record; totals are sums over the namespaces.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "skv_bytes.h"
#include "skv_record.h"
#include "store_int.h"

store_rc_t
store_get(store_t *st, store_space_t *sp, const unsigned char *key,
          size_t key_len, store_item_t *item, char *err)
{
    DBT           k, data;
    store_rec_t   rec;
    char          why[STORE_ERR_MAX];
    unsigned      attempt;
    int           wlen;
    int           ret;

    memset(item, 0, sizeof(*item));
    if (sp == NULL) {
        return STORE_NOT_FOUND;     /* a namespace never held here */
    }
    memset(&k, 0, sizeof(k));
    k.data = (void *) key;
    k.size = (u_int32_t) key_len;

    for (attempt = 0;; attempt++) {
        memset(&data, 0, sizeof(data));
        data.flags = DB_DBT_MALLOC;
        ret = sp->records->get(sp->records, NULL, &k, &data, 0);
        if (!store_retryable(ret) || attempt == WRITE_RETRIES) {
            break;
        }
        store_retry_pause(st, attempt);
    }
    if (ret == DB_NOTFOUND) {
        return STORE_NOT_FOUND;
    }
    if (ret != 0) {
        return store_db_fail(st, ret, "reading a record", err);
    }

    if (store_record_decode(data.data, data.size, &rec, why) != 0) {
        free(data.data);
        wlen = (int) strnlen(why, 160);
        snprintf(err, STORE_ERR_MAX, "stored record of a %zu-byte key: %.*s",
                 key_len, wlen, why);
        return STORE_ERR_CORRUPT;
    }
    item->version = rec.version;
    item->tombstone = rec.tombstone;
    item->content_type = rec.content_type;
    item->content_type_len = rec.content_type_len;
    item->value = rec.chunked ? NULL : rec.value;
    item->value_len = (size_t) rec.value_len;
    item->has_sha256 = rec.has_sha256;
    memcpy(item->sha256, rec.sha256, STORE_SHA256_LEN);
    item->chunked = rec.chunked;
    item->upload_id = rec.upload_id;
    item->chunk_size = rec.chunk_size;
    item->buf = data.data;
    return STORE_OK;
}

void
store_item_free(store_item_t *item)
{
    free(item->buf);
    item->buf = NULL;
}

static void
count_change(store_space_t *sp, const index_entry_t *old,
             const index_entry_t *neu)
{
    if (old->found) {
        if (old->tombstone) {
            atomic_fetch_sub(&sp->tombstones, 1);
        } else {
            atomic_fetch_sub(&sp->keys, 1);
            atomic_fetch_sub(&sp->bytes, old->value_len);
        }
    }
    if (neu->found) {
        if (neu->tombstone) {
            atomic_fetch_add(&sp->tombstones, 1);
        } else {
            atomic_fetch_add(&sp->keys, 1);
            atomic_fetch_add(&sp->bytes, neu->value_len);
        }
    }
}

/* Read the key's index entry with DB_RMW: 0 (found or not), 1 when it
 * does not decode, else a Berkeley DB error. */
static int
read_index_rmw(store_space_t *sp, DB_TXN *txn, DBT *k, index_entry_t *old)
{
    unsigned char  buf[INDEX_ENTRY_MAX];
    DBT            data;
    int            ret;

    memset(old, 0, sizeof(*old));
    memset(&data, 0, sizeof(data));
    data.data = buf;
    data.ulen = sizeof(buf);
    data.flags = DB_DBT_USERMEM;
    ret = sp->index->get(sp->index, txn, k, &data, DB_RMW);
    if (ret == DB_NOTFOUND) {
        return 0;
    }
    if (ret == DB_BUFFER_SMALL
        || (ret == 0 && store_index_decode(&data, old) != 0))
    {
        memset(old, 0, sizeof(*old));
        return 1;
    }
    return ret;
}

/*
 * The one transaction prologue of every change to a key: begin, read the
 * key's index entry with a write lock (which makes compare-and-write
 * atomic against concurrent writers of the same key), run body, then
 * commit or abort as it decided.  A deadlock aborts the transaction, which
 * undoes any partial write, and starts again, up to WRITE_RETRIES times.
 * *committed tells the caller to update its in-memory counters.
 */
store_rc_t
store_index_txn(store_t *st, store_space_t *sp, const unsigned char *key,
                size_t key_len, txn_body_fn body, void *arg,
                bool *committed, char *err)
{
    DB_TXN      *txn;
    DBT          k;
    index_entry_t old;
    txn_step_t   step;
    unsigned     attempt;
    int          ret;

    *committed = false;
    memset(&k, 0, sizeof(k));
    k.data = (void *) key;
    k.size = (u_int32_t) key_len;
    for (attempt = 0;; attempt++) {
        ret = st->env->txn_begin(st->env, NULL, &txn, 0);
        if (ret != 0) {
            return store_db_fail(st, ret, "beginning a transaction", err);
        }
        memset(&step, 0, sizeof(step));
        step.what = "reading the index";
        step.ret = read_index_rmw(sp, txn, &k, &old);
        if (step.ret == 0 || step.ret == 1) {
            body(st, sp, txn, &k, &old, step.ret == 1, arg, &step, err);
        }
        if (step.ret == 0 && !step.commit) {
            txn->abort(txn);
            return step.rc;
        }
        if (step.ret == 0) {
            /* A failed commit frees the transaction and undoes it: there
             * is nothing to abort, and nothing was applied. */
            ret = txn->commit(txn, 0);
            if (ret != 0) {
                return store_db_fail(st, ret, "committing", err);
            }
            *committed = true;
            return step.rc;
        }
        txn->abort(txn);
        if (!store_retryable(step.ret) || attempt == WRITE_RETRIES) {
            return store_db_fail(st, step.ret, step.what, err);
        }
        store_retry_pause(st, attempt);
    }
}

/* A write: the new index entry and the record to store with it. */
typedef struct {
    index_entry_t        neu;      /* its history is filled in by the body */
    DBT                  rec;
    index_entry_t        old;      /* what it replaced, for the counters */
    skv_version_t        current;
    store_held_t         held;     /* UNCHANGED and CONFLICT: see store.h */
    bool                 overruled; /* old held an invalid future version */
    uint64_t             now_ms;    /* the clock when that was decided */
    uint64_t             upload_id; /* a chunked value's upload, or 0 */
    bool                 marked;    /* the old value's chunks are garbage */
} write_arg_t;

/*
 * True when the version the key holds is too far ahead of the clock to be
 * trusted while the incoming one is not: a version storaged accepted was at
 * most the skew ahead when written and the clock only moves forward, so
 * such a held version came from a node without the check, restored data or
 * a clock stepped back by more than the skew.  The incoming version was
 * checked on arrival; it is checked again against the same now_ms here so
 * that a clock stepped back in between cannot let one future version
 * replace another.  0 (no check): never.
 */
static bool
held_version_invalid(const store_t *st, const skv_version_t *held,
                     const skv_version_t *incoming, uint64_t now_ms)
{
    return st->max_skew_ms > 0
           && skv_version_too_far_ahead(held, now_ms, st->max_skew_ms)
           && !skv_version_too_far_ahead(incoming, now_ms, st->max_skew_ms);
}

static void
write_body(store_t *st, store_space_t *sp, DB_TXN *txn, DBT *k,
           const index_entry_t *old, bool corrupt, void *arg,
           txn_step_t *step, char *err)
{
    write_arg_t   *w = arg;
    unsigned char  enc[INDEX_ENTRY_MAX];
    DBT            data;
    int            cmp;

    if (corrupt) {
        snprintf(err, STORE_ERR_MAX, "corrupt index entry for a %u-byte key",
                 k->size);
        step->rc = STORE_ERR_CORRUPT;
        return;
    }
    w->overruled = false;
    if (old->found && st->max_skew_ms > 0) {
        w->now_ms = skv_clock_now_ms();
        w->overruled = held_version_invalid(st, &old->version,
                                            &w->neu.version, w->now_ms);
    }
    if (old->found && !w->overruled) {
        cmp = skv_version_cmp(&w->neu.version, &old->version);
        if (cmp <= 0) {
            w->current = old->version;
            w->held = cmp == 0 ? STORE_HELD_YES
                      : store_index_held(old, &w->neu.version,
                                         store_purge_floor(st));
            step->rc = cmp == 0 ? STORE_UNCHANGED : STORE_CONFLICT;
            return;
        }
    }
    w->marked = false;
    if (old->found) {
        uint64_t old_upload;

        /* The value replaced may be chunked: its chunks become garbage
         * in this transaction (store_chunks.c). */
        step->what = "reading the old record";
        step->ret = store_chunks_held_upload(sp, txn, k, true, &old_upload);
        if (step->ret != 0) {
            return;
        }
        if (old_upload != 0 && old_upload != w->upload_id) {
            step->what = "marking old chunks";
            step->ret = store_chunks_mark(sp, txn, old_upload);
            if (step->ret != 0) {
                return;
            }
            w->marked = true;
        }
    }
    if (w->upload_id != 0) {
        step->what = "completing an upload";
        step->ret = store_chunks_unmark(sp, txn, w->upload_id);
        if (step->ret != 0) {
            return;
        }
    }
    step->what = "writing the record";
    step->ret = sp->records->put(sp->records, txn, k, &w->rec, 0);
    if (step->ret != 0) {
        return;
    }
    store_index_follow(&w->neu, old, w->overruled);
    memset(&data, 0, sizeof(data));
    data.data = enc;
    data.size = (u_int32_t) store_index_encode(enc, &w->neu);
    step->what = "writing the index";
    step->ret = sp->index->put(sp->index, txn, k, &data, 0);
    w->old = *old;
    w->current = w->neu.version;
    step->rc = STORE_APPLIED;
    step->commit = true;
}

/* One line per write that replaced an invalid future version (after its
 * commit, so a retried transaction logs once). */
static void
log_overruled(size_t key_len, const skv_version_t *held,
              const skv_version_t *neu, uint64_t now_ms, uint64_t skew_ms)
{
    char     htext[SKV_VERSION_TEXT_LEN + 1];
    char     ntext[SKV_VERSION_TEXT_LEN + 1];
    uint64_t ahead = skv_version_ms(held) - now_ms;

    skv_version_format(held, htext);
    skv_version_format(neu, ntext);
    fprintf(stderr, "storaged: warning: a %zu-byte key held version %s, "
                    "%" PRIu64 ".%03u s ahead of this node's clock (more "
                    "than --max-clock-skew %" PRIu64 ".%03u s): treated as "
                    "invalid and replaced by version %s\n",
            key_len, htext, ahead / 1000, (unsigned) (ahead % 1000),
            skew_ms / 1000, (unsigned) (skew_ms % 1000), ntext);
}

/* The one write path: store record + index entry if neu is newer. */
static store_rc_t
write_if_newer(store_t *st, store_space_t *sp, const unsigned char *key,
               size_t key_len,
               const index_entry_t *neu, const void *record,
               size_t record_len, uint64_t upload_id, skv_version_t *current,
               store_held_t *held, char *err)
{
    write_arg_t w;
    store_rc_t  rc;
    bool        committed;

    memset(&w, 0, sizeof(w));
    w.neu = *neu;
    w.rec.data = (void *) record;
    w.rec.size = (u_int32_t) record_len;
    w.upload_id = upload_id;
    rc = store_index_txn(st, sp, key, key_len, write_body, &w, &committed,
                         err);
    if (committed) {
        count_change(sp, &w.old, neu);
        if (w.marked) {
            store_chunks_marked(sp);
        }
        if (upload_id != 0) {
            store_chunks_unmarked(sp);
        }
        if (w.overruled) {
            log_overruled(key_len, &w.old.version, &neu->version, w.now_ms,
                          st->max_skew_ms);
        }
    }
    if (rc == STORE_APPLIED || rc == STORE_UNCHANGED
        || rc == STORE_CONFLICT)
    {
        *current = w.current;
        *held = w.held;
    }
    return rc;
}

void
store_sha256(const void *data, size_t len,
             unsigned char out[STORE_SHA256_LEN])
{
    unsigned int n = STORE_SHA256_LEN;

    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1) {
        memset(out, 0, STORE_SHA256_LEN);
    }
}

store_rc_t
store_write_record(store_t *st, store_space_t *sp, const unsigned char *key,
                   size_t key_len, const store_rec_t *rec,
                   skv_version_t *current, store_held_t *held, char *err)
{
    index_entry_t  neu;
    unsigned char  small[REC_FIXED + SKV_CONTENT_TYPE_MAX];
    unsigned char *buf = small;
    size_t         len;
    store_rc_t     rc;

    if (rec->content_type_len > SKV_CONTENT_TYPE_MAX) {
        snprintf(err, STORE_ERR_MAX, "content type longer than %d bytes",
                 SKV_CONTENT_TYPE_MAX);
        return STORE_ERR_INVALID;
    }
    len = store_record_size(rec);
    if (len > sizeof(small)) {
        buf = malloc(len);
        if (buf == NULL) {
            snprintf(err, STORE_ERR_MAX, "out of memory for a %zu-byte "
                     "value", len);
            return STORE_ERR_DB;
        }
    }
    store_record_encode(rec, buf);
    memset(&neu, 0, sizeof(neu));
    neu.found = true;
    neu.tombstone = rec->tombstone;
    neu.version = rec->version;
    neu.value_len = rec->tombstone ? 0 : rec->value_len;
    rc = write_if_newer(st, sp, key, key_len, &neu, buf, len,
                        rec->chunked ? rec->upload_id : 0, current, held,
                        err);
    if (buf != small) {
        free(buf);
    }
    return rc;
}

store_rc_t
store_put_if_newer_sha(store_t *st, store_space_t *sp,
                       const unsigned char *key, size_t key_len,
                       const skv_version_t *version, const char *content_type,
                       size_t ct_len, const void *value, size_t value_len,
                       const unsigned char *sha256, skv_version_t *current,
                       store_held_t *held, char *err)
{
    store_rec_t rec;

    memset(&rec, 0, sizeof(rec));
    rec.version = *version;
    rec.has_sha256 = true;
    rec.value_len = value_len;
    if (sha256 != NULL) {
        memcpy(rec.sha256, sha256, STORE_SHA256_LEN);
    } else {
        store_sha256(value, value_len, rec.sha256);
    }
    rec.content_type = content_type;
    rec.content_type_len = ct_len;
    rec.value = value;
    rec.inline_len = value_len;
    return store_write_record(st, sp, key, key_len, &rec, current, held,
                              err);
}

store_rc_t
store_put_if_newer(store_t *st, store_space_t *sp, const unsigned char *key,
                   size_t key_len,
                   const skv_version_t *version, const char *content_type,
                   size_t ct_len, const void *value, size_t value_len,
                   skv_version_t *current, store_held_t *held, char *err)
{
    return store_put_if_newer_sha(st, sp, key, key_len, version,
                                  content_type, ct_len, value, value_len,
                                  NULL, current, held, err);
}

store_rc_t
store_delete_if_newer(store_t *st, store_space_t *sp,
                      const unsigned char *key, size_t key_len,
                      const skv_version_t *version, skv_version_t *current,
                      store_held_t *held, char *err)
{
    store_rec_t rec;

    memset(&rec, 0, sizeof(rec));
    rec.version = *version;
    rec.tombstone = true;
    return store_write_record(st, sp, key, key_len, &rec, current, held,
                              err);
}


/* A removal: the expected version, and what the body found. */
typedef struct {
    const skv_version_t *expected;
    index_entry_t        old;
    uint64_t             floor_ms;
    bool                 marked;    /* its chunks became garbage */
} remove_arg_t;

/* Drop the copy whose index entry old was read in txn: raise the purge
 * watermark above every version it records, mark its chunks garbage (if
 * mark_chunks: its record can be trusted to name them), delete record and
 * entry.  A removal and a quarantine both end here. */
static void
drop_copy(store_t *st, store_space_t *sp, DB_TXN *txn, DBT *k,
          const index_entry_t *old, bool mark_chunks, remove_arg_t *ra,
          txn_step_t *step)
{
    ra->floor_ms = store_index_floor(old);
    step->what = "raising the purge watermark";
    step->ret = store_raise_purged_below(st, txn, ra->floor_ms);
    ra->marked = false;
    if (step->ret == 0 && mark_chunks) {
        uint64_t old_upload;

        step->what = "reading the old record";
        step->ret = store_chunks_held_upload(sp, txn, k, true, &old_upload);
        if (step->ret == 0 && old_upload != 0) {
            step->what = "marking old chunks";
            step->ret = store_chunks_mark(sp, txn, old_upload);
            ra->marked = step->ret == 0;
        }
    }
    if (step->ret == 0) {
        step->what = "removing a record";
        step->ret = sp->records->del(sp->records, txn, k, 0);
        if (step->ret == DB_NOTFOUND) {
            step->ret = 0;
        }
    }
    if (step->ret == 0) {
        step->what = "removing an index entry";
        step->ret = sp->index->del(sp->index, txn, k, 0);
    }
    step->rc = STORE_APPLIED;
    step->commit = true;
}

/* Whether the entry old may be dropped as the copy of version expected
 * (NULL: whatever version it holds); else step->rc and err say why not. */
static bool
may_drop(DBT *k, const index_entry_t *old, bool corrupt,
         const skv_version_t *expected, txn_step_t *step, char *err)
{
    if (corrupt) {
        snprintf(err, STORE_ERR_MAX, "corrupt index entry for a %u-byte key",
                 k->size);
        step->rc = STORE_ERR_CORRUPT;
        return false;
    }
    if (!old->found) {
        step->rc = STORE_NOT_FOUND;
        return false;
    }
    step->rc = STORE_CONFLICT;
    if (expected != NULL && skv_version_cmp(&old->version, expected) != 0) {
        snprintf(err, STORE_ERR_MAX, "this node holds another version");
        return false;
    }
    if (old->unordered) {
        /* It once held a version from the future, maybe still in its
         * history or fallen off it: covering it would lift the purge
         * watermark into the future (see store.h). */
        snprintf(err, STORE_ERR_MAX, "the key once held a version from "
                 "the future (its history is out of order): its copy is "
                 "kept");
        return false;
    }
    return true;
}

static void
remove_body(store_t *st, store_space_t *sp, DB_TXN *txn, DBT *k,
            const index_entry_t *old, bool corrupt, void *arg,
            txn_step_t *step, char *err)
{
    remove_arg_t *ra = arg;

    ra->old = *old;
    if (may_drop(k, old, corrupt, ra->expected, step, err)) {
        drop_copy(st, sp, txn, k, old, true, ra, step);
    }
}

/* A quarantine: ra->expected is the damaged chunked version, or NULL when
 * the record itself is damaged (then it must still be: a write may have
 * replaced it since it was read). */
static void
quarantine_body(store_t *st, store_space_t *sp, DB_TXN *txn, DBT *k,
                const index_entry_t *old, bool corrupt, void *arg,
                txn_step_t *step, char *err)
{
    remove_arg_t *ra = arg;
    store_rec_t   rec;
    DBT           data;
    char          why[STORE_ERR_MAX];

    ra->old = *old;
    if (!may_drop(k, old, corrupt, ra->expected, step, err)) {
        if (step->rc == STORE_CONFLICT && old->unordered
            && (ra->expected == NULL
                || skv_version_cmp(&old->version, ra->expected) == 0))
        {
            step->rc = STORE_ERR_CORRUPT;   /* kept, damaged */
        }
        return;
    }
    if (ra->expected == NULL) {
        memset(&data, 0, sizeof(data));
        data.flags = DB_DBT_MALLOC;
        step->what = "reading the damaged record";
        step->ret = sp->records->get(sp->records, txn, k, &data, DB_RMW);
        if (step->ret == DB_NOTFOUND) {
            step->ret = 0;
            step->rc = STORE_NOT_FOUND;
            return;
        }
        if (step->ret != 0) {
            return;
        }
        if (store_record_decode(data.data, data.size, &rec, why) == 0) {
            free(data.data);
            snprintf(err, STORE_ERR_MAX, "the record is no longer damaged");
            step->rc = STORE_CONFLICT;
            return;
        }
        free(data.data);
    }
    /* A damaged record cannot be trusted to name its chunks: those of a
     * chunked value whose record is damaged stay (a leak, not a loss). */
    drop_copy(st, sp, txn, k, old, ra->expected != NULL, ra, step);
}

/* One transaction that drops a key's copy (body: remove_body or
 * quarantine_body, checking it still holds ra->expected), then the
 * bookkeeping both share; counter counts the drop. */
static store_rc_t
drop_key(store_t *st, store_space_t *sp, const unsigned char *key,
         size_t key_len, txn_body_fn body, remove_arg_t *ra,
         _Atomic uint64_t *counter, char *err)
{
    index_entry_t none;
    store_rc_t    rc;
    bool          committed;

    memset(&none, 0, sizeof(none));
    rc = store_index_txn(st, sp, key, key_len, body, ra, &committed, err);
    if (committed) {
        store_purged_below_committed(st, ra->floor_ms);
        count_change(sp, &ra->old, &none);
        atomic_fetch_add(counter, 1);
        if (ra->marked) {
            store_chunks_marked(sp);
        }
    }
    return rc;
}

store_rc_t
store_quarantine(store_t *st, store_space_t *sp, const unsigned char *key,
                 size_t key_len, const skv_version_t *damaged, char *err)
{
    remove_arg_t  ra;

    if (sp == NULL) {
        return STORE_NOT_FOUND;
    }
    memset(&ra, 0, sizeof(ra));
    ra.expected = damaged;
    return drop_key(st, sp, key, key_len, quarantine_body, &ra,
                    &st->corrupt_values, err);
}

store_rc_t
store_remove_if_version(store_t *st, store_space_t *sp,
                        const unsigned char *key, size_t key_len,
                        const skv_version_t *expected, skv_version_t *current,
                        char *err)
{
    remove_arg_t  ra;
    store_rc_t    rc;

    if (sp == NULL) {
        return STORE_NOT_FOUND;     /* a namespace never held here */
    }
    memset(&ra, 0, sizeof(ra));
    ra.expected = expected;
    rc = drop_key(st, sp, key, key_len, remove_body, &ra, &st->removed, err);
    if (rc == STORE_CONFLICT) {
        *current = ra.old.version;
    }
    return rc;
}
