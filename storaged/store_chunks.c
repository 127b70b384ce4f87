/*
 * store_chunks.c - large values: streamed uploads, streamed reads and the
 * collector of chunks nobody needs (docs/protocol.md, "Large values").
 *
 * A value of more than STORE_CHUNK_SIZE bytes is stored as chunks in the
 * namespace's chunk database (chunks.db, ns-N.chunks.db: a btree), under
 * an *upload id*: a random 64-bit number drawn for each upload, so that
 * two uploads (even of the same key and version) never share a chunk.
 * Two kinds of record live there:
 *
 *   'c' id(8, big-endian) n(4, big-endian)  ->  XXH3-64 (8) + chunk n
 *   'p' id(8)                               ->  (empty) pending upload
 *
 * A chunk's checksum is seeded with its id and number, so a chunk read
 * from the wrong place fails it as surely as a damaged one.  The value's
 * record (records.db, format 2: store_record.c) names its upload id, its
 * chunk size and its SHA-256.
 *
 * The invariant that makes cleanup safe and complete: every chunk's
 * upload is either the one the record of its key names (the current
 * value), or has a pending record 'p'.  An upload writes its pending
 * record in the transaction of its first chunk; the transaction that makes
 * the upload current (store_write_record) deletes it; every transaction
 * that replaces or removes a chunked value (a write, a delete, a removal)
 * writes the pending record of the value it replaces.  So after a crash
 * the pending records name exactly the chunks no value uses: the
 * collector removes them (a crash mid-upload leaves the old value, whose
 * record never changed, and the new upload's chunks, pending).
 *
 * In use: an upload in progress, and a chunked value being streamed to a
 * client, are registered (store_t.active).  The collector skips their
 * pending uploads: a reader keeps reading the chunks of the version that
 * was current when its GET began even if the key is overwritten meanwhile;
 * they are collected once the response ends.  A reader registers first,
 * then checks that the record still names its upload (if the collector
 * had already looked, the upload was not current then, and the check
 * fails); the collector re-reads the pending record with a write lock in
 * each of its transactions (an upload made current meanwhile has none).
 *
 * Chunk transactions commit with DB_TXN_NOSYNC: the transaction that
 * makes the value current commits with the configured durability, and its
 * log record follows theirs, so flushing it flushes them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/evp.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "skv_bytes.h"
#include "skv_record.h"
#include "store_int.h"

#define CHUNK_KEY_LEN     13
#define PENDING_KEY_LEN   9
#define CHUNK_SUM_LEN     8
#define CHUNK_SIZE_MAX    ((uint32_t) 64 << 20)  /* sanity bound on read */
#define BUF_MIN           ((size_t) 16 * 1024)
#define COLLECT_PER_TXN   8     /* chunks removed per transaction */
#define COLLECT_IDS       64    /* pending uploads looked at per pass */

struct store_upload {
    store_space_t *sp;
    uint64_t       id;          /* 0 until the first chunk is stored */
    uint64_t       total;       /* bytes written */
    uint32_t       n_chunks;    /* chunks stored */
    uint64_t       size_hint;
    unsigned char *buf;         /* the chunk being filled */
    size_t         buf_len;
    size_t         buf_cap;
    EVP_MD_CTX    *sha;
    bool           sha_done;
    unsigned char  digest[STORE_SHA256_LEN];
    bool           applied;     /* made current by store_upload_commit */
};

struct store_reader {
    store_space_t *sp;
    uint64_t       id;
    uint32_t       chunk_size;
    uint64_t       value_len;
    unsigned char *buf;         /* checksum + one chunk */
};

/* ---- keys and checksums ------------------------------------------------- */

static void
chunk_key(unsigned char *out, uint64_t id, uint32_t n)
{
    out[0] = 'c';
    skv_put_be64(out + 1, id);
    out[9] = (unsigned char) (n >> 24);
    out[10] = (unsigned char) (n >> 16);
    out[11] = (unsigned char) (n >> 8);
    out[12] = (unsigned char) n;
}

