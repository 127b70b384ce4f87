/*
 * store.h - storaged's storage engine interface.
 *
 * The HTTP layer talks only to this interface; Berkeley DB is an
 * implementation detail of store.c.  Every write is "if newer": it is
 * applied only when its version is newer than whatever the key holds (value
 * or tombstone), atomically, so that replicas converge on the newest write
 * whatever order writes arrive in.
 *
 * One exception: with max_clock_skew_ms set, a held version more than that
 * far ahead of this node's clock is invalid (it was stored by a node
 * without the check, or restored, or the clock stepped back): a write whose
 * own version is not too far ahead replaces it as if it were older, in the
 * same transaction, and one warning line is logged.  Otherwise such a key
 * would refuse (409) every sane write forever.
 *
 * Every applied write also keeps, in the key's index entry, the versions
 * the key held before (up to 4, newest first) and whether that list goes
 * back to the first version this node stored for the key: a refused write
 * (STORE_CONFLICT) is told whether this node ever held its version
 * (store_held_t; docs/protocol.md, "X-Simplekv-Held").
 *
 * Keys live in namespaces (store_space_t): each has its own pair of
 * databases, so keys of different namespaces never meet (see store.c).
 * A request resolves its namespace once (store_space) and passes it to
 * every call about its keys.
 *
 * Functions return a store_rc_t; on a STORE_ERR_* result they also fill
 * err (a one-line message for the log and the error body).
 */
#ifndef STORAGED_STORE_H
#define STORAGED_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "skv_version.h"

typedef enum {
    STORE_OK = 0,
    STORE_APPLIED,      /* the write is now stored */
    STORE_UNCHANGED,    /* exactly this version was already stored */
    STORE_CONFLICT,     /* a newer version is stored (returned in current) */
    STORE_NOT_FOUND,    /* the key was never written (or was purged) */
    STORE_ERR_NOSPACE,  /* disk full or file size limit: nothing changed */
    STORE_ERR_INVALID,  /* the request cannot be stored (e.g. content type) */
    STORE_ERR_CORRUPT,  /* a stored record failed to decode */
    STORE_ERR_DB        /* any other database failure: nothing changed */
} store_rc_t;

#define STORE_ERR_MAX 256

/* Whether this node ever held exactly a write's version for its key.
 * STORE_HELD_NO is certain; when it cannot be, the answer is UNKNOWN. */
typedef enum {
    STORE_HELD_UNKNOWN = 0,
    STORE_HELD_YES,
    STORE_HELD_NO
} store_held_t;

typedef struct store store_t;
/* A namespace: opened once (at store_open, or at its first write), kept
 * until store_close; the pointer stays valid until then. */
typedef struct store_space store_space_t;

/* A namespace name: 1 to STORE_SPACE_NAME_MAX bytes of [A-Za-z0-9_-]. */
#define STORE_SPACE_NAME_MAX  64
#define STORE_SPACE_NAME_RULE "a namespace name is 1 to 64 bytes of A-Z, " \
                              "a-z, 0-9, '_' and '-'"
/* The default namespace: records.db + index.db, the keys of /v1/kv/. */
#define STORE_SPACE_DEFAULT   "default"
/* Namespaces one node holds at most (each keeps two databases open). */
#define STORE_SPACES_MAX      1024

typedef struct {
    const char *dir;
    bool        fsync_commits;
    uint64_t    cache_size;
    /* A held version more than this many ms ahead of the clock yields to
     * a write (see above); 0: never (every write must be newer). */
    uint64_t    max_clock_skew_ms;
    /* --tombstone-grace (0: no purging): versions older than now minus
     * this may have been held by a purged key, so never answer "no". */
    uint64_t    tombstone_grace_ms;
} store_options_t;

/*
 * Large values (docs/protocol.md, "Large values").  A value of more than
 * STORE_CHUNK_SIZE bytes is stored as chunks of STORE_CHUNK_SIZE bytes
 * (the last one shorter) in the namespace's chunk database, written as
 * the upload arrives (store_upload_*), and switched to in one transaction
 * at the end; a value of at most STORE_CHUNK_SIZE bytes is one record, as
 * before.  Compile-time: the chunk size of a value is kept in its record,
 * so changing it later leaves stored values readable.
 */
#define STORE_CHUNK_SIZE   ((size_t) 256 * 1024)
#define STORE_SHA256_LEN   32

/* A record read by store_get; release with store_item_free. */
typedef struct {
    skv_version_t version;
    bool          tombstone;
    const char   *content_type; /* not NUL-terminated; may be empty */
    size_t        content_type_len;
    const void   *value;        /* NULL for a chunked value */
    size_t        value_len;    /* the whole value's length, chunked too */
    bool          has_sha256;   /* false: a record written before digests */
    unsigned char sha256[STORE_SHA256_LEN];
    bool          chunked;      /* a large value: read it with
                                   store_reader_open */
    uint64_t      upload_id;    /* chunked: whose chunks */
    uint32_t      chunk_size;   /* chunked: the size of all but the last */
    void         *buf;          /* owns the memory the pointers point into */
} store_item_t;

