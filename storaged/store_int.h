/*
 * store_int.h - what the files of the storage engine share (store.c,
 * store_env.c, store_scan.c); nothing outside them includes it.
 */
#ifndef STORAGED_STORE_INT_H
#define STORAGED_STORE_INT_H

#include <db.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "skv_key.h"
#include "store.h"

#define INDEX_ENTRY_SIZE  25   /* flags(1) hlc(8) origin(8) value_len(8) */
#define WRITE_RETRIES     100  /* deadlock retries before giving up */

struct store {
    DB_ENV          *env;
    DB              *records;
    DB              *index;
    int              lock_fd;
    uint64_t         max_skew_ms;   /* store_options_t.max_clock_skew_ms */

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

/* 0, or -1 when data is not a valid index entry. */
int store_index_decode(const DBT *data, index_entry_t *e);

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

/* old: the key's index entry, read with a write lock (old->found false
 * when there is none; corrupt true when it does not decode). */
typedef void (*txn_body_fn)(store_t *st, DB_TXN *txn, DBT *key,
                            const index_entry_t *old, bool corrupt,
                            void *arg, txn_step_t *step, char *err);

/*
 * Run body in a transaction that first reads the key's index entry with a
 * write lock; commit or abort as it decides, retrying on deadlock (store.c).
 * *committed is set when the transaction committed.
 */
store_rc_t store_index_txn(store_t *st, const unsigned char *key,
                           size_t key_len, txn_body_fn body, void *arg,
                           bool *committed, char *err);

#endif