static void
pending_key(unsigned char *out, uint64_t id)
{
    out[0] = 'p';
    skv_put_be64(out + 1, id);
}

static uint64_t
chunk_sum(const void *data, size_t len, uint64_t id, uint32_t n)
{
    return XXH3_64bits_withSeed(data, len,
                                id ^ ((uint64_t) n * 0x9E3779B97F4A7C15ULL));
}

static void
dbt_set(DBT *d, void *data, size_t size)
{
    memset(d, 0, sizeof(*d));
    d->data = data;
    d->size = (u_int32_t) size;
}

/* ---- the in-use registry ------------------------------------------------ */

void
store_chunks_init(store_t *st)
{
    pthread_mutex_init(&st->active_lock, NULL);
}

void
store_chunks_destroy(store_t *st)
{
    free(st->active);
    st->active = NULL;
    pthread_mutex_destroy(&st->active_lock);
}

/* 0, or -1 when out of memory. */
static int
active_add(store_t *st, store_space_t *sp, uint64_t id)
{
    struct store_active *grown;
    size_t               i, cap;
    int                  rc = 0;

    pthread_mutex_lock(&st->active_lock);
    for (i = 0; i < st->n_active; i++) {
        if (st->active[i].sp == sp && st->active[i].id == id) {
            st->active[i].refs++;
            goto out;
        }
    }
    if (st->n_active == st->cap_active) {
        cap = st->cap_active == 0 ? 16 : st->cap_active * 2;
        grown = realloc(st->active, cap * sizeof(*grown));
        if (grown == NULL) {
            rc = -1;
            goto out;
        }
        st->active = grown;
        st->cap_active = cap;
    }
    st->active[st->n_active].sp = sp;
    st->active[st->n_active].id = id;
    st->active[st->n_active].refs = 1;
    st->n_active++;
out:
    pthread_mutex_unlock(&st->active_lock);
    return rc;
}

static void
active_remove(store_t *st, store_space_t *sp, uint64_t id)
{
    size_t i;

    pthread_mutex_lock(&st->active_lock);
    for (i = 0; i < st->n_active; i++) {
        if (st->active[i].sp == sp && st->active[i].id == id) {
            if (--st->active[i].refs == 0) {
                st->active[i] = st->active[--st->n_active];
            }
            break;
        }
    }
    pthread_mutex_unlock(&st->active_lock);
}

static bool
active_has(store_t *st, store_space_t *sp, uint64_t id)
{
    size_t i;
    bool   found = false;

    pthread_mutex_lock(&st->active_lock);
    for (i = 0; i < st->n_active && !found; i++) {
        found = st->active[i].sp == sp && st->active[i].id == id;
    }
    pthread_mutex_unlock(&st->active_lock);
    return found;
}

/* ---- what the write path needs (store.c) -------------------------------- */

store_rc_t
store_chunks_load(store_t *st, store_space_t *sp, char *err)
{
    DBC  *cur;
    DBT   key, data;
    int   ret;

    ret = sp->chunks->cursor(sp->chunks, NULL, &cur, 0);
    if (ret != 0) {
        return store_db_fail(st, ret, "chunk cursor", err);
    }
    memset(&key, 0, sizeof(key));
    memset(&data, 0, sizeof(data));
    key.flags = DB_DBT_REALLOC;
    data.flags = DB_DBT_PARTIAL | DB_DBT_USERMEM;   /* keys only */
    while ((ret = cur->get(cur, &key, &data, DB_NEXT)) == 0) {
        if (key.size == CHUNK_KEY_LEN && ((unsigned char *) key.data)[0]
                                         == 'c')
        {
            sp->n_chunks++;
        } else if (key.size == PENDING_KEY_LEN
                   && ((unsigned char *) key.data)[0] == 'p')
        {
            sp->n_pending++;
        }
    }
    free(key.data);
    cur->close(cur);
    if (ret != DB_NOTFOUND) {
        return store_db_fail(st, ret, "chunk scan", err);
    }
    /* Whatever a crash left pending is collected from the start. */
    atomic_store(&sp->collect, sp->n_pending > 0);
    return STORE_OK;
}

