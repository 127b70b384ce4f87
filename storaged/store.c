/*
 * store.c - the storage engine: a Berkeley DB 5.3 transactional environment.
 *
 * Two databases in one environment, always written in one transaction:
 *   records.db  DB_HASH   key -> skv record (core/skv_record.h: header+value)
 *   index.db    DB_BTREE  key -> index entry (flags, version, value length)
 * The hash serves GET; the btree gives byte-ordered listings and carries
 * enough (version, tombstone flag) that a listing never reads values.  The
 * index entry is also what a write reads, with DB_RMW, to decide "newer or
 * not": the write lock taken by that read makes the compare-and-write
 * atomic against concurrent writers of the same key.
 *
 * Durability: every write commits its transaction before it is
 * acknowledged.  In "process" mode the environment has DB_TXN_WRITE_NOSYNC
 * (the log record reaches the kernel at commit, so it survives kill -9); in
 * "fsync" mode commits flush the log.  DB_RECOVER at open replays the log.
 *
 * Counters for /v1/stats (keys, tombstones, bytes) are computed from the
 * index at open and then maintained in memory after each commit, so that
 * writers do not all contend on one counter record.
 */
#include <db.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "skv_bytes.h"
#include "skv_key.h"
#include "skv_record.h"
#include "store.h"

#define INDEX_ENTRY_SIZE  25   /* flags(1) hlc(8) origin(8) value_len(8) */
#define WRITE_RETRIES     100  /* deadlock retries before giving up */
#define LOCK_FILE         "storaged.lock"

struct store {
    DB_ENV          *env;
    DB              *records;
    DB              *index;
    int              lock_fd;

    atomic_bool      panicked;
    _Atomic uint64_t keys;
    _Atomic uint64_t tombstones;
    _Atomic uint64_t bytes;
    _Atomic uint64_t deadlock_retries;
    _Atomic uint64_t purged;

    /* Where the tombstone purge continues; only the background thread
     * uses it. */
    unsigned char    purge_key[SKV_KEY_MAX];
    size_t           purge_key_len;
};

/* The decoded form of an index entry. */
typedef struct {
    bool          found;
    bool          tombstone;
    skv_version_t version;
    uint64_t      value_len;
} index_entry_t;

static void
index_encode(unsigned char out[INDEX_ENTRY_SIZE], const index_entry_t *e)
{
    out[0] = e->tombstone ? SKV_RECORD_TOMBSTONE : 0;
    skv_put_be64(out + 1, e->version.hlc);
    skv_put_be64(out + 9, e->version.origin);
    skv_put_be64(out + 17, e->value_len);
}

static int
index_decode(const DBT *data, index_entry_t *e)
{
    const unsigned char *p = data->data;

    if (data->size != INDEX_ENTRY_SIZE || (p[0] & ~SKV_RECORD_TOMBSTONE)) {
        return -1;
    }
    e->found = true;
    e->tombstone = (p[0] & SKV_RECORD_TOMBSTONE) != 0;
    e->version.hlc = skv_get_be64(p + 1);
    e->version.origin = skv_get_be64(p + 9);
    e->value_len = skv_get_be64(p + 17);
    return 0;
}

/*
 * Berkeley DB explains a failure through the error callback just before the
 * call returns its error code.  Keep that explanation per thread and fold
 * it into the caller's one-line message (db_fail), so that each error is
 * logged once, with its detail.  A message no failure picked up is printed
 * when a different one arrives, so none is lost.
 */
static _Thread_local char db_last_msg[160];

static void
db_errcall(const DB_ENV *env, const char *prefix, const char *msg)
{
    (void) env;
    /* Some failures are reported twice (e.g. a log write, retried). */
    if (db_last_msg[0] != '\0' && strcmp(db_last_msg, msg) != 0) {
        fprintf(stderr, "%s: berkeley db: %s\n", prefix, db_last_msg);
    }
    snprintf(db_last_msg, sizeof(db_last_msg), "%s", msg);
}

/*
 * A panicked environment fails every call until it is reopened with
 * recovery, which needs every handle closed first.  Rather than limp on
 * answering 500s, storaged stops (SIGTERM to itself: the normal shutdown
 * path) and exits non-zero, so that a supervisor restarts it and
 * DB_RECOVER repairs the environment.
 */
