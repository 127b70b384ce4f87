/*
 * store_space.c - namespaces: the table of open namespaces, their
 * creation at the first write, their opening at start, and their
 * counters.
 *
 * A namespace is a set of databases in the environment (store.c says
 * why not a key prefix): the default namespace's are records.db,
 * index.db and chunks.db, namespace N's ns-N.records.db (DB_HASH),
 * ns-N.index.db (DB_BTREE) and ns-N.chunks.db (DB_BTREE, the chunks of
 * large values: store_chunks.c; created at open in a directory written
 * before large values).  A name is 1 to 64 bytes of [A-Za-z0-9_-], so it is always
 * a safe file name.  The set of namespaces is recorded in meta.db
 * ("ns:<name>", store_meta.c): the record and its databases are created
 * in one transaction, committed before the write that asked for the
 * namespace begins.  Recovery therefore restores the databases and the
 * record together or neither, and a write acknowledged in a namespace
 * (committed later in the same log) implies the namespace.  A read never
 * creates anything: a namespace this node never held holds no key.
 *
 * Handles are opened once (at open, or at creation) and kept until
 * store_close.  The table (struct store) is a sorted array of pointers:
 * lookups take spaces_lock shared for a binary search; a creation holds
 * spaces_create (one at a time, so concurrent first writes of one name
 * create it once) and inserts under spaces_lock exclusively.  The default
 * namespace is found without the lock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skv_bytes.h"
#include "store_int.h"

#define FILE_NAME_MAX  (STORE_SPACE_NAME_MAX + 32)
/* Chunks are 256 KiB: large pages take fewer overflow pages each. */
#define CHUNKS_PAGE_SIZE  65536

static bool
is_default(const char *name, size_t len)
{
    return len == sizeof(STORE_SPACE_DEFAULT) - 1
           && memcmp(name, STORE_SPACE_DEFAULT, len) == 0;
}

/* The index of the first space whose name is >= name; under spaces_lock
 * or spaces_create. */