int
store_chunks_held_upload(store_space_t *sp, DB_TXN *txn, DBT *key, bool rmw,
                         uint64_t *upload_id)
{
    unsigned char buf[REC_PREFIX];
    DBT           data;
    skv_version_t v;
    int           ret;

    *upload_id = 0;
    memset(&data, 0, sizeof(data));
    data.data = buf;
    data.ulen = sizeof(buf);
    data.dlen = sizeof(buf);
    data.doff = 0;
    data.flags = DB_DBT_USERMEM | DB_DBT_PARTIAL;
    ret = sp->records->get(sp->records, txn, key, &data, rmw ? DB_RMW : 0);
    if (ret == DB_NOTFOUND) {
        return 0;
    }
    if (ret != 0) {
        return ret;
    }
    store_record_peek(buf, data.size, &v, upload_id);
    return 0;
}

int
store_chunks_mark(store_space_t *sp, DB_TXN *txn, uint64_t upload_id)
{
    unsigned char k[PENDING_KEY_LEN];
    DBT           key, data;

    pending_key(k, upload_id);
    dbt_set(&key, k, sizeof(k));
    dbt_set(&data, NULL, 0);
    return sp->chunks->put(sp->chunks, txn, &key, &data, 0);
}

void
store_chunks_marked(store_space_t *sp)
{
    atomic_fetch_add(&sp->n_pending, 1);
    atomic_store(&sp->collect, true);
}

int
store_chunks_unmark(store_space_t *sp, DB_TXN *txn, uint64_t upload_id)
{
    unsigned char k[PENDING_KEY_LEN];
    DBT           key;

    pending_key(k, upload_id);
    dbt_set(&key, k, sizeof(k));
    return sp->chunks->del(sp->chunks, txn, &key, 0);
}

void
store_chunks_unmarked(store_space_t *sp)
{
    atomic_fetch_sub(&sp->n_pending, 1);
}

/* ---- uploads ------------------------------------------------------------ */

store_upload_t *
store_upload_begin(store_t *st, uint64_t size_hint)
{
    store_upload_t *up;

    (void) st;
    up = calloc(1, sizeof(*up));
    if (up == NULL) {
        return NULL;
    }
    up->size_hint = size_hint;
    up->sha = EVP_MD_CTX_new();
    if (up->sha == NULL || EVP_DigestInit_ex(up->sha, EVP_sha256(), NULL)
                           != 1)
    {
        EVP_MD_CTX_free(up->sha);
        free(up);
        return NULL;
    }
    return up;
}

void
store_upload_space(store_upload_t *up, store_space_t *sp)
{
    up->sp = sp;
}

bool
store_upload_has_space(const store_upload_t *up)
{
    return up->sp != NULL;
}

uint64_t
store_upload_length(const store_upload_t *up)
{
    return up->total;
}

bool
store_upload_chunked(const store_upload_t *up)
{
    return up->n_chunks > 0;
}

/* A fresh upload id (never 0). */
static uint64_t
new_id(void)
{
    uint64_t id = 0;

    while (id == 0) {
        if (getrandom(&id, sizeof(id), 0) != (ssize_t) sizeof(id)) {
            id = ((uint64_t) rand() << 32) ^ (uint64_t) rand()
                 ^ (uint64_t) (uintptr_t) &id;
        }
    }
    return id;
}

/*
 * Store the buffer as the next chunk, in its own transaction; the first
 * one also draws the upload id, registers it as in use and writes its
 * pending record (an id already in use here is drawn again).
 */
