/*
 * store_int.h - what the files of the storage engine share (store.c,
 * store_env.c, store_index.c, store_meta.c, store_scan.c, store_space.c);
 * nothing outside them includes it.
 */
#ifndef STORAGED_STORE_INT_H
#define STORAGED_STORE_INT_H

#include <db.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "skv_key.h"
#include "store.h"

/*
 * Index entries (store_index.c; docs/protocol.md, "The index entry").
 * Format 3, 28 + 16 * (n + m) bytes:
 *   0   1   INDEX_FORMAT (3)
 *   1   1   flags: INDEX_TOMBSTONE, INDEX_COMPLETE, INDEX_UNORDERED,
 *           INDEX_ORIGINS_KNOWN, INDEX_ORIGINS_COMPLETE
 *   2   8   version hlc, big-endian      10  8   version origin
 *   18  8   value length                 26  1   n, history length (0..4)
 *   27  16n the versions held before the current one, newest first
 *   27+16n      1    m, origin maxima (0..4)
 *   28+16n      16m  for each of m origins (router clocks), the newest
 *                    version of that origin the key held here
 * Format 2 (27 + 16 * n bytes) is format 3 without the origin maxima.
 * The legacy form (before the history), 25 bytes: flags (0 or the
 * tombstone bit), hlc, origin, value length.  Its first byte is never 2
 * or 3.
 */
#define INDEX_FORMAT       3
#define INDEX_FORMAT_2     2
#define INDEX_TOMBSTONE    0x01u /* the current version is a tombstone */
#define INDEX_COMPLETE     0x02u /* the history reaches the first version */
#define INDEX_UNORDERED    0x04u /* replaced an invalid future version once */
#define INDEX_ORIGINS_KNOWN    0x08u /* the origin maxima are valid */
#define INDEX_ORIGINS_COMPLETE 0x10u /* ... and list every origin held */
#define INDEX_FLAGS        0x1fu
#define INDEX_LEGACY_SIZE  25
#define INDEX_HISTORY_MAX  4
#define INDEX_ORIGINS_MAX  4
#define INDEX_FIXED_SIZE   27
#define INDEX_ENTRY_MAX    (INDEX_FIXED_SIZE + 16 * INDEX_HISTORY_MAX \
                            + 1 + 16 * INDEX_ORIGINS_MAX)
#define WRITE_RETRIES      100  /* deadlock retries before giving up */

/* A namespace (store_space.c): its databases and its counters. */
struct store_space {
    char             name[STORE_SPACE_NAME_MAX + 1];   /* NUL-terminated */
    size_t           name_len;
    DB              *records;
    DB              *index;
    DB              *chunks;      /* large values' chunks (store_chunks.c) */
    _Atomic uint64_t keys;
    _Atomic uint64_t tombstones;
    _Atomic uint64_t bytes;
    _Atomic uint64_t n_chunks;    /* chunk records */
    _Atomic uint64_t n_pending;   /* pending-upload records */
    atomic_bool      collect;     /* the collector has work here */
};

/*
 * Records (store_record.c).  Format 2, written by every write since large
 * values; format 1 (core/skv_record.h) is still read.  Format 2:
 *   0   1   REC_FORMAT (2)
 *   1   1   flags: REC_TOMBSTONE, REC_CHUNKED
 *   2   8   version hlc, big-endian      10  8   version origin
 *   18  8   value length (all of it, chunked or not)
 *   26  32  SHA-256 of the value (zeros for a tombstone)
 *   58  8   upload id (chunked: the chunks' upload; else 0)
 *   66  4   chunk size (chunked; else 0)
 *   70  8   XXH3-64 of the whole record with these 8 bytes left out
 *   78  1   content type length L
 *   79  L   content type
 *   79+L    the value (not chunked; empty otherwise)
 */
#define REC_FORMAT        2
#define REC_TOMBSTONE     0x01u
#define REC_CHUNKED       0x02u
#define REC_FIXED         79
#define REC_SUM_OFF       70
#define REC_PREFIX        78    /* what store_record_peek reads */