static void
env_failed(store_t *st)
{
    if (!atomic_exchange(&st->panicked, true)) {
        fprintf(stderr, "storaged: the database environment failed and "
                        "needs recovery: stopping (restart to recover)\n");
        kill(getpid(), SIGTERM);
    }
}

static void
db_event(DB_ENV *env, u_int32_t event, void *info)
{
    (void) info;
    if (event == DB_EVENT_PANIC && env->app_private != NULL) {
        env_failed(env->app_private);
    }
}

/* Turn a Berkeley DB error into a store_rc_t and a message, in one place. */
static store_rc_t
db_fail(store_t *st, int ret, const char *what, char *err)
{
    if (err != NULL) {
        if (db_last_msg[0] != '\0') {
            snprintf(err, STORE_ERR_MAX, "%s: %s (%s)", what,
                     db_strerror(ret), db_last_msg);
        } else {
            snprintf(err, STORE_ERR_MAX, "%s: %s", what, db_strerror(ret));
        }
    }
    db_last_msg[0] = '\0';
    switch (ret) {
    case ENOSPC:
    case EFBIG:
    case EDQUOT:
        return STORE_ERR_NOSPACE;
    case DB_RUNRECOVERY:
        env_failed(st);
        return STORE_ERR_DB;
    default:
        return STORE_ERR_DB;
    }
}

static bool
is_retryable(int ret)
{
    return ret == DB_LOCK_DEADLOCK || ret == DB_LOCK_NOTGRANTED;
}

/* Short randomised back-off so that two deadlocked writers do not retry in
 * lock step. */
static void
retry_pause(store_t *st, unsigned attempt)
{
    struct timespec ts;

    atomic_fetch_add(&st->deadlock_retries, 1);
    ts.tv_sec = 0;
    ts.tv_nsec = (long) (1000 + (rand() % 1000) * (attempt < 10 ? attempt + 1
                                                              : 10));
    nanosleep(&ts, NULL);
}

static store_rc_t
load_counters(store_t *st, char *err)
{
    DBC           *cur;
    DBT            key, data;
    index_entry_t  e;
    int            ret;

    ret = st->index->cursor(st->index, NULL, &cur, 0);
    if (ret != 0) {
        return db_fail(st, ret, "index cursor", err);
    }
    memset(&key, 0, sizeof(key));
    memset(&data, 0, sizeof(data));
    key.flags = DB_DBT_REALLOC;
    data.flags = DB_DBT_REALLOC;
    while ((ret = cur->get(cur, &key, &data, DB_NEXT)) == 0) {
        if (index_decode(&data, &e) != 0) {
            continue;
        }
        if (e.tombstone) {
            st->tombstones++;
        } else {
            st->keys++;
            st->bytes += e.value_len;
        }
    }
    free(key.data);
    free(data.data);
    cur->close(cur);
    if (ret != DB_NOTFOUND) {
        return db_fail(st, ret, "index scan", err);
    }
    return STORE_OK;
}

static store_rc_t
open_db(store_t *st, DB **out, const char *file, DBTYPE type, char *err)
{
    DB  *db;
    int  ret;

    ret = db_create(&db, st->env, 0);
    if (ret != 0) {
        return db_fail(st, ret, file, err);
    }
    ret = db->open(db, NULL, file, NULL, type,
                   DB_CREATE | DB_THREAD | DB_AUTO_COMMIT, 0644);
    if (ret != 0) {
        db->close(db, 0);
        return db_fail(st, ret, file, err);
    }
    *out = db;
    return STORE_OK;
}