static store_rc_t
flush_chunk(store_t *st, store_upload_t *up, char *err)
{
    store_space_t *sp = up->sp;
    unsigned char  ck[CHUNK_KEY_LEN], pk[PENDING_KEY_LEN];
    unsigned char  sum[CHUNK_SUM_LEN];
    DBT            key, data, probe;
    DB_TXN        *txn;
    const char    *what;
    bool           first = up->n_chunks == 0;
    uint64_t       id = up->id;
    unsigned       attempt;
    int            ret;

    for (attempt = 0;; attempt++) {
        if (first) {
            id = new_id();
            if (active_add(st, sp, id) != 0) {
                snprintf(err, STORE_ERR_MAX, "out of memory");
                return STORE_ERR_DB;
            }
        }
        ret = st->env->txn_begin(st->env, NULL, &txn, DB_TXN_NOSYNC);
        if (ret != 0) {
            if (first) {
                active_remove(st, sp, id);
            }
            return store_db_fail(st, ret, "beginning a transaction", err);
        }
        what = "writing a pending upload";
        ret = 0;
        if (first) {
            pending_key(pk, id);
            dbt_set(&key, pk, sizeof(pk));
            dbt_set(&data, NULL, 0);
            ret = sp->chunks->put(sp->chunks, txn, &key, &data,
                                  DB_NOOVERWRITE);
            if (ret == 0) {
                /* An id some stored value uses (current, no pending
                 * record) would collide too. */
                chunk_key(ck, id, 0);
                dbt_set(&key, ck, sizeof(ck));
                memset(&probe, 0, sizeof(probe));
                probe.flags = DB_DBT_PARTIAL | DB_DBT_USERMEM;
                ret = sp->chunks->get(sp->chunks, txn, &key, &probe, 0);
                ret = ret == 0 ? DB_KEYEXIST
                      : ret == DB_NOTFOUND ? 0 : ret;
            }
        }
        if (ret == 0) {
            what = "writing a chunk";
            chunk_key(ck, id, up->n_chunks);
            dbt_set(&key, ck, sizeof(ck));
            skv_put_be64(sum, chunk_sum(up->buf, up->buf_len, id,
                                        up->n_chunks));
            /* The checksum then the chunk, without copying the chunk:
             * two partial puts would log twice, so the buffer keeps 8
             * bytes in front for it (see grow). */
            memcpy(up->buf - CHUNK_SUM_LEN, sum, CHUNK_SUM_LEN);
            dbt_set(&data, up->buf - CHUNK_SUM_LEN,
                    up->buf_len + CHUNK_SUM_LEN);
            ret = sp->chunks->put(sp->chunks, txn, &key, &data, 0);
        }
        if (ret == 0) {
            what = "committing a chunk";
            ret = txn->commit(txn, 0);
            if (ret == 0) {
                break;
            }
        } else {
            txn->abort(txn);
        }
        if (first) {
            active_remove(st, sp, id);
        }
        if (ret == DB_KEYEXIST && attempt < WRITE_RETRIES) {
            continue;           /* the id is taken: draw another */
        }
        if (!store_retryable(ret) || attempt == WRITE_RETRIES) {
            return store_db_fail(st, ret, what, err);
        }
        store_retry_pause(st, attempt);
    }
    if (first) {
        up->id = id;
        atomic_fetch_add(&sp->n_pending, 1);
    }
    up->n_chunks++;
    up->buf_len = 0;
    atomic_fetch_add(&sp->n_chunks, 1);
    return STORE_OK;
}

/* Room for need bytes in the chunk buffer (at most STORE_CHUNK_SIZE), with
 * CHUNK_SUM_LEN bytes in front for the checksum; grown geometrically from
 * the declared length, so that a small value costs what it is. */