typedef struct {
    skv_version_t  version;
    bool           tombstone;
    bool           chunked;
    bool           has_sha256;     /* format 1 keeps none */
    uint64_t       value_len;
    unsigned char  sha256[STORE_SHA256_LEN];
    uint64_t       upload_id;
    uint32_t       chunk_size;
    const char    *content_type;
    size_t         content_type_len;
    const void    *value;          /* inline value (not chunked) */
    size_t         inline_len;
} store_rec_t;

/* Size of a format 2 record holding rec (its inline value included). */
size_t store_record_size(const store_rec_t *rec);
/* Encode rec (format 2, value included, checksum set) into out
 * (store_record_size bytes). */
void store_record_encode(const store_rec_t *rec, unsigned char *out);
/* Decode a record of either format; pointers point into buf.  0, or -1
 * with a reason in err (a bad checksum included). */
int store_record_decode(const void *buf, size_t len, store_rec_t *out,
                        char *err);
/* From the first REC_PREFIX bytes (or fewer) of a record: its version and
 * upload id (0 when it is not chunked or of format 1). */
void store_record_peek(const void *buf, size_t len, skv_version_t *version,
                       uint64_t *upload_id);

/* Store rec (format 2) under key in sp if its version is newer (store.c);
 * an applied chunked record also drops its upload's pending record. */
store_rc_t store_write_record(store_t *st, store_space_t *sp,
                              const unsigned char *key, size_t key_len,
                              const store_rec_t *rec, skv_version_t *current,
                              store_held_t *held, char *err);

/* Chunks (store_chunks.c). */
/* Count sp's chunk and pending records at open. */
store_rc_t store_chunks_load(store_t *st, store_space_t *sp, char *err);
/* Read the upload id of the value the key holds in sp (0: none or not
 * chunked) under txn, with a write lock when rmw. */
int store_chunks_held_upload(store_space_t *sp, DB_TXN *txn, DBT *key,
                             bool rmw, uint64_t *upload_id);
/* Mark an upload's chunks as garbage (its value was replaced or removed)
 * in txn; after the commit call store_chunks_marked. */
int store_chunks_mark(store_space_t *sp, DB_TXN *txn, uint64_t upload_id);
void store_chunks_marked(store_space_t *sp);
/* The pending record of an upload that became current, in txn; after
 * the commit call store_chunks_unmarked. */
int store_chunks_unmark(store_space_t *sp, DB_TXN *txn, uint64_t upload_id);
void store_chunks_unmarked(store_space_t *sp);
/* Set up and tear down the in-use registry. */
void store_chunks_init(store_t *st);
void store_chunks_destroy(store_t *st);

struct store {
    DB_ENV          *env;
    DB              *meta;          /* watermarks, epochs, namespace names
                                       (store_meta.c) */
    /* The namespaces, sorted by name (byte order), default included
     * (store_space.c).  The array only grows and a space is never freed
     * before store_close: a pointer found once stays valid.  spaces_lock
     * guards the array (readers look up under it shared, briefly); the
     * creation of a namespace is serialised by spaces_create, held across
     * its transaction, and published under spaces_lock exclusively. */
    store_space_t   *dflt;
    store_space_t  **spaces;
    size_t           n_spaces;
    size_t           cap_spaces;
    pthread_rwlock_t spaces_lock;
    pthread_mutex_t  spaces_create;
    int              lock_fd;
    uint64_t         max_skew_ms;   /* store_options_t.max_clock_skew_ms */
    uint64_t         grace_ms;      /* store_options_t.tombstone_grace_ms */