/* One namespace's counters (store_spaces_list). */
typedef struct {
    char     name[STORE_SPACE_NAME_MAX + 1];
    uint64_t keys;
    uint64_t tombstones;
    uint64_t bytes;
    uint64_t chunks;          /* chunk records of large values */
    uint64_t chunk_uploads;   /* pending uploads (see store_stats_t) */
} store_space_stats_t;

typedef struct {
    uint64_t keys;        /* live (non-tombstone) keys, all namespaces */
    uint64_t tombstones;
    uint64_t bytes;       /* sum of live value sizes */
    uint64_t cache_hits;
    uint64_t cache_misses;
    uint64_t log_writes;  /* write(2)s of the transaction log */
    uint64_t log_syncs;   /* fsyncs of the transaction log */
    uint64_t deadlock_retries;
    uint64_t tombstones_purged;
    uint64_t copies_removed;  /* DELETE ?remove */
    uint64_t corrupt_values;  /* damaged copies quarantined */
    uint64_t chunks;          /* chunk records, all namespaces */
    uint64_t chunk_uploads;   /* uploads whose chunks are not (or no
                                 longer) a current value: in progress or
                                 waiting for the collector */
    uint64_t chunks_collected;  /* chunk records removed since start */
} store_stats_t;

/* The accepted epoch window (docs/protocol.md, "The epoch fence"). */
typedef struct {
    bool     set;         /* false: never set, every request is accepted */
    uint64_t min;
    uint64_t max;
} store_epochs_t;

/* What a scan reports for each key, in byte order of keys. */
typedef struct {
    const unsigned char *key;
    size_t               key_len;
    skv_version_t        version;
    bool                 tombstone;
} store_entry_t;

/* Return true to continue the scan, false to stop it. */
typedef bool (*store_scan_fn)(void *arg, const store_entry_t *entry);

store_rc_t store_open(store_t **out, const store_options_t *opt, char *err);
/* Checkpoints and closes; safe only when no other call is in progress. */
void store_close(store_t *st);