/* mkdir -p */
static int
make_dirs(const char *dir)
{
    char   path[4096];
    size_t i, n = strlen(dir);

    if (n == 0 || n >= sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(path, dir, n + 1);
    for (i = 1; i <= n; i++) {
        if (path[i] == '/' || path[i] == '\0') {
            char saved = path[i];

            path[i] = '\0';
            if (mkdir(path, 0755) != 0 && errno != EEXIST) {
                return -1;
            }
            path[i] = saved;
        }
    }
    return 0;
}

store_rc_t
store_open(store_t **out, const store_options_t *opt, char *err)
{
    store_t    *st;
    char        path[4096];
    store_rc_t  rc;
    int         ret;

    if (make_dirs(opt->dir) != 0) {
        snprintf(err, STORE_ERR_MAX, "cannot create %s: %s", opt->dir,
                 strerror(errno));
        return STORE_ERR_DB;
    }

    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        snprintf(err, STORE_ERR_MAX, "out of memory");
        return STORE_ERR_DB;
    }

    /* DB_RECOVER must never run while another process uses the same
     * environment: hold an exclusive lock on the directory for our
     * lifetime. */
    snprintf(path, sizeof(path), "%s/%s", opt->dir, LOCK_FILE);
    st->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (st->lock_fd < 0) {
        snprintf(err, STORE_ERR_MAX, "cannot open %s/%s: %s", opt->dir,
                 LOCK_FILE, strerror(errno));
        free(st);
        return STORE_ERR_DB;
    }
    if (flock(st->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, STORE_ERR_MAX, "%s is in use by another storaged",
                 opt->dir);
        close(st->lock_fd);
        free(st);
        return STORE_ERR_DB;
    }

    ret = db_env_create(&st->env, 0);
    if (ret != 0) {
        rc = db_fail(st, ret, "db_env_create", err);
        goto fail;
    }
    st->env->set_errpfx(st->env, "storaged");
    st->env->set_errcall(st->env, db_errcall);
    st->env->app_private = st;
    st->env->set_event_notify(st->env, db_event);
    st->env->set_cachesize(st->env, (u_int32_t) (opt->cache_size >> 30),
                           (u_int32_t) (opt->cache_size & ((1u << 30) - 1)),
                           1);
    /* Run the deadlock detector whenever a lock request blocks: writers
     * then see DB_LOCK_DEADLOCK at once and retry. */
    st->env->set_lk_detect(st->env, DB_LOCK_DEFAULT);
    st->env->set_lk_max_lockers(st->env, 10000);
    st->env->set_lk_max_locks(st->env, 100000);
    st->env->set_lk_max_objects(st->env, 100000);
    st->env->set_tx_max(st->env, 1000);
    st->env->set_lg_bsize(st->env, 1u << 20);
    st->env->log_set_config(st->env, DB_LOG_AUTO_REMOVE, 1);
    if (!opt->fsync_commits) {
        st->env->set_flags(st->env, DB_TXN_WRITE_NOSYNC, 1);
    }

    /* DB_PRIVATE: the regions live in this process's memory; storaged is
     * the environment's only user (the lock file above guarantees it). */
    ret = st->env->open(st->env, opt->dir,
                        DB_CREATE | DB_INIT_TXN | DB_INIT_LOCK | DB_INIT_LOG
                        | DB_INIT_MPOOL | DB_THREAD | DB_RECOVER
                        | DB_PRIVATE, 0);
    if (ret != 0) {
        rc = db_fail(st, ret, "opening the environment", err);
        goto fail;
    }

    rc = open_db(st, &st->records, "records.db", DB_HASH, err);
    if (rc != STORE_OK) {
        goto fail;
    }
    rc = open_db(st, &st->index, "index.db", DB_BTREE, err);
    if (rc != STORE_OK) {
        goto fail;
    }
    rc = load_counters(st, err);
    if (rc != STORE_OK) {
        goto fail;
    }

    *out = st;
    return STORE_OK;

fail:
    if (st->index != NULL) {
        st->index->close(st->index, 0);
    }
    if (st->records != NULL) {
        st->records->close(st->records, 0);
    }
    if (st->env != NULL) {
        st->env->close(st->env, 0);
    }
    close(st->lock_fd);
    free(st);
    return rc;
}

void
store_close(store_t *st)
{
    char err[STORE_ERR_MAX];
    int  ret;

    if (st == NULL) {
        return;
    }
    if (!atomic_load(&st->panicked)) {
        ret = st->env->txn_checkpoint(st->env, 0, 0, DB_FORCE);
        if (ret != 0) {
            /* Not fatal: recovery at the next start replays the log. */
            db_fail(st, ret, "final checkpoint", err);
            fprintf(stderr, "storaged: %s\n", err);
        }
    }
    st->index->close(st->index, 0);
    st->records->close(st->records, 0);
    st->env->close(st->env, 0);
    close(st->lock_fd);
    free(st);
}

