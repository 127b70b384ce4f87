/*
 * lease.c - the lease of /v1/lease (see lease.h).
 */
#include <string.h>
#include <time.h>

#include "lease.h"

static uint64_t
monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

void
lease_init(lease_t *l)
{
    memset(l, 0, sizeof(*l));
    pthread_mutex_init(&l->lock, NULL);
}

void
lease_destroy(lease_t *l)
{
    pthread_mutex_destroy(&l->lock);
}

bool
lease_holder_valid(const char *holder, size_t len)
{
    size_t i;

    if (len == 0 || len > LEASE_HOLDER_MAX) {
        return false;
    }
    for (i = 0; i < len; i++) {
        if (holder[i] < 0x20 || holder[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

/* Under the lock: expire the lease if its time is up, and copy it. */
static void
current(lease_t *l, uint64_t now_ms, lease_state_t *now)
{
    if (l->held && now_ms >= l->expires_ms) {
        l->held = false;
    }
    memset(now, 0, sizeof(*now));
    now->held = l->held;
    if (l->held) {
        memcpy(now->holder, l->holder, l->holder_len);
        now->expires_in_ms = l->expires_ms - now_ms;
    }
}

static bool
held_by(const lease_t *l, const char *holder, size_t len)
{
    return l->held && l->holder_len == len
           && memcmp(l->holder, holder, len) == 0;
}

bool
lease_acquire(lease_t *l, const char *holder, size_t len, uint64_t ttl_ms,
              lease_state_t *now)
{
    uint64_t t;
    bool     ok;

    pthread_mutex_lock(&l->lock);
    t = monotonic_ms();
    current(l, t, now);
    ok = !l->held || held_by(l, holder, len);
    if (ok) {
        l->held = true;
        memcpy(l->holder, holder, len);
        l->holder_len = len;
        l->expires_ms = t + ttl_ms;
        current(l, t, now);
    }
    pthread_mutex_unlock(&l->lock);
    return ok;
}

bool
lease_release(lease_t *l, const char *holder, size_t len, lease_state_t *now)
{
    bool ok;

    pthread_mutex_lock(&l->lock);
    current(l, monotonic_ms(), now);
    ok = !l->held || held_by(l, holder, len);
    if (ok) {
        l->held = false;
        memset(now, 0, sizeof(*now));
    }
    pthread_mutex_unlock(&l->lock);
    return ok;
}

void
lease_get(lease_t *l, lease_state_t *now)
{
    pthread_mutex_lock(&l->lock);
    current(l, monotonic_ms(), now);
    pthread_mutex_unlock(&l->lock);
}
