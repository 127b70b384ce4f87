/*
 * store_meta.c - meta.db and the epoch fence.
 *
 * meta.db (DB_BTREE) holds up to three records, and one per namespace:
 *   purged_below      8 bytes, big-endian: the purge watermark (ms since
 *                     the clock epoch; store_int.h, purged_below)
 *   epochs            16 bytes: the accepted epoch window, min then max,
 *                     big-endian
 *   repair_watermark  16 bytes: a version, hlc then origin, big-endian
 *   ns:<name>         empty: namespace <name> exists (store_space.c); written
 *                     in the transaction that creates its databases, and
 *                     never removed
 * All of them outlive restarts and changes of the command line.
 *
 * The purge watermark is raised inside the transaction that drops an index
 * entry (a purge, a removal), read there with a write lock so that two
 * raisers never lower it.  The window and the repair watermark are set by
 * the membership tools' rare requests: each is committed with DB_TXN_SYNC
 * (on disk whatever --durability says) before it takes effect in memory
 * and before the answer, so what a node answered survives a crash and a
 * power loss.  One mutex serialises those setters (compare, commit,
 * publish), so that concurrent setters cannot move a value backwards.
 *
 * The fence (struct store): every kv request holds it shared from its
 * epoch check to its answer, each purge from its window check to its
 * commit; a new window is published under it exclusively, after the
 * commit.  So when store_epochs_set returns, every request still running
 * was admitted under the new window.  Lock order: the fence before any
 * Berkeley DB lock; the setters commit before they take it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "skv_bytes.h"
#include "store_int.h"

#define PURGED_BELOW_KEY  "purged_below"
#define EPOCHS_KEY        "epochs"
#define REPAIR_KEY        "repair_watermark"
#define ALIVE_KEY         "last_alive_ms"
#define SPACE_KEY_PREFIX  "ns:"
#define SPACE_KEY_MAX     (sizeof(SPACE_KEY_PREFIX) - 1 + STORE_SPACE_NAME_MAX)

/* ---- records ------------------------------------------------------------ */

static void
meta_key(DBT *k, const char *name)
{
    memset(k, 0, sizeof(*k));
    k->data = (void *) name;
    k->size = (u_int32_t) strlen(name);
}

/* Read a record of exactly size bytes: 0, DB_NOTFOUND, EINVAL when its
 * size is wrong, or a Berkeley DB error. */
static int
meta_read(store_t *st, DB_TXN *txn, const char *name, unsigned char *buf,
          size_t size, u_int32_t flags)
{
    DBT k, data;
    int ret;

    meta_key(&k, name);
    memset(&data, 0, sizeof(data));
    data.data = buf;
    data.ulen = (u_int32_t) size;
    data.flags = DB_DBT_USERMEM;
    ret = st->meta->get(st->meta, txn, &k, &data, flags);
    if (ret == DB_BUFFER_SMALL || (ret == 0 && data.size != size)) {
        return EINVAL;
    }
    return ret;
}

static int
meta_write(store_t *st, DB_TXN *txn, const char *name,
           const unsigned char *buf, size_t size)
{
    DBT k, data;

    meta_key(&k, name);
    memset(&data, 0, sizeof(data));
    data.data = (void *) buf;
    data.size = (u_int32_t) size;
    return st->meta->put(st->meta, txn, &k, &data, 0);
}

/* One record in its own transaction, flushed to disk at commit. */
static store_rc_t
meta_commit(store_t *st, const char *name, const unsigned char *buf,
            size_t size, char *err)
{
    DB_TXN   *txn;
    unsigned  attempt;
    int       ret;

    for (attempt = 0;; attempt++) {
        ret = st->env->txn_begin(st->env, NULL, &txn, 0);
        if (ret != 0) {
            return store_db_fail(st, ret, "beginning a transaction", err);
        }
        ret = meta_write(st, txn, name, buf, size);
        if (ret == 0) {
            /* A failed commit undoes the transaction and frees it. */
            ret = txn->commit(txn, DB_TXN_SYNC);
            return ret == 0 ? STORE_OK
                            : store_db_fail(st, ret, "committing meta.db",
                                            err);
        }
        txn->abort(txn);
        if (!store_retryable(ret) || attempt == WRITE_RETRIES) {
            return store_db_fail(st, ret, "writing meta.db", err);
        }
        store_retry_pause(st, attempt);
    }
}

/* *found false when the record is absent. */
static store_rc_t
load_one(store_t *st, const char *name, unsigned char *buf, size_t size,
         bool *found, char *err)
{
    int ret = meta_read(st, NULL, name, buf, size, 0);

    *found = ret == 0;
    if (ret == 0 || ret == DB_NOTFOUND) {
        return STORE_OK;
    }
    if (ret == EINVAL) {
        snprintf(err, STORE_ERR_MAX, "meta.db: corrupt %s record", name);
        return STORE_ERR_CORRUPT;
    }
    return store_db_fail(st, ret, "reading meta.db", err);
}