static bool
grow(store_upload_t *up, size_t need)
{
    size_t         cap;
    unsigned char *base, *grown;

    if (need <= up->buf_cap) {
        return true;
    }
    cap = up->buf_cap > BUF_MIN / 2 ? up->buf_cap * 2 : BUF_MIN;
    if (up->size_hint > 0 && up->size_hint < cap) {
        cap = (size_t) up->size_hint;
    }
    if (cap > STORE_CHUNK_SIZE) {
        cap = STORE_CHUNK_SIZE;
    }
    if (cap < need) {
        cap = need;
    }
    base = up->buf != NULL ? up->buf - CHUNK_SUM_LEN : NULL;
    grown = realloc(base, cap + CHUNK_SUM_LEN);
    if (grown == NULL) {
        return false;
    }
    up->buf = grown + CHUNK_SUM_LEN;
    up->buf_cap = cap;
    return true;
}

store_rc_t
store_upload_write(store_t *st, store_upload_t *up, const void *data,
                   size_t len, char *err)
{
    const unsigned char *p = data;
    size_t               n;
    store_rc_t           rc;

    if (EVP_DigestUpdate(up->sha, data, len) != 1) {
        snprintf(err, STORE_ERR_MAX, "SHA-256 failed");
        return STORE_ERR_DB;
    }
    up->total += len;
    while (len > 0) {
        if (up->buf_len == STORE_CHUNK_SIZE) {
            /* More than a chunk: the value is large. */
            if (up->sp == NULL) {
                snprintf(err, STORE_ERR_MAX, "no namespace for an upload");
                return STORE_ERR_DB;
            }
            rc = flush_chunk(st, up, err);
            if (rc != STORE_OK) {
                return rc;
            }
        }
        n = STORE_CHUNK_SIZE - up->buf_len;
        if (n > len) {
            n = len;
        }
        if (!grow(up, up->buf_len + n)) {
            snprintf(err, STORE_ERR_MAX, "out of memory buffering a value");
            return STORE_ERR_DB;
        }
        memcpy(up->buf + up->buf_len, p, n);
        up->buf_len += n;
        p += n;
        len -= n;
    }
    return STORE_OK;
}

void
store_upload_sha256(store_upload_t *up, unsigned char out[STORE_SHA256_LEN])
{
    unsigned int n = STORE_SHA256_LEN;

    if (!up->sha_done) {
        if (EVP_DigestFinal_ex(up->sha, up->digest, &n) != 1) {
            memset(up->digest, 0, sizeof(up->digest));
        }
        up->sha_done = true;
    }
    memcpy(out, up->digest, STORE_SHA256_LEN);
}

store_rc_t
store_upload_commit(store_t *st, store_space_t *sp, store_upload_t *up,
                    const unsigned char *key, size_t key_len,
                    const skv_version_t *version, const char *content_type,
                    size_t ct_len, skv_version_t *current,
                    store_held_t *held, char *err)
{
    unsigned char digest[STORE_SHA256_LEN];
    store_rec_t   rec;
    store_rc_t    rc;

    store_upload_sha256(up, digest);
    if (up->n_chunks == 0) {
        /* At most one chunk in all: one record, as always. */
        return store_put_if_newer_sha(st, sp, key, key_len, version,
                                      content_type, ct_len, up->buf,
                                      up->buf_len, digest, current, held,
                                      err);
    }
    if (sp != up->sp) {
        snprintf(err, STORE_ERR_MAX, "an upload changed namespace");
        return STORE_ERR_DB;
    }
    if (ct_len > SKV_CONTENT_TYPE_MAX) {
        snprintf(err, STORE_ERR_MAX, "content type longer than %d bytes",
                 SKV_CONTENT_TYPE_MAX);
        return STORE_ERR_INVALID;
    }
    if (up->buf_len > 0) {
        rc = flush_chunk(st, up, err);
        if (rc != STORE_OK) {
            return rc;
        }
    }
    memset(&rec, 0, sizeof(rec));
    rec.version = *version;
    rec.chunked = true;
    rec.has_sha256 = true;
    rec.value_len = up->total;
    memcpy(rec.sha256, digest, sizeof(digest));
    rec.upload_id = up->id;
    rec.chunk_size = (uint32_t) STORE_CHUNK_SIZE;
    rec.content_type = content_type;
    rec.content_type_len = ct_len;
    rc = store_write_record(st, sp, key, key_len, &rec, current, held, err);
    up->applied = rc == STORE_APPLIED;
    return rc;
}