/* Whether name (len bytes, not NUL-terminated) is a namespace name. */
static inline bool
store_space_name_valid(const char *name, size_t len)
{
    size_t i;

    if (len == 0 || len > STORE_SPACE_NAME_MAX) {
        return false;
    }
    for (i = 0; i < len; i++) {
        char ch = name[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
              || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
        {
            return false;
        }
    }
    return true;
}

/*
 * The namespace called name: STORE_OK with *out.  One this node never
 * held: STORE_NOT_FOUND (*out NULL) unless create is true, when it is
 * created first: its two databases and its name in meta.db, in one
 * transaction committed before this returns (so a write acknowledged in
 * it implies the namespace survives a crash).  Concurrent creators of
 * one name create it once.  A malformed name: STORE_ERR_INVALID; more
 * than STORE_SPACES_MAX namespaces: STORE_ERR_NOSPACE.
 */
store_rc_t store_space(store_t *st, const char *name, size_t len,
                       bool create, store_space_t **out, char *err);

/* Every namespace this node holds and its counters, sorted by name
 * (byte order), default included: *out malloc'd (free it), *n entries.
 * NULL only when out of memory. */
store_space_stats_t *store_spaces_list(store_t *st, size_t *n);

/*
 * The calls below about keys take the key's namespace sp.  The reads
 * (store_get, store_scan) and store_remove_if_version also take NULL:
 * a namespace this node never held, which holds nothing.
 */
store_rc_t store_get(store_t *st, store_space_t *sp,
                     const unsigned char *key, size_t key_len,
                     store_item_t *item, char *err);
void store_item_free(store_item_t *item);

/*
 * On STORE_APPLIED, STORE_UNCHANGED and STORE_CONFLICT, *current is the
 * version the key holds afterwards and *held whether it ever held version
 * (YES for STORE_UNCHANGED; for STORE_CONFLICT see store_held_t).
 */
store_rc_t store_put_if_newer(store_t *st, store_space_t *sp,
                              const unsigned char *key,
                              size_t key_len, const skv_version_t *version,
                              const char *content_type, size_t ct_len,
                              const void *value, size_t value_len,
                              skv_version_t *current, store_held_t *held,
                              char *err);
/* The same with the value's SHA-256 already known (NULL: computed). */
store_rc_t store_put_if_newer_sha(store_t *st, store_space_t *sp,
                                  const unsigned char *key, size_t key_len,
                                  const skv_version_t *version,
                                  const char *content_type, size_t ct_len,
                                  const void *value, size_t value_len,
                                  const unsigned char *sha256,
                                  skv_version_t *current, store_held_t *held,
                                  char *err);
/* SHA-256 of len bytes. */
void store_sha256(const void *data, size_t len,
                  unsigned char out[STORE_SHA256_LEN]);

store_rc_t store_delete_if_newer(store_t *st, store_space_t *sp,
                                 const unsigned char *key,
                                 size_t key_len, const skv_version_t *version,
                                 skv_version_t *current, store_held_t *held,
                                 char *err);

/*
 * Remove the key's copy here, record and index entry, leaving no
 * tombstone, only if the version it holds (value or tombstone) is exactly
 * expected: STORE_APPLIED; another version: STORE_CONFLICT with *current
 * (and err saying why); none: STORE_NOT_FOUND.  The purge watermark is
 * raised above every version the entry records, in the same transaction
 * (a later write starts a new history: see store_index_held).  An entry
 * whose history is unordered (it once replaced a version from the future)
 * is kept, as the purge keeps such a tombstone: covering what it held
 * would lift the watermark into the future (STORE_CONFLICT, *current ==
 * *expected).
 */
store_rc_t store_remove_if_version(store_t *st, store_space_t *sp,
                                   const unsigned char *key,
                                   size_t key_len,
                                   const skv_version_t *expected,
                                   skv_version_t *current, char *err);

/*
 * Quarantine a damaged copy (kv.c, on reading it): remove its record and
 * index entry as store_remove_if_version does, in one transaction, only
 * if the entry still holds version *damaged (a chunked value whose chunk
 * failed its checksum; its chunks are then collected), or, with damaged
 * NULL, if the key's record still does not decode.  STORE_APPLIED (and
 * corrupt_values counts it); STORE_CONFLICT when a write replaced it
 * meanwhile; STORE_NOT_FOUND when it is gone; STORE_ERR_CORRUPT when it
 * must be kept, damaged (its history is unordered, as store_remove_if_
 * version keeps it, or its index entry does not decode).
 */
store_rc_t store_quarantine(store_t *st, store_space_t *sp,
                            const unsigned char *key, size_t key_len,
                            const skv_version_t *damaged, char *err);

/*
 * The epoch fence.  store_fence_enter admits a kv request carrying epoch
 * (has_epoch false: no X-Simplekv-Epoch header) if no window is set or
 * the epoch is inside it: true, and the caller runs the request, then
 * calls store_fence_exit.  Otherwise false, *window filled, nothing held.
 * A request admitted finishes before a new window takes effect.
 */
bool store_fence_enter(store_t *st, bool has_epoch, uint64_t epoch,
                       store_epochs_t *window);
void store_fence_exit(store_t *st);
void store_epochs_get(store_t *st, store_epochs_t *out);
/*
 * Set the window to [min, max] (min <= max), committed to disk before
 * returning, then in effect once no request admitted under the old one
 * is running: STORE_APPLIED; the same window: STORE_UNCHANGED; a bound
 * would go down: STORE_CONFLICT.  *current is the window afterwards.
 */
store_rc_t store_epochs_set(store_t *st, uint64_t min, uint64_t max,
                            store_epochs_t *current, char *err);

/*
 * Liveness: when this node's data was last served (ms since the clock
 * epoch), saved in meta.db by store_alive_mark (the background thread
 * calls it while storaged runs, and main at start and at shutdown).
 * store_alive_last is false for a directory that never recorded one.
 * storaged refuses to start when that is longer ago than the tombstone
 * grace (docs/membership.md, "Rejoining").
 */
store_rc_t store_alive_mark(store_t *st, uint64_t now_ms, char *err);
bool store_alive_last(store_t *st, uint64_t *ms);

/* The repair watermark: false when never set. */
bool store_repair_get(store_t *st, skv_version_t *out);
/* Raise it (committed to disk first): STORE_APPLIED, STORE_UNCHANGED
 * (equal), STORE_CONFLICT (lower than the current one); *current is the
 * watermark afterwards. */
store_rc_t store_repair_set(store_t *st, const skv_version_t *v,
                            skv_version_t *current, char *err);

/*
 * Visit keys >= from (or > from when after is true; from_len 0 = from the
 * first key) in byte order until fn returns false or at most max_entries
 * were visited.  Holds no lock between calls, so a caller streaming a large
 * listing calls it again from the last key it saw.  *visited is set to the
 * number of entries passed to fn (0 means the end was reached).
 */
store_rc_t store_scan(store_t *st, store_space_t *sp,
                      const unsigned char *from, size_t from_len,
                      bool after, size_t max_entries, store_scan_fn fn,
                      void *arg, size_t *visited, char *err);

/*
 * Streaming uploads of large values.  store_upload_begin prepares one
 * (nothing is written yet); store_upload_write appends bytes, storing a
 * chunk (in its own small transaction) each time STORE_CHUNK_SIZE bytes
 * have come, and buffers at most one chunk; store_upload_commit stores the
 * last chunk and switches the key to the value in one transaction under
 * the usual "if newer" rule (same results as store_put_if_newer; a value
 * of at most STORE_CHUNK_SIZE bytes in all is stored as one record
 * instead).  store_upload_end releases it: the chunks of an upload that
 * was not applied (refused, aborted, failed) are left to the collector.
 * Until then the upload's chunks are never collected.
 */
typedef struct store_upload store_upload_t;

/* size_hint: the declared length (0: unknown), to size the buffer.
 * NULL when out of memory. */
store_upload_t *store_upload_begin(store_t *st, uint64_t size_hint);
/* The namespace, needed before the first chunk is stored (the caller
 * resolves it, creating it, once the value passes STORE_CHUNK_SIZE). */
void store_upload_space(store_upload_t *up, store_space_t *sp);
bool store_upload_has_space(const store_upload_t *up);
store_rc_t store_upload_write(store_t *st, store_upload_t *up,
                              const void *data, size_t len, char *err);
/* How many bytes were written so far; whether chunks were stored. */
uint64_t store_upload_length(const store_upload_t *up);
bool store_upload_chunked(const store_upload_t *up);
/* The SHA-256 of everything written (no write may follow). */
void store_upload_sha256(store_upload_t *up,
                         unsigned char out[STORE_SHA256_LEN]);
/* sp: the key's namespace (the one given to store_upload_space, if any) */
store_rc_t store_upload_commit(store_t *st, store_space_t *sp,
                               store_upload_t *up,
                               const unsigned char *key, size_t key_len,
                               const skv_version_t *version,
                               const char *content_type, size_t ct_len,
                               skv_version_t *current, store_held_t *held,
                               char *err);
void store_upload_end(store_t *st, store_upload_t *up);

/*
 * Streaming reads of a chunked value (an item from store_get with
 * chunked set).  store_reader_open registers the value's chunks as in use
 * (the collector leaves them alone until store_reader_close, even if the
 * key is overwritten meanwhile) and checks that the key still holds that
 * value: STORE_CONFLICT when it changed between store_get and now (read
 * again).  store_reader_chunk reads chunk n (*data stays valid until the
 * next call) and checks its checksum and length: STORE_ERR_CORRUPT when
 * it does not match or is missing.
 */
typedef struct store_reader store_reader_t;

store_rc_t store_reader_open(store_t *st, store_space_t *sp,
                             const unsigned char *key, size_t key_len,
                             const store_item_t *item, store_reader_t **out,
                             char *err);
store_rc_t store_reader_chunk(store_t *st, store_reader_t *rd, uint64_t n,
                              const unsigned char **data, size_t *len,
                              char *err);
void store_reader_close(store_t *st, store_reader_t *rd);

/*
 * The chunk collector (background.c): remove the chunks of up to
 * max_chunks chunk records of uploads that are neither current values nor
 * in use (superseded, refused, aborted, or cut off by a crash), a few per
 * transaction.  *removed is set to how many were removed.
 */
store_rc_t store_collect_chunks(store_t *st, size_t max_chunks,
                                size_t *removed, char *err);

/* Background work (background.c calls these). */
store_rc_t store_checkpoint(store_t *st, char *err);
/*
 * Look at up to max_scan index entries, continuing where the previous call
 * stopped, and purge the tombstones among them whose version's time part
 * is below cutoff_ms (ms since the clock epoch) and whose version is below
 * the repair watermark, each in its own small transaction so that purging
 * never holds many locks.  Nothing is purged without a repair watermark,
 * nor while the epoch window is a transition (min < max); each purge
 * checks the window under the fence.  The first purge under a new cutoff
 * saves it as the purge watermark (meta.db): a version older than that
 * may have been held by a purged key.  A tombstone whose entry once
 * replaced an invalid future version (its history may be out of order) is
 * not purged.  Every namespace is purged alike, in byte order of their
 * names, each from its first key to its last; a call goes on into the
 * next namespace while max_scan allows.  *wrapped is set when the scan
 * reached the last key of the last namespace (the next call starts again
 * from the first), or when purging is not allowed.
 */
store_rc_t store_purge_tombstones(store_t *st, uint64_t cutoff_ms,
                                  size_t max_scan, size_t *purged,
                                  bool *wrapped, char *err);

/* True while the environment is usable (no panic, no failed recovery). */
bool store_healthy(store_t *st);
/* True once the environment panicked: the process must restart (and so
 * recover) to use it again; store.c has already asked main to stop. */
bool store_failed(store_t *st);
void store_get_stats(store_t *st, store_stats_t *out);

const char *store_rc_name(store_rc_t rc);

#endif