    atomic_bool      panicked;
    _Atomic uint64_t deadlock_retries;
    _Atomic uint64_t purged;
    _Atomic uint64_t removed;       /* copies removed (DELETE ?remove) */
    _Atomic uint64_t corrupt_values; /* damaged copies quarantined */
    /* Every version of an index entry ever dropped here (a purged
     * tombstone, a removed copy) has a time part below this (ms): raised
     * before the drop commits, saved in meta.db with it. */
    _Atomic uint64_t purged_below;
    _Atomic uint64_t purged_below_saved; /* committed to meta.db: at most
                                            what it holds */

    /* The epoch fence (store_meta.c): kv requests and purges hold it
     * shared while they check the window and run; a new window is put in
     * place under it exclusively, so that once store_epochs_set returns no
     * request admitted under the old window is still running.  It prefers
     * writers, so a stream of requests cannot hold a new window back. */
    pthread_rwlock_t fence;
    bool             epochs_set;    /* the window; under fence */
    uint64_t         epoch_min;
    uint64_t         epoch_max;
    /* Serialises the setters of the window and of the repair watermark
     * (compare, commit, publish), held across their commit. */
    pthread_mutex_t  meta_write;
    /* Guards the repair watermark in memory (held briefly). */
    pthread_mutex_t  repair_lock;
    bool             repair_set;
    skv_version_t    repair;

    /* Uploads and chunked values in use (store_chunks.c): the collector
     * never touches their chunks.  Guarded by active_lock. */
    pthread_mutex_t  active_lock;
    struct store_active {
        store_space_t *sp;
        uint64_t       id;
        unsigned       refs;
    }               *active;
    size_t           n_active;
    size_t           cap_active;
    _Atomic uint64_t chunks_collected;

    /* when the data was last served, as loaded at open (store_meta.c) */
    bool             alive_set;
    uint64_t         alive_ms;

    /* Where the tombstone purge continues: the namespace (by name, so
     * that one created meanwhile does not shift it; done: finished, go on
     * with the next one) and the last key seen there (empty: from its
     * first key).  Only the background thread uses it. */
    char             purge_space[STORE_SPACE_NAME_MAX + 1];
    size_t           purge_space_len;
    bool             purge_space_done;
    unsigned char    purge_key[SKV_KEY_MAX];
    size_t           purge_key_len;
};

/* The decoded form of an index entry (either form). */
typedef struct {
    bool          found;
    bool          tombstone;
    bool          legacy;     /* read from the 25-byte form */
    bool          complete;   /* history reaches the first version held */
    bool          unordered;  /* once replaced an invalid future version */
    skv_version_t version;
    uint64_t      value_len;
    unsigned      n_history;
    skv_version_t history[INDEX_HISTORY_MAX]; /* newest first */
    bool          origins_known;    /* origin_max is valid */
    bool          origins_complete; /* no origin held ever fell out of it */
    unsigned      n_origins;
    skv_version_t origin_max[INDEX_ORIGINS_MAX]; /* one per origin */
} index_entry_t;

/* 0, or -1 when data is not a valid index entry of either form. */
int store_index_decode(const DBT *data, index_entry_t *e);
/* Format 2 into out (INDEX_ENTRY_MAX bytes); returns its size. */
size_t store_index_encode(unsigned char *out, const index_entry_t *e);
/* neu's history after it replaces old (old->found false: a new key);
 * overruled: old held an invalid future version. */
void store_index_follow(index_entry_t *neu, const index_entry_t *old,
                        bool overruled);
/* Whether the key whose entry is e ever held v here (see store.h);
 * floor_ms: versions with a time part below it may have been purged. */
store_held_t store_index_held(const index_entry_t *e, const skv_version_t *v,
                              uint64_t floor_ms);
/* The floor for store_index_held: max(purged_below, now - grace). */
uint64_t store_purge_floor(store_t *st);
/* The floor an entry's removal must raise the purge watermark to: above
 * the time part of every version it records, so of every version an
 * ordered entry ever held (store_index.c). */
uint64_t store_index_floor(const index_entry_t *e);