void
store_upload_end(store_t *st, store_upload_t *up)
{
    if (up == NULL) {
        return;
    }
    if (up->id != 0) {
        if (!up->applied) {
            atomic_store(&up->sp->collect, true);   /* its chunks go */
        }
        active_remove(st, up->sp, up->id);
    }
    if (up->buf != NULL) {
        free(up->buf - CHUNK_SUM_LEN);
    }
    EVP_MD_CTX_free(up->sha);
    free(up);
}

/* ---- readers ------------------------------------------------------------ */

store_rc_t
store_reader_open(store_t *st, store_space_t *sp, const unsigned char *key,
                  size_t key_len, const store_item_t *item,
                  store_reader_t **out, char *err)
{
    store_reader_t *rd;
    DBT             k;
    uint64_t        id;
    unsigned        attempt;
    int             ret;

    *out = NULL;
    if (item->chunk_size == 0 || item->chunk_size > CHUNK_SIZE_MAX) {
        snprintf(err, STORE_ERR_MAX, "corrupt value: a chunk size of %u",
                 (unsigned) item->chunk_size);
        return STORE_ERR_CORRUPT;
    }
    rd = calloc(1, sizeof(*rd));
    if (rd != NULL) {
        rd->buf = malloc((size_t) item->chunk_size + CHUNK_SUM_LEN);
    }
    if (rd == NULL || rd->buf == NULL || active_add(st, sp, item->upload_id)
                                         != 0)
    {
        if (rd != NULL) {
            free(rd->buf);
        }
        free(rd);
        snprintf(err, STORE_ERR_MAX, "out of memory");
        return STORE_ERR_DB;
    }
    rd->sp = sp;
    rd->id = item->upload_id;
    rd->chunk_size = item->chunk_size;
    rd->value_len = item->value_len;

    /* Registered: now the value must still be current (see the top). */
    dbt_set(&k, (void *) key, key_len);
    for (attempt = 0;; attempt++) {
        ret = store_chunks_held_upload(sp, NULL, &k, false, &id);
        if (!store_retryable(ret) || attempt == WRITE_RETRIES) {
            break;
        }
        store_retry_pause(st, attempt);
    }
    if (ret != 0 || id != rd->id) {
        store_reader_close(st, rd);
        if (ret != 0) {
            return store_db_fail(st, ret, "reading a record", err);
        }
        snprintf(err, STORE_ERR_MAX, "the value changed");
        return STORE_CONFLICT;
    }
    *out = rd;
    return STORE_OK;
}

store_rc_t
store_reader_chunk(store_t *st, store_reader_t *rd, uint64_t n,
                   const unsigned char **data, size_t *len, char *err)
{
    unsigned char ck[CHUNK_KEY_LEN];
    DBT           key, d;
    uint64_t      off = n * rd->chunk_size;
    size_t        want;
    unsigned      attempt;
    int           ret;

    if (off >= rd->value_len) {
        snprintf(err, STORE_ERR_MAX, "chunk %llu is past the value",
                 (unsigned long long) n);
        return STORE_ERR_DB;
    }
    want = rd->value_len - off < rd->chunk_size
           ? (size_t) (rd->value_len - off) : rd->chunk_size;
    chunk_key(ck, rd->id, (uint32_t) n);
    dbt_set(&key, ck, sizeof(ck));
    for (attempt = 0;; attempt++) {
        memset(&d, 0, sizeof(d));
        d.data = rd->buf;
        d.ulen = (u_int32_t) (rd->chunk_size + CHUNK_SUM_LEN);
        d.flags = DB_DBT_USERMEM;
        ret = rd->sp->chunks->get(rd->sp->chunks, NULL, &key, &d, 0);
        if (!store_retryable(ret) || attempt == WRITE_RETRIES) {
            break;
        }
        store_retry_pause(st, attempt);
    }
    if (ret == DB_NOTFOUND || ret == DB_BUFFER_SMALL
        || (ret == 0 && (d.size != want + CHUNK_SUM_LEN
                         || skv_get_be64(rd->buf)
                            != chunk_sum(rd->buf + CHUNK_SUM_LEN, want,
                                         rd->id, (uint32_t) n))))
    {
        snprintf(err, STORE_ERR_MAX, "corrupt value: chunk %llu of upload "
                 "%016llx is %s", (unsigned long long) n,
                 (unsigned long long) rd->id,
                 ret == DB_NOTFOUND ? "missing" : "damaged");
        return STORE_ERR_CORRUPT;
    }
    if (ret != 0) {
        return store_db_fail(st, ret, "reading a chunk", err);
    }
    *data = rd->buf + CHUNK_SUM_LEN;
    *len = want;
    return STORE_OK;
}