store_rc_t
store_meta_load(store_t *st, char *err)
{
    unsigned char buf[16];
    bool          found;
    store_rc_t    rc;

    rc = load_one(st, PURGED_BELOW_KEY, buf, 8, &found, err);
    if (rc == STORE_OK && found) {
        atomic_store(&st->purged_below, skv_get_be64(buf));
        atomic_store(&st->purged_below_saved, skv_get_be64(buf));
    }
    if (rc == STORE_OK) {
        rc = load_one(st, EPOCHS_KEY, buf, 16, &found, err);
    }
    if (rc == STORE_OK && found) {
        st->epochs_set = true;
        st->epoch_min = skv_get_be64(buf);
        st->epoch_max = skv_get_be64(buf + 8);
        if (st->epoch_min > st->epoch_max) {
            snprintf(err, STORE_ERR_MAX, "meta.db: corrupt %s record: "
                     "min above max", EPOCHS_KEY);
            return STORE_ERR_CORRUPT;
        }
    }
    if (rc == STORE_OK) {
        rc = load_one(st, REPAIR_KEY, buf, 16, &found, err);
    }
    if (rc == STORE_OK && found) {
        st->repair_set = true;
        st->repair.hlc = skv_get_be64(buf);
        st->repair.origin = skv_get_be64(buf + 8);
    }
    if (rc == STORE_OK) {
        rc = load_one(st, ALIVE_KEY, buf, 8, &found, err);
    }
    if (rc == STORE_OK && found) {
        st->alive_set = true;
        st->alive_ms = skv_get_be64(buf);
    }
    return rc;
}

/* ---- liveness ----------------------------------------------------------- */

store_rc_t
store_alive_mark(store_t *st, uint64_t now_ms, char *err)
{
    unsigned char buf[8];

    skv_put_be64(buf, now_ms);
    return meta_commit(st, ALIVE_KEY, buf, sizeof(buf), err);
}

bool
store_alive_last(store_t *st, uint64_t *ms)
{
    *ms = st->alive_ms;
    return st->alive_set;
}

/* ---- namespace names ---------------------------------------------------- */

int
store_meta_add_space(store_t *st, DB_TXN *txn, const char *name, size_t len)
{
    char buf[SPACE_KEY_MAX];
    DBT  k, data;
    size_t plen = sizeof(SPACE_KEY_PREFIX) - 1;

    memcpy(buf, SPACE_KEY_PREFIX, plen);
    memcpy(buf + plen, name, len);
    memset(&k, 0, sizeof(k));
    k.data = buf;
    k.size = (u_int32_t) (plen + len);
    memset(&data, 0, sizeof(data));
    return st->meta->put(st->meta, txn, &k, &data, 0);
}

store_rc_t
store_meta_load_spaces(store_t *st,
                       store_rc_t (*fn)(store_t *st, const char *name,
                                        size_t len, char *err),
                       char *err)
{
    DBC        *cur;
    DBT         k, data;
    char        buf[SPACE_KEY_MAX];
    size_t      plen = sizeof(SPACE_KEY_PREFIX) - 1;
    store_rc_t  rc = STORE_OK;
    int         ret;

    ret = st->meta->cursor(st->meta, NULL, &cur, 0);
    if (ret != 0) {
        return store_db_fail(st, ret, "meta.db cursor", err);
    }
    memset(&k, 0, sizeof(k));
    memset(&data, 0, sizeof(data));
    memcpy(buf, SPACE_KEY_PREFIX, plen);
    k.data = buf;
    k.size = (u_int32_t) plen;
    k.ulen = sizeof(buf);
    k.flags = DB_DBT_USERMEM;
    data.flags = DB_DBT_PARTIAL;    /* the value is not needed */
    ret = cur->get(cur, &k, &data, DB_SET_RANGE);
    while (ret == 0 && k.size >= plen
           && memcmp(buf, SPACE_KEY_PREFIX, plen) == 0)
    {
        if (!store_space_name_valid(buf + plen, k.size - plen)) {
            snprintf(err, STORE_ERR_MAX, "meta.db: corrupt namespace "
                     "record (a %u-byte name that is not a namespace "
                     "name)", (unsigned) (k.size - plen));
            rc = STORE_ERR_CORRUPT;
            break;
        }
        rc = fn(st, buf + plen, k.size - plen, err);
        if (rc != STORE_OK) {
            break;
        }
        ret = cur->get(cur, &k, &data, DB_NEXT);
    }
    if (rc == STORE_OK && ret == DB_BUFFER_SMALL) {
        /* A key longer than any namespace record: past them ("ns:" then
         * 64 name bytes is the longest), so not one of them. */
        ret = DB_NOTFOUND;
    }
    cur->close(cur);
    if (rc == STORE_OK && ret != 0 && ret != DB_NOTFOUND) {
        rc = store_db_fail(st, ret, "reading meta.db", err);
    }
    return rc;
}

/* ---- the purge watermark ------------------------------------------------ */

