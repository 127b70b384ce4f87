/*
 * lease.h - the lease of /v1/lease: one holder at a time, for a time to
 * live, so that one rebalance or repair runs at a time
 * (docs/membership.md, docs/protocol.md).
 *
 * In memory only: a restart frees it (a tool renews its lease well within
 * the time to live, and a restarted node has lost whatever a holder was
 * doing to it anyway).  Every operation runs under one mutex, so that
 * concurrent requests see one order; expiry is on the monotonic clock.
 */
#ifndef STORAGED_LEASE_H
#define STORAGED_LEASE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LEASE_HOLDER_MAX  256
#define LEASE_TTL_MAX_MS  ((uint64_t) 86400 * 1000)

typedef struct {
    pthread_mutex_t lock;
    bool            held;
    char            holder[LEASE_HOLDER_MAX + 1];
    size_t          holder_len;
    uint64_t        expires_ms;       /* CLOCK_MONOTONIC */
} lease_t;

/* Who holds it (a copy): held false when free or expired. */
typedef struct {
    bool     held;
    char     holder[LEASE_HOLDER_MAX + 1];    /* NUL-terminated */
    uint64_t expires_in_ms;
} lease_state_t;

void lease_init(lease_t *l);
void lease_destroy(lease_t *l);

/* 1 to LEASE_HOLDER_MAX bytes, each printable ASCII (space included). */
bool lease_holder_valid(const char *holder, size_t len);

/* Take the lease for holder, or renew it, for ttl_ms: true when it was
 * free, expired or already holder's; else false.  *now is the state
 * afterwards either way. */
bool lease_acquire(lease_t *l, const char *holder, size_t len,
                   uint64_t ttl_ms, lease_state_t *now);

/* Release it if holder holds it: true when it is free afterwards (it was
 * holder's, free or expired); false when another holds it (*now). */
bool lease_release(lease_t *l, const char *holder, size_t len,
                   lease_state_t *now);

/* The state, for /v1/stats. */
void lease_get(lease_t *l, lease_state_t *now);

#endif