void
store_reader_close(store_t *st, store_reader_t *rd)
{
    if (rd == NULL) {
        return;
    }
    active_remove(st, rd->sp, rd->id);
    free(rd->buf);
    free(rd);
}

/* ---- the collector ------------------------------------------------------ */

/*
 * Remove up to COLLECT_PER_TXN chunks of upload id, in one transaction
 * that first reads its pending record with a write lock (gone: the upload
 * became current, nothing to do); the last one also removes the pending
 * record.  *removed: chunks removed; *done: nothing is left of it;
 * *dropped: this call removed its pending record.
 */
static int
collect_some(store_t *st, store_space_t *sp, uint64_t id, size_t *removed,
             bool *done, bool *dropped)
{
    unsigned char pk[PENDING_KEY_LEN], ck[CHUNK_KEY_LEN];
    DBT           key, data;
    DB_TXN       *txn;
    DBC          *cur = NULL;
    size_t        n = 0;
    int           ret;

    *removed = 0;
    *done = false;
    *dropped = false;
    ret = st->env->txn_begin(st->env, NULL, &txn, DB_TXN_NOSYNC);
    if (ret != 0) {
        return ret;
    }
    pending_key(pk, id);
    dbt_set(&key, pk, sizeof(pk));
    memset(&data, 0, sizeof(data));
    data.flags = DB_DBT_PARTIAL | DB_DBT_USERMEM;
    ret = sp->chunks->get(sp->chunks, txn, &key, &data, DB_RMW);
    if (ret == DB_NOTFOUND) {
        txn->abort(txn);
        *done = true;
        return 0;
    }
    if (ret == 0) {
        ret = sp->chunks->cursor(sp->chunks, txn, &cur, 0);
    }
    while (ret == 0 && n < COLLECT_PER_TXN) {
        chunk_key(ck, id, 0);
        memset(&key, 0, sizeof(key));
        key.data = ck;
        key.size = sizeof(ck);
        key.ulen = sizeof(ck);
        key.flags = DB_DBT_USERMEM;
        memset(&data, 0, sizeof(data));
        data.flags = DB_DBT_PARTIAL | DB_DBT_USERMEM;
        ret = cur->get(cur, &key, &data, DB_SET_RANGE | DB_RMW);
        if (ret == DB_BUFFER_SMALL
            || (ret == 0 && (key.size != CHUNK_KEY_LEN || ck[0] != 'c'
                             || skv_get_be64(ck + 1) != id)))
        {
            ret = DB_NOTFOUND;  /* past this upload's chunks */
        }
        if (ret == 0) {
            ret = cur->del(cur, 0);
            n += ret == 0;
        }
    }
    if (cur != NULL) {
        cur->close(cur);
    }
    if (ret == DB_NOTFOUND) {
        /* No chunk left: the pending record goes too. */
        dbt_set(&key, pk, sizeof(pk));
        ret = sp->chunks->del(sp->chunks, txn, &key, 0);
        *done = ret == 0;
    }
    if (ret != 0) {
        txn->abort(txn);
        *done = false;
        return ret;
    }
    ret = txn->commit(txn, 0);
    if (ret != 0) {
        *done = false;
        return ret;
    }
    *removed = n;
    *dropped = *done;
    return 0;
}