int
store_raise_purged_below(store_t *st, DB_TXN *txn, uint64_t floor_ms)
{
    unsigned char buf[8];
    int           ret;

    /* In memory first: raised before the drop can be seen. */
    store_atomic_max(&st->purged_below, floor_ms);
    if (atomic_load(&st->purged_below_saved) >= floor_ms) {
        return 0;
    }
    ret = meta_read(st, txn, PURGED_BELOW_KEY, buf, sizeof(buf), DB_RMW);
    if (ret == 0 && skv_get_be64(buf) >= floor_ms) {
        return 0;
    }
    if (ret != 0 && ret != DB_NOTFOUND) {
        return ret;
    }
    skv_put_be64(buf, floor_ms);
    return meta_write(st, txn, PURGED_BELOW_KEY, buf, sizeof(buf));
}

void
store_purged_below_committed(store_t *st, uint64_t floor_ms)
{
    store_atomic_max(&st->purged_below_saved, floor_ms);
}

/* ---- the epoch fence ---------------------------------------------------- */

void
store_fence_hold(store_t *st, store_epochs_t *window)
{
    pthread_rwlock_rdlock(&st->fence);
    window->set = st->epochs_set;
    window->min = st->epoch_min;
    window->max = st->epoch_max;
}

bool
store_fence_enter(store_t *st, bool has_epoch, uint64_t epoch,
                  store_epochs_t *window)
{
    store_fence_hold(st, window);
    if (!window->set
        || (has_epoch && epoch >= window->min && epoch <= window->max))
    {
        return true;
    }
    pthread_rwlock_unlock(&st->fence);
    return false;
}

void
store_fence_exit(store_t *st)
{
    pthread_rwlock_unlock(&st->fence);
}

void
store_epochs_get(store_t *st, store_epochs_t *out)
{
    store_fence_hold(st, out);
    pthread_rwlock_unlock(&st->fence);
}

store_rc_t
store_epochs_set(store_t *st, uint64_t min, uint64_t max,
                 store_epochs_t *current, char *err)
{
    unsigned char buf[16];
    store_rc_t    rc;

    pthread_mutex_lock(&st->meta_write);
    store_epochs_get(st, current);
    if (current->set && (min < current->min || max < current->max)) {
        rc = STORE_CONFLICT;
    } else if (current->set && min == current->min && max == current->max) {
        rc = STORE_UNCHANGED;
    } else {
        skv_put_be64(buf, min);
        skv_put_be64(buf + 8, max);
        rc = meta_commit(st, EPOCHS_KEY, buf, sizeof(buf), err);
    }
    if (rc == STORE_OK) {
        /* Waits for every request admitted under the old window. */
        pthread_rwlock_wrlock(&st->fence);
        st->epochs_set = true;
        st->epoch_min = min;
        st->epoch_max = max;
        pthread_rwlock_unlock(&st->fence);
        current->set = true;
        current->min = min;
        current->max = max;
        rc = STORE_APPLIED;
    }
    pthread_mutex_unlock(&st->meta_write);
    return rc;
}

/* ---- the repair watermark ----------------------------------------------- */

bool
store_repair_get(store_t *st, skv_version_t *out)
{
    bool set;

    pthread_mutex_lock(&st->repair_lock);
    set = st->repair_set;
    *out = st->repair;
    pthread_mutex_unlock(&st->repair_lock);
    return set;
}

store_rc_t
store_repair_set(store_t *st, const skv_version_t *v, skv_version_t *current,
                 char *err)
{
    unsigned char buf[16];
    store_rc_t    rc;
    int           cmp = 1;

    pthread_mutex_lock(&st->meta_write);
    if (store_repair_get(st, current)) {
        cmp = skv_version_cmp(v, current);
    }
    if (cmp < 0) {
        rc = STORE_CONFLICT;
    } else if (cmp == 0) {
        rc = STORE_UNCHANGED;
    } else {
        skv_put_be64(buf, v->hlc);
        skv_put_be64(buf + 8, v->origin);
        rc = meta_commit(st, REPAIR_KEY, buf, sizeof(buf), err);
    }
    if (rc == STORE_OK) {
        pthread_mutex_lock(&st->repair_lock);
        st->repair_set = true;
        st->repair = *v;
        pthread_mutex_unlock(&st->repair_lock);
        *current = *v;
        rc = STORE_APPLIED;
    }
    pthread_mutex_unlock(&st->meta_write);
    return rc;
}

/* ---- set-up ------------------------------------------------------------- */

int
store_meta_init(store_t *st)
{
    pthread_rwlockattr_t attr;
    int                  ret;

    ret = pthread_rwlockattr_init(&attr);
    if (ret != 0) {
        return ret;
    }
    /* Writers first: a steady stream of requests must not keep a new
     * window out.  (Nobody takes the fence shared twice.) */
    pthread_rwlockattr_setkind_np(&attr,
                                  PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    ret = pthread_rwlock_init(&st->fence, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (ret != 0) {
        return ret;
    }
    pthread_mutex_init(&st->meta_write, NULL);
    pthread_mutex_init(&st->repair_lock, NULL);
    return 0;
}

void
store_meta_destroy(store_t *st)
{
    pthread_mutex_destroy(&st->repair_lock);
    pthread_mutex_destroy(&st->meta_write);
    pthread_rwlock_destroy(&st->fence);
}