/* meta.db (store_meta.c).  Set up the locks: 0 or an errno. */
int store_meta_init(store_t *st);
void store_meta_destroy(store_t *st);
/* Read the watermarks and the window at open. */
store_rc_t store_meta_load(store_t *st, char *err);
/* Raise the purge watermark to floor_ms in memory now and in meta.db in
 * txn (read there with a write lock, so concurrent raisers never lower
 * it); a Berkeley DB error or 0.  After txn commits, call
 * store_purged_below_committed. */
int store_raise_purged_below(store_t *st, DB_TXN *txn, uint64_t floor_ms);
void store_purged_below_committed(store_t *st, uint64_t floor_ms);
/* Record namespace name (len bytes) in meta.db in txn: 0 or a Berkeley DB
 * error.  At open, call fn for every name recorded, in byte order. */
int store_meta_add_space(store_t *st, DB_TXN *txn, const char *name,
                         size_t len);
store_rc_t store_meta_load_spaces(store_t *st,
                                  store_rc_t (*fn)(store_t *st,
                                                   const char *name,
                                                   size_t len, char *err),
                                  char *err);

/* Namespaces (store_space.c).  At open, after meta.db: the default
 * namespace and every recorded one, with their counters; at close (or a
 * failed open), close and free them all. */
store_rc_t store_spaces_open(store_t *st, char *err);
void store_spaces_close(store_t *st);
/* A database of the environment: created if missing, in txn (NULL: its
 * own transaction); 0 or a Berkeley DB error (*out NULL). */
int store_open_db(store_t *st, DB_TXN *txn, DB **out, const char *file,
                  DBTYPE type);
/* The same with a page size (0: Berkeley DB's choice). */
int store_open_db_paged(store_t *st, DB_TXN *txn, DB **out,
                        const char *file, DBTYPE type, u_int32_t pagesize);
/* The first namespace whose name is >= name (> name when after is true;
 * len 0 and after false: the first), or NULL when there is none. */
store_space_t *store_space_next(store_t *st, const char *name, size_t len,
                                bool after);

/* Hold the fence shared (see struct store); *window is the window. */
void store_fence_hold(store_t *st, store_epochs_t *window);
/* An atomic maximum. */
static inline void
store_atomic_max(_Atomic uint64_t *a, uint64_t v)
{
    uint64_t cur = atomic_load(a);

    while (cur < v && !atomic_compare_exchange_weak(a, &cur, v)) {
        /* cur was reloaded: try again */
    }
}

/* A Berkeley DB error as a store_rc_t and a one-line message in err
 * (store_env.c: also notices a panicked environment). */
store_rc_t store_db_fail(store_t *st, int ret, const char *what, char *err);
/* Deadlock or lock not granted: worth retrying from the start. */
bool store_retryable(int ret);
/* A short randomised pause before retry number attempt (counted). */
void store_retry_pause(store_t *st, unsigned attempt);

/*
 * What the body of an index transaction decided (see store_index_txn).  A body
 * that hits a Berkeley DB error sets ret and what, and the transaction is
 * aborted (and retried from the start on deadlock); otherwise it sets rc
 * and whether to commit.
 */
typedef struct {
    store_rc_t   rc;
    bool         commit;
    int          ret;
    const char  *what;
} txn_step_t;

/* old: the key's index entry in sp, read with a write lock (old->found
 * false when there is none; corrupt true when it does not decode). */
typedef void (*txn_body_fn)(store_t *st, store_space_t *sp, DB_TXN *txn,
                            DBT *key, const index_entry_t *old,
                            bool corrupt, void *arg, txn_step_t *step,
                            char *err);

/*
 * Run body in a transaction that first reads the key's index entry with a
 * write lock; commit or abort as it decides, retrying on deadlock (store.c).
 * *committed is set when the transaction committed.
 */
store_rc_t store_index_txn(store_t *st, store_space_t *sp,
                           const unsigned char *key, size_t key_len,
                           txn_body_fn body, void *arg, bool *committed,
                           char *err);

#endif