/* The pending uploads of sp with ids >= from (up to max), read outside
 * any transaction. */
static int
pending_ids(store_space_t *sp, uint64_t from, uint64_t *ids, size_t max,
            size_t *n)
{
    unsigned char kbuf[PENDING_KEY_LEN + 8];
    DBC          *cur;
    DBT           key, data;
    int           ret;

    *n = 0;
    ret = sp->chunks->cursor(sp->chunks, NULL, &cur, 0);
    if (ret != 0) {
        return ret;
    }
    memset(&key, 0, sizeof(key));
    pending_key(kbuf, from);
    key.data = kbuf;
    key.size = PENDING_KEY_LEN;
    key.ulen = sizeof(kbuf);
    key.flags = DB_DBT_USERMEM;
    memset(&data, 0, sizeof(data));
    data.flags = DB_DBT_PARTIAL | DB_DBT_USERMEM;
    ret = cur->get(cur, &key, &data, DB_SET_RANGE);
    while (ret == 0 && *n < max) {
        if (key.size == PENDING_KEY_LEN && kbuf[0] == 'p') {
            ids[(*n)++] = skv_get_be64(kbuf + 1);
        }
        ret = cur->get(cur, &key, &data, DB_NEXT);
    }
    cur->close(cur);
    return ret == DB_NOTFOUND || ret == DB_BUFFER_SMALL ? 0 : ret;
}

store_rc_t
store_collect_chunks(store_t *st, size_t max_chunks, size_t *removed,
                     char *err)
{
    uint64_t       ids[COLLECT_IDS], from;
    store_space_t *sp;
    size_t         n_ids, i, some;
    bool           done, dropped, more, last_page;
    unsigned       attempt;
    int            ret;

    *removed = 0;
    for (sp = store_space_next(st, "", 0, false); sp != NULL;
         sp = store_space_next(st, sp->name, sp->name_len, true))
    {
        if (!atomic_exchange(&sp->collect, false)) {
            continue;
        }
        more = false;
        from = 0;
        do {
            for (attempt = 0;; attempt++) {
                ret = pending_ids(sp, from, ids, COLLECT_IDS, &n_ids);
                if (!store_retryable(ret) || attempt == WRITE_RETRIES) {
                    break;
                }
                store_retry_pause(st, attempt);
            }
            if (ret != 0) {
                atomic_store(&sp->collect, true);
                return store_db_fail(st, ret, "listing pending uploads",
                                     err);
            }
            last_page = n_ids < COLLECT_IDS || ids[n_ids - 1] == UINT64_MAX;
            if (n_ids > 0) {
                from = ids[n_ids - 1] + 1;
            }
            for (i = 0; i < n_ids; i++) {
                if (active_has(st, sp, ids[i])) {
                    more = true;    /* in use: another time */
                    continue;
                }
                done = false;
                attempt = 0;
                while (!done) {
                    if (*removed >= max_chunks) {
                        atomic_store(&sp->collect, true);
                        return STORE_OK;
                    }
                    ret = collect_some(st, sp, ids[i], &some, &done,
                                       &dropped);
                    if (store_retryable(ret) && attempt < WRITE_RETRIES) {
                        store_retry_pause(st, attempt++);
                        continue;
                    }
                    if (ret != 0) {
                        atomic_store(&sp->collect, true);
                        return store_db_fail(st, ret, "collecting chunks",
                                             err);
                    }
                    *removed += some;
                    atomic_fetch_sub(&sp->n_chunks, some);
                    atomic_fetch_add(&st->chunks_collected, some);
                    if (dropped) {
                        atomic_fetch_sub(&sp->n_pending, 1);
                    }
                }
            }
        } while (!last_page);
        if (more) {
            atomic_store(&sp->collect, true);
        }
    }
    return STORE_OK;
}
