/*
 * store_env.c - the storage engine's Berkeley DB environment: open (with
 * recovery and the directory lock) and close, error reporting, checkpoints,
 * health and statistics.
 *
 * Durability: in "process" mode the environment has DB_TXN_WRITE_NOSYNC
 * (the log record reaches the kernel at commit, so it survives kill -9); in
 * "fsync" mode commits flush the log.  DB_RECOVER at open replays the log.
 *
 * meta.db (the watermarks, the epoch window, the namespace names) is
 * opened here and read and written by store_meta.c; then the namespaces'
 * databases are opened (store_space.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "skv_bytes.h"
#include "store_int.h"

#define LOCK_FILE         "storaged.lock"

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
store_rc_t
store_db_fail(store_t *st, int ret, const char *what, char *err)
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

bool
store_retryable(int ret)
{
    return ret == DB_LOCK_DEADLOCK || ret == DB_LOCK_NOTGRANTED;
}

/* Short randomised back-off so that two deadlocked writers do not retry in
 * lock step. */
void
store_retry_pause(store_t *st, unsigned attempt)
{
    struct timespec ts;

    atomic_fetch_add(&st->deadlock_retries, 1);
    ts.tv_sec = 0;
    ts.tv_nsec = (long) (1000 + (rand() % 1000) * (attempt < 10 ? attempt + 1
                                                              : 10));
    nanosleep(&ts, NULL);
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

/*
 * DB_RECOVER must never run while another process uses the same
 * environment: hold an exclusive lock on the directory for our lifetime.
 * Returns the lock's descriptor, or -1 with err filled.
 */
static int
lock_dir(const char *dir, char *err)
{
    char path[4096];
    int  fd;

    snprintf(path, sizeof(path), "%s/%s", dir, LOCK_FILE);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, STORE_ERR_MAX, "cannot open %s/%s: %s", dir,
                 LOCK_FILE, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, STORE_ERR_MAX, "%s is in use by another storaged",
                 dir);
        close(fd);
        return -1;
    }
    return fd;
}

/* Error reporting, cache, locking and log settings, before the open. */
static void
configure_env(store_t *st, const store_options_t *opt)
{
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

}

store_rc_t
store_open(store_t **out, const store_options_t *opt, char *err)
{
    store_t    *st;
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

    st->max_skew_ms = opt->max_clock_skew_ms;
    st->grace_ms = opt->tombstone_grace_ms;
    ret = store_meta_init(st);
    if (ret != 0) {
        snprintf(err, STORE_ERR_MAX, "initialising locks: %s",
                 strerror(ret));
        free(st);
        return STORE_ERR_DB;
    }
    pthread_rwlock_init(&st->spaces_lock, NULL);
    pthread_mutex_init(&st->spaces_create, NULL);
    store_chunks_init(st);
    st->lock_fd = lock_dir(opt->dir, err);
    if (st->lock_fd < 0) {
        store_chunks_destroy(st);
        store_meta_destroy(st);
        free(st);
        return STORE_ERR_DB;
    }
    ret = db_env_create(&st->env, 0);
    if (ret != 0) {
        rc = store_db_fail(st, ret, "db_env_create", err);
        goto fail;
    }
    configure_env(st, opt);

    /* DB_PRIVATE: the regions live in this process's memory; storaged is
     * the environment's only user (lock_dir guarantees it). */
    ret = st->env->open(st->env, opt->dir,
                        DB_CREATE | DB_INIT_TXN | DB_INIT_LOCK | DB_INIT_LOG
                        | DB_INIT_MPOOL | DB_THREAD | DB_RECOVER
                        | DB_PRIVATE, 0);
    if (ret != 0) {
        rc = store_db_fail(st, ret, "opening the environment", err);
        goto fail;
    }

    ret = store_open_db(st, NULL, &st->meta, "meta.db", DB_BTREE);
    if (ret != 0) {
        rc = store_db_fail(st, ret, "meta.db", err);
        goto fail;
    }
    rc = store_meta_load(st, err);
    if (rc == STORE_OK) {
        rc = store_spaces_open(st, err);
    }
    if (rc != STORE_OK) {
        goto fail;
    }

    *out = st;
    return STORE_OK;

fail:
    store_spaces_close(st);
    if (st->meta != NULL) {
        st->meta->close(st->meta, 0);
    }
    if (st->env != NULL) {
        st->env->close(st->env, 0);
    }
    close(st->lock_fd);
    pthread_mutex_destroy(&st->spaces_create);
    pthread_rwlock_destroy(&st->spaces_lock);
    store_chunks_destroy(st);
    store_meta_destroy(st);
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
            store_db_fail(st, ret, "final checkpoint", err);
            fprintf(stderr, "storaged: %s\n", err);
        }
    }
    store_spaces_close(st);
    st->meta->close(st->meta, 0);
    st->env->close(st->env, 0);
    close(st->lock_fd);
    pthread_mutex_destroy(&st->spaces_create);
    pthread_rwlock_destroy(&st->spaces_lock);
    store_chunks_destroy(st);
    store_meta_destroy(st);
    free(st);
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
        return store_db_fail(st, ret, "checkpoint", err);
    }
    return STORE_OK;
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
    ret = st->dflt->index->get(st->dflt->index, NULL, &k, &data, 0);
    if (ret == DB_RUNRECOVERY) {
        env_failed(st);
    }
    return ret == 0 || ret == DB_NOTFOUND || store_retryable(ret);
}

void
store_get_stats(store_t *st, store_stats_t *out)
{
    DB_MPOOL_STAT *ms = NULL;
    DB_LOG_STAT   *ls = NULL;

    store_space_stats_t *spaces;
    size_t               n, i;

    memset(out, 0, sizeof(*out));
    spaces = store_spaces_list(st, &n);
    for (i = 0; spaces != NULL && i < n; i++) {
        out->keys += spaces[i].keys;
        out->tombstones += spaces[i].tombstones;
        out->bytes += spaces[i].bytes;
        out->chunks += spaces[i].chunks;
        out->chunk_uploads += spaces[i].chunk_uploads;
    }
    free(spaces);
    out->chunks_collected = atomic_load(&st->chunks_collected);
    out->deadlock_retries = atomic_load(&st->deadlock_retries);
    out->tombstones_purged = atomic_load(&st->purged);
    out->copies_removed = atomic_load(&st->removed);
    out->corrupt_values = atomic_load(&st->corrupt_values);
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