static size_t
lower_bound(store_t *st, const char *name, size_t len)
{
    size_t lo = 0, hi = st->n_spaces, mid;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (skv_bytes_cmp(st->spaces[mid]->name, st->spaces[mid]->name_len, name,
                     len) < 0)
        {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static store_space_t *
find(store_t *st, const char *name, size_t len)
{
    size_t i = lower_bound(st, name, len);

    if (i < st->n_spaces
        && skv_bytes_cmp(st->spaces[i]->name, st->spaces[i]->name_len, name,
                    len) == 0)
    {
        return st->spaces[i];
    }
    return NULL;
}

/* Insert sp at its place (the caller holds spaces_create, and sp's name
 * is not in the table); 0, or -1 when out of memory. */
static int
insert(store_t *st, store_space_t *sp)
{
    store_space_t **grown;
    size_t          i, cap;

    pthread_rwlock_wrlock(&st->spaces_lock);
    if (st->n_spaces == st->cap_spaces) {
        cap = st->cap_spaces == 0 ? 8 : st->cap_spaces * 2;
        grown = realloc(st->spaces, cap * sizeof(*grown));
        if (grown == NULL) {
            pthread_rwlock_unlock(&st->spaces_lock);
            return -1;
        }
        st->spaces = grown;
        st->cap_spaces = cap;
    }
    i = lower_bound(st, sp->name, sp->name_len);
    memmove(&st->spaces[i + 1], &st->spaces[i],
            (st->n_spaces - i) * sizeof(st->spaces[0]));
    st->spaces[i] = sp;
    st->n_spaces++;
    pthread_rwlock_unlock(&st->spaces_lock);
    return 0;
}

static void
file_names(const char *name, size_t len, char *records, char *index,
           char *chunks)
{
    if (is_default(name, len)) {
        snprintf(records, FILE_NAME_MAX, "records.db");
        snprintf(index, FILE_NAME_MAX, "index.db");
        snprintf(chunks, FILE_NAME_MAX, "chunks.db");
    } else {
        snprintf(records, FILE_NAME_MAX, "ns-%.*s.records.db", (int) len,
                 name);
        snprintf(index, FILE_NAME_MAX, "ns-%.*s.index.db", (int) len, name);
        snprintf(chunks, FILE_NAME_MAX, "ns-%.*s.chunks.db", (int) len,
                 name);
    }
}

static store_space_t *
space_new(const char *name, size_t len)
{
    store_space_t *sp = calloc(1, sizeof(*sp));

    if (sp != NULL) {
        memcpy(sp->name, name, len);
        sp->name[len] = '\0';
        sp->name_len = len;
    }
    return sp;
}

static void
space_free(store_space_t *sp)
{
    if (sp->chunks != NULL) {
        sp->chunks->close(sp->chunks, 0);
    }
    if (sp->index != NULL) {
        sp->index->close(sp->index, 0);
    }
    if (sp->records != NULL) {
        sp->records->close(sp->records, 0);
    }
    free(sp);
}

int
store_open_db(store_t *st, DB_TXN *txn, DB **out, const char *file,
              DBTYPE type)
{
    return store_open_db_paged(st, txn, out, file, type, 0);
}

int
store_open_db_paged(store_t *st, DB_TXN *txn, DB **out, const char *file,
                    DBTYPE type, u_int32_t pagesize)
{
    DB  *db;
    int  ret;

    *out = NULL;
    ret = db_create(&db, st->env, 0);
    if (ret != 0) {
        return ret;
    }
    /* Ignored for an existing file (it keeps its own). */
    if (pagesize != 0 && (ret = db->set_pagesize(db, pagesize)) != 0) {
        db->close(db, 0);
        return ret;
    }
    ret = db->open(db, txn, file, NULL, type,
                   DB_CREATE | DB_THREAD | (txn == NULL ? DB_AUTO_COMMIT : 0),
                   0644);
    if (ret != 0) {
        db->close(db, 0);
        return ret;
    }
    *out = db;
    return 0;
}

/* Count sp's keys, tombstones and bytes from its index (at open). */
static store_rc_t
load_counters(store_t *st, store_space_t *sp, char *err)
{
    DBC           *cur;
    DBT            key, data;
    index_entry_t  e;
    int            ret;

    ret = sp->index->cursor(sp->index, NULL, &cur, 0);
    if (ret != 0) {
        return store_db_fail(st, ret, "index cursor", err);
    }
    memset(&key, 0, sizeof(key));
    memset(&data, 0, sizeof(data));
    key.flags = DB_DBT_REALLOC;
    data.flags = DB_DBT_REALLOC;
    while ((ret = cur->get(cur, &key, &data, DB_NEXT)) == 0) {
        if (store_index_decode(&data, &e) != 0) {
            continue;
        }
        if (e.tombstone) {
            sp->tombstones++;
        } else {
            sp->keys++;
            sp->bytes += e.value_len;
        }
    }
    free(key.data);
    free(data.data);
    cur->close(cur);
    if (ret != DB_NOTFOUND) {
        return store_db_fail(st, ret, "index scan", err);
    }
    return STORE_OK;
}

/* Open an existing namespace's databases (or the default one's, created
 * if missing) at open, count its keys, and add it to the table. */
static store_rc_t
open_existing(store_t *st, const char *name, size_t len, char *err)
{
    char           records[FILE_NAME_MAX], index[FILE_NAME_MAX];
    char           chunks[FILE_NAME_MAX];
    store_space_t *sp;
    store_rc_t     rc;
    int            ret;

    if (find(st, name, len) != NULL) {
        return STORE_OK;        /* "ns:default" would be harmless */
    }
    sp = space_new(name, len);
    if (sp == NULL) {
        snprintf(err, STORE_ERR_MAX, "out of memory");
        return STORE_ERR_DB;
    }
    file_names(name, len, records, index, chunks);
    ret = store_open_db(st, NULL, &sp->records, records, DB_HASH);
    if (ret != 0) {
        space_free(sp);
        return store_db_fail(st, ret, records, err);
    }
    ret = store_open_db(st, NULL, &sp->index, index, DB_BTREE);
    if (ret != 0) {
        space_free(sp);
        return store_db_fail(st, ret, index, err);
    }
    /* A directory from before large values gains its chunk database. */
    ret = store_open_db_paged(st, NULL, &sp->chunks, chunks, DB_BTREE,
                              CHUNKS_PAGE_SIZE);
    if (ret != 0) {
        space_free(sp);
        return store_db_fail(st, ret, chunks, err);
    }
    rc = load_counters(st, sp, err);
    if (rc == STORE_OK) {
        rc = store_chunks_load(st, sp, err);
    }
    if (rc == STORE_OK && insert(st, sp) != 0) {
        snprintf(err, STORE_ERR_MAX, "out of memory");
        rc = STORE_ERR_DB;
    }
    if (rc != STORE_OK) {
        space_free(sp);
    }
    return rc;
}

store_rc_t
store_spaces_open(store_t *st, char *err)
{
    store_rc_t rc;

    rc = open_existing(st, STORE_SPACE_DEFAULT,
                       sizeof(STORE_SPACE_DEFAULT) - 1, err);
    if (rc != STORE_OK) {
        return rc;
    }
    st->dflt = find(st, STORE_SPACE_DEFAULT,
                    sizeof(STORE_SPACE_DEFAULT) - 1);
    return store_meta_load_spaces(st, open_existing, err);
}

void
store_spaces_close(store_t *st)
{
    size_t i;

    for (i = 0; i < st->n_spaces; i++) {
        space_free(st->spaces[i]);
    }
    free(st->spaces);
    st->spaces = NULL;
    st->n_spaces = st->cap_spaces = 0;
    st->dflt = NULL;
}

/*
 * Create namespace name: its databases and its meta.db record in one
 * transaction, retried on deadlock.  The caller holds spaces_create.
 */
static store_rc_t
create(store_t *st, const char *name, size_t len, store_space_t **out,
       char *err)
{
    char           records[FILE_NAME_MAX], index[FILE_NAME_MAX];
    char           chunks[FILE_NAME_MAX];
    store_space_t *sp;
    DB_TXN        *txn;
    const char    *what;
    unsigned       attempt;
    int            ret;

    if (st->n_spaces >= STORE_SPACES_MAX) {
        snprintf(err, STORE_ERR_MAX, "this node holds %d namespaces, the "
                 "most it can: namespace %.*s is not created",
                 STORE_SPACES_MAX, (int) len, name);
        return STORE_ERR_NOSPACE;
    }
    sp = space_new(name, len);
    if (sp == NULL) {
        snprintf(err, STORE_ERR_MAX, "out of memory");
        return STORE_ERR_DB;
    }
    file_names(name, len, records, index, chunks);
    for (attempt = 0;; attempt++) {
        ret = st->env->txn_begin(st->env, NULL, &txn, 0);
        if (ret != 0) {
            free(sp);
            return store_db_fail(st, ret, "beginning a transaction", err);
        }
        what = records;
        ret = store_open_db(st, txn, &sp->records, records, DB_HASH);
        if (ret == 0) {
            what = index;
            ret = store_open_db(st, txn, &sp->index, index, DB_BTREE);
        }
        if (ret == 0) {
            what = chunks;
            ret = store_open_db_paged(st, txn, &sp->chunks, chunks, DB_BTREE,
                                      CHUNKS_PAGE_SIZE);
        }
        if (ret == 0) {
            what = "recording a namespace in meta.db";
            ret = store_meta_add_space(st, txn, name, len);
        }
        if (ret == 0) {
            /* A failed commit undoes the transaction and frees it. */
            what = "committing a new namespace";
            ret = txn->commit(txn, 0);
            if (ret == 0) {
                break;
            }
        } else {
            txn->abort(txn);
        }
        /* Handles opened in a transaction that did not commit are closed
         * (Berkeley DB: they are unusable). */
        if (sp->chunks != NULL) {
            sp->chunks->close(sp->chunks, 0);
            sp->chunks = NULL;
        }
        if (sp->index != NULL) {
            sp->index->close(sp->index, 0);
            sp->index = NULL;
        }
        if (sp->records != NULL) {
            sp->records->close(sp->records, 0);
            sp->records = NULL;
        }
        if (!store_retryable(ret) || attempt == WRITE_RETRIES) {
            free(sp);
            return store_db_fail(st, ret, what, err);
        }
        store_retry_pause(st, attempt);
    }
    if (insert(st, sp) != 0) {
        /* Created on disk: the next start opens it. */
        space_free(sp);
        snprintf(err, STORE_ERR_MAX, "out of memory");
        return STORE_ERR_DB;
    }
    *out = sp;
    return STORE_OK;
}

store_rc_t
store_space(store_t *st, const char *name, size_t len, bool create_it,
            store_space_t **out, char *err)
{
    store_space_t *sp;
    store_rc_t     rc = STORE_OK;

    *out = NULL;
    if (!store_space_name_valid(name, len)) {
        snprintf(err, STORE_ERR_MAX, "%s", STORE_SPACE_NAME_RULE);
        return STORE_ERR_INVALID;
    }
    if (is_default(name, len)) {
        *out = st->dflt;
        return STORE_OK;
    }
    pthread_rwlock_rdlock(&st->spaces_lock);
    sp = find(st, name, len);
    pthread_rwlock_unlock(&st->spaces_lock);
    if (sp == NULL && !create_it) {
        return STORE_NOT_FOUND;
    }
    if (sp == NULL) {
        pthread_mutex_lock(&st->spaces_create);
        /* The table changes only under spaces_create: no lock needed to
         * look again. */
        sp = find(st, name, len);
        if (sp == NULL) {
            rc = create(st, name, len, &sp, err);
        }
        pthread_mutex_unlock(&st->spaces_create);
    }
    *out = sp;
    return rc;
}

store_space_t *
store_space_next(store_t *st, const char *name, size_t len, bool after)
{
    store_space_t *sp = NULL;
    size_t         i;

    pthread_rwlock_rdlock(&st->spaces_lock);
    i = lower_bound(st, name, len);
    if (after && i < st->n_spaces
        && skv_bytes_cmp(st->spaces[i]->name, st->spaces[i]->name_len, name,
                    len) == 0)
    {
        i++;
    }
    if (i < st->n_spaces) {
        sp = st->spaces[i];
    }
    pthread_rwlock_unlock(&st->spaces_lock);
    return sp;
}

store_space_stats_t *
store_spaces_list(store_t *st, size_t *n)
{
    store_space_stats_t *out;
    store_space_t       *sp;
    size_t               i;

    pthread_rwlock_rdlock(&st->spaces_lock);
    *n = st->n_spaces;
    out = calloc(st->n_spaces, sizeof(*out));
    for (i = 0; out != NULL && i < st->n_spaces; i++) {
        sp = st->spaces[i];
        memcpy(out[i].name, sp->name, sp->name_len + 1);
        out[i].keys = atomic_load(&sp->keys);
        out[i].tombstones = atomic_load(&sp->tombstones);
        out[i].bytes = atomic_load(&sp->bytes);
        out[i].chunks = atomic_load(&sp->n_chunks);
        out[i].chunk_uploads = atomic_load(&sp->n_pending);
    }
    pthread_rwlock_unlock(&st->spaces_lock);
    return out;
}