store_rc_t
store_get(store_t *st, const unsigned char *key, size_t key_len,
          store_item_t *item, char *err)
{
    DBT           k, data;
    skv_record_t  rec;
    skv_status_t  s;
    unsigned      attempt;
    int           ret;

    memset(item, 0, sizeof(*item));
    memset(&k, 0, sizeof(k));
    k.data = (void *) key;
    k.size = (u_int32_t) key_len;

    for (attempt = 0;; attempt++) {
        memset(&data, 0, sizeof(data));
        data.flags = DB_DBT_MALLOC;
        ret = st->records->get(st->records, NULL, &k, &data, 0);
        if (!is_retryable(ret) || attempt == WRITE_RETRIES) {
            break;
        }
        retry_pause(st, attempt);
    }
    if (ret == DB_NOTFOUND) {
        return STORE_NOT_FOUND;
    }
    if (ret != 0) {
        return db_fail(st, ret, "reading a record", err);
    }

    s = skv_record_decode(data.data, data.size, &rec);
    if (s != SKV_OK) {
        free(data.data);
        snprintf(err, STORE_ERR_MAX, "stored record of a %zu-byte key: %s",
                 key_len, skv_strerror(s));
        return STORE_ERR_CORRUPT;
    }
    item->version = rec.version;
    item->tombstone = skv_record_is_tombstone(&rec);
    item->content_type = rec.content_type;
    item->content_type_len = rec.content_type_len;
    item->value = rec.value;
    item->value_len = rec.value_len;
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
count_change(store_t *st, const index_entry_t *old, const index_entry_t *neu)
{
    if (old->found) {
        if (old->tombstone) {
            atomic_fetch_sub(&st->tombstones, 1);
        } else {
            atomic_fetch_sub(&st->keys, 1);
            atomic_fetch_sub(&st->bytes, old->value_len);
        }
    }
    if (neu->found) {
        if (neu->tombstone) {
            atomic_fetch_add(&st->tombstones, 1);
        } else {
            atomic_fetch_add(&st->keys, 1);
            atomic_fetch_add(&st->bytes, neu->value_len);
        }
    }
}

/*
 * The one write path: in a transaction, read the key's index entry with a
 * write lock, compare versions, and store record + index entry.  Retried
 * from the start on deadlock, which aborts the transaction and so undoes
 * any partial write.
 */
static store_rc_t
write_if_newer(store_t *st, const unsigned char *key, size_t key_len,
               const index_entry_t *neu, const void *record,
               size_t record_len, skv_version_t *current, char *err)
{
    DB_TXN        *txn;
    DBT            k, data, rec;
    unsigned char  buf[INDEX_ENTRY_SIZE], enc[INDEX_ENTRY_SIZE];
    index_entry_t  old;
    const char    *what;
    unsigned       attempt;
    int            ret, cmp;

    memset(&k, 0, sizeof(k));
    k.data = (void *) key;
    k.size = (u_int32_t) key_len;
    memset(&rec, 0, sizeof(rec));
    rec.data = (void *) record;
    rec.size = (u_int32_t) record_len;
    index_encode(enc, neu);

    for (attempt = 0;; attempt++) {
        memset(&old, 0, sizeof(old));
        ret = st->env->txn_begin(st->env, NULL, &txn, 0);
        if (ret != 0) {
            return db_fail(st, ret, "beginning a transaction", err);
        }

        memset(&data, 0, sizeof(data));
        data.data = buf;
        data.ulen = sizeof(buf);
        data.flags = DB_DBT_USERMEM;
        what = "reading the index";
        ret = st->index->get(st->index, txn, &k, &data, DB_RMW);
        if (ret == 0) {
            if (index_decode(&data, &old) != 0) {
                txn->abort(txn);
                snprintf(err, STORE_ERR_MAX,
                         "corrupt index entry for a %zu-byte key", key_len);
                return STORE_ERR_CORRUPT;
            }
            cmp = skv_version_cmp(&neu->version, &old.version);
            if (cmp <= 0) {
                txn->abort(txn);
                *current = old.version;
                return cmp == 0 ? STORE_UNCHANGED : STORE_CONFLICT;
            }
        } else if (ret != DB_NOTFOUND) {
            goto failed;
        }

        what = "writing the record";
        ret = st->records->put(st->records, txn, &k, &rec, 0);
        if (ret != 0) {
            goto failed;
        }
        memset(&data, 0, sizeof(data));
        data.data = enc;
        data.size = sizeof(enc);
        what = "writing the index";
        ret = st->index->put(st->index, txn, &k, &data, 0);
        if (ret != 0) {
            goto failed;
        }

        /* A failed commit frees the transaction and undoes it: there is
         * nothing to abort, and nothing was applied. */
        ret = txn->commit(txn, 0);
        if (ret != 0) {
            return db_fail(st, ret, "committing", err);
        }
        count_change(st, &old, neu);
        *current = neu->version;
        return STORE_APPLIED;

    failed:
        txn->abort(txn);
        if (!is_retryable(ret) || attempt == WRITE_RETRIES) {
            return db_fail(st, ret, what, err);
        }
        retry_pause(st, attempt);
    }
}

store_rc_t
store_put_if_newer(store_t *st, const unsigned char *key, size_t key_len,
                   const skv_version_t *version, const char *content_type,
                   size_t ct_len, const void *value, size_t value_len,
                   skv_version_t *current, char *err)
{
    skv_record_t   rec;
    index_entry_t  neu;
    unsigned char *buf;
    size_t         hlen;
    skv_status_t   s;
    store_rc_t     rc;

    memset(&rec, 0, sizeof(rec));
    rec.version = *version;
    rec.content_type = content_type;
    rec.content_type_len = ct_len;
    if (ct_len > SKV_CONTENT_TYPE_MAX) {
        snprintf(err, STORE_ERR_MAX, "content type longer than %d bytes",
                 SKV_CONTENT_TYPE_MAX);
        return STORE_ERR_INVALID;
    }
    buf = malloc(skv_record_header_size(&rec) + value_len);
    if (buf == NULL) {
        snprintf(err, STORE_ERR_MAX, "out of memory for a %zu-byte value",
                 value_len);
        return STORE_ERR_DB;
    }
    s = skv_record_encode_header(&rec, buf, SKV_RECORD_HEADER_MAX, &hlen);
    if (s != SKV_OK) {
        free(buf);
        snprintf(err, STORE_ERR_MAX, "encoding a record: %s",
                 skv_strerror(s));
        return STORE_ERR_INVALID;
    }
    if (value_len > 0) {
        memcpy(buf + hlen, value, value_len);
    }

    memset(&neu, 0, sizeof(neu));
    neu.found = true;
    neu.version = *version;
    neu.value_len = value_len;
    rc = write_if_newer(st, key, key_len, &neu, buf, hlen + value_len,
                        current, err);
    free(buf);
    return rc;
}

store_rc_t
store_delete_if_newer(store_t *st, const unsigned char *key, size_t key_len,
                      const skv_version_t *version, skv_version_t *current,
                      char *err)
{
    skv_record_t   rec;
    index_entry_t  neu;
    unsigned char  buf[SKV_RECORD_FIXED_HEADER];
    size_t         hlen;
    skv_status_t   s;

    memset(&rec, 0, sizeof(rec));
    rec.version = *version;
    rec.flags = SKV_RECORD_TOMBSTONE;
    s = skv_record_encode_header(&rec, buf, sizeof(buf), &hlen);
    if (s != SKV_OK) {
        snprintf(err, STORE_ERR_MAX, "encoding a tombstone: %s",
                 skv_strerror(s));
        return STORE_ERR_INVALID;
    }

    memset(&neu, 0, sizeof(neu));
    neu.found = true;
    neu.tombstone = true;
    neu.version = *version;
    return write_if_newer(st, key, key_len, &neu, buf, hlen, current, err);
}

store_rc_t
store_scan(store_t *st, const unsigned char *from, size_t from_len,
           bool after, size_t max_entries, store_scan_fn fn, void *arg,
           size_t *visited, char *err)
{
    DBC           *cur;
    DBT            key, data;
    unsigned char  kbuf[SKV_KEY_MAX], dbuf[INDEX_ENTRY_SIZE];
    store_entry_t  entry;
    index_entry_t  e;
    unsigned       attempt;
    int            ret;

    *visited = 0;
    if (from_len > SKV_KEY_MAX) {
        snprintf(err, STORE_ERR_MAX, "scan start longer than a key");
        return STORE_ERR_INVALID;
    }
    memcpy(kbuf, from, from_len);

    for (attempt = 0;; attempt++) {
        /* No transaction: a cursor outside one holds a read lock only on
         * the page it stands on, and this one is closed before returning,
         * so a slow listing reader never blocks writers. */
        ret = st->index->cursor(st->index, NULL, &cur, 0);
        if (ret != 0) {
            return db_fail(st, ret, "index cursor", err);
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

        while (ret == 0 && *visited < max_entries) {
            if (index_decode(&data, &e) != 0) {
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

        if (ret == 0 || ret == DB_NOTFOUND) {
            return STORE_OK;
        }
        /* Only a deadlock before anything was visited is retried; after
         * that the caller would see entries twice. */
        if (!is_retryable(ret) || *visited > 0 || attempt == WRITE_RETRIES) {
            return db_fail(st, ret, "listing keys", err);
        }
        retry_pause(st, attempt);
    }
}

store_rc_t
store_checkpoint(store_t *st, char *err)
{
    int ret;

    /* Only when 16 MiB of log or a minute passed since the last one:
     * cheap to call every second.  A checkpoint flushes dirty pages and
     * stalls writers meanwhile (checkpointing every MiB put PUT p99 at
     * ~450 ms under wrk); the price of spacing them is a longer replay by
     * DB_RECOVER after a crash.  Each one lets DB_LOG_AUTO_REMOVE drop the
     * log files it made unnecessary. */
    ret = st->env->txn_checkpoint(st->env, 16384, 1, 0);
    if (ret != 0) {
        return db_fail(st, ret, "checkpoint", err);
    }
    return STORE_OK;
}

/* Remove one tombstone if it is still the same (old) tombstone. */
static store_rc_t
purge_one(store_t *st, const unsigned char *key, size_t key_len,
          const skv_version_t *version, bool *purged, char *err)
{
    DB_TXN        *txn;
    DBT            k, data;
    unsigned char  buf[INDEX_ENTRY_SIZE];
    index_entry_t  e;
    unsigned       attempt;
    int            ret;

    *purged = false;
    memset(&k, 0, sizeof(k));
    k.data = (void *) key;
    k.size = (u_int32_t) key_len;

    for (attempt = 0;; attempt++) {
        ret = st->env->txn_begin(st->env, NULL, &txn, 0);
        if (ret != 0) {
            return db_fail(st, ret, "beginning a transaction", err);
        }
        memset(&data, 0, sizeof(data));
        data.data = buf;
        data.ulen = sizeof(buf);
        data.flags = DB_DBT_USERMEM;
        ret = st->index->get(st->index, txn, &k, &data, DB_RMW);
        if (ret == DB_NOTFOUND) {
            txn->abort(txn);
            return STORE_OK;
        }
        if (ret == 0) {
            /* A newer write since the scan: it is not ours to remove. */
            if (index_decode(&data, &e) != 0 || !e.tombstone
                || skv_version_cmp(&e.version, version) != 0)
            {
                txn->abort(txn);
                return STORE_OK;
            }
            ret = st->records->del(st->records, txn, &k, 0);
            if (ret == 0 || ret == DB_NOTFOUND) {
                ret = st->index->del(st->index, txn, &k, 0);
            }
            if (ret == 0) {
                ret = txn->commit(txn, 0);
                if (ret != 0) {
                    return db_fail(st, ret, "committing a purge", err);
                }
                atomic_fetch_sub(&st->tombstones, 1);
                atomic_fetch_add(&st->purged, 1);
                *purged = true;
                return STORE_OK;
            }
        }
        txn->abort(txn);
        if (!is_retryable(ret) || attempt == WRITE_RETRIES) {
            return db_fail(st, ret, "purging a tombstone", err);
        }
        retry_pause(st, attempt);
    }
}

typedef struct {
    uint64_t       cutoff_ms;
    size_t         n;
    /* Candidates found by the scan, purged after the cursor is closed. */
    struct {
        unsigned char key[SKV_KEY_MAX];
        size_t        key_len;
        skv_version_t version;
    }              *cand;
    size_t          n_cand;
    unsigned char   last[SKV_KEY_MAX];
    size_t          last_len;
} purge_scan_t;

static bool
purge_visit(void *arg, const store_entry_t *entry)
{
    purge_scan_t *ps = arg;

    memcpy(ps->last, entry->key, entry->key_len);
    ps->last_len = entry->key_len;
    if (entry->tombstone && skv_version_ms(&entry->version) < ps->cutoff_ms) {
        memcpy(ps->cand[ps->n_cand].key, entry->key, entry->key_len);
        ps->cand[ps->n_cand].key_len = entry->key_len;
        ps->cand[ps->n_cand].version = entry->version;
        ps->n_cand++;
    }
    return true;
}

store_rc_t
store_purge_tombstones(store_t *st, uint64_t cutoff_ms, size_t max_scan,
                       size_t *purged, bool *wrapped, char *err)
{
    purge_scan_t  ps;
    size_t        visited, i;
    bool          done;
    store_rc_t    rc;

    *purged = 0;
    *wrapped = false;
    memset(&ps, 0, sizeof(ps));
    ps.cutoff_ms = cutoff_ms;
    ps.cand = malloc(max_scan * sizeof(*ps.cand));
    if (ps.cand == NULL) {
        snprintf(err, STORE_ERR_MAX, "out of memory");
        return STORE_ERR_DB;
    }

    rc = store_scan(st, st->purge_key, st->purge_key_len,
                    st->purge_key_len > 0, max_scan, purge_visit, &ps,
                    &visited, err);
    if (rc == STORE_OK) {
        if (visited < max_scan) {
            *wrapped = true;
            st->purge_key_len = 0;
        } else {
            memcpy(st->purge_key, ps.last, ps.last_len);
            st->purge_key_len = ps.last_len;
        }
        for (i = 0; i < ps.n_cand; i++) {
            rc = purge_one(st, ps.cand[i].key, ps.cand[i].key_len,
                           &ps.cand[i].version, &done, err);
            if (rc != STORE_OK) {
                break;
            }
            *purged += done;
        }
    }
    free(ps.cand);
    return rc;
}

bool
store_failed(store_t *st)
{
    return atomic_load(&st->panicked);
}

bool
store_healthy(store_t *st)
{
    DBT           k, data;
    unsigned char buf[1];
    int           ret;

    if (atomic_load(&st->panicked)) {
        return false;
    }
    /* A real (cheap) read through the environment: a panicked or broken
     * environment fails it. */
    memset(&k, 0, sizeof(k));
    memset(&data, 0, sizeof(data));
    k.data = (void *) "";
    k.size = 0;
    data.data = buf;
    data.ulen = sizeof(buf);
    data.flags = DB_DBT_USERMEM | DB_DBT_PARTIAL;
    ret = st->index->get(st->index, NULL, &k, &data, 0);
    if (ret == DB_RUNRECOVERY) {
        env_failed(st);
    }
    return ret == 0 || ret == DB_NOTFOUND || is_retryable(ret);
}

void
store_get_stats(store_t *st, store_stats_t *out)
{
    DB_MPOOL_STAT *ms = NULL;
    DB_LOG_STAT   *ls = NULL;

    memset(out, 0, sizeof(*out));
    out->keys = atomic_load(&st->keys);
    out->tombstones = atomic_load(&st->tombstones);
    out->bytes = atomic_load(&st->bytes);
    out->deadlock_retries = atomic_load(&st->deadlock_retries);
    out->tombstones_purged = atomic_load(&st->purged);
    if (st->env->memp_stat(st->env, &ms, NULL, 0) == 0 && ms != NULL) {
        out->cache_hits = ms->st_cache_hit;
        out->cache_misses = ms->st_cache_miss;
        free(ms);
    }
    if (st->env->log_stat(st->env, &ls, 0) == 0 && ls != NULL) {
        out->log_writes = ls->st_wcount;
        out->log_syncs = ls->st_scount;
        free(ls);
    }
}

const char *
store_rc_name(store_rc_t rc)
{
    switch (rc) {
    case STORE_OK:
        return "ok";
    case STORE_APPLIED:
        return "applied";
    case STORE_UNCHANGED:
        return "unchanged";
    case STORE_CONFLICT:
        return "conflict";
    case STORE_NOT_FOUND:
        return "not found";
    case STORE_ERR_NOSPACE:
        return "insufficient storage";
    case STORE_ERR_INVALID:
        return "invalid";
    case STORE_ERR_CORRUPT:
        return "corrupt record";
    case STORE_ERR_DB:
        return "database error";
    }
    return "unknown";
}
