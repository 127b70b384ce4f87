/*
 * skv_version.c - version comparison, text form, and the hybrid logical
 * clock that issues versions.
 */
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "skv_version.h"

int
skv_version_cmp(const skv_version_t *a, const skv_version_t *b)
{
    if (a->hlc != b->hlc) {
        return a->hlc < b->hlc ? -1 : 1;
    }
    if (a->origin != b->origin) {
        return a->origin < b->origin ? -1 : 1;
    }
    return 0;
}

bool
skv_version_is_zero(const skv_version_t *v)
{
    return v->hlc == 0 && v->origin == 0;
}

uint64_t
skv_version_ms(const skv_version_t *v)
{
    return v->hlc >> SKV_HLC_LOGICAL_BITS;
}

static void
format_u64(uint64_t x, char *out)
{
    static const char hex[] = "0123456789abcdef";

    for (int i = 15; i >= 0; i--) {
        out[i] = hex[x & 0x0f];
        x >>= 4;
    }
}

void
skv_version_format(const skv_version_t *v, char out[SKV_VERSION_TEXT_LEN + 1])
{
    format_u64(v->hlc, out);
    format_u64(v->origin, out + 16);
    out[SKV_VERSION_TEXT_LEN] = '\0';
}

static bool
parse_u64(const char *text, uint64_t *out)
{
    uint64_t x = 0;

    for (int i = 0; i < 16; i++) {
        char c = text[i];

        x <<= 4;
        if (c >= '0' && c <= '9') {
            x |= (uint64_t) (c - '0');
        } else if (c >= 'a' && c <= 'f') {
            x |= (uint64_t) (c - 'a' + 10);
        } else {
            /* Uppercase is refused: the text form must sort like the
             * version, and 'A' < 'a' would break that. */
            return false;
        }
    }
    *out = x;
    return true;
}

skv_status_t
skv_version_parse(const char *text, size_t len, skv_version_t *out)
{
    skv_version_t v;

    if (len != SKV_VERSION_TEXT_LEN || !parse_u64(text, &v.hlc)
        || !parse_u64(text + 16, &v.origin) || skv_version_is_zero(&v)) {
        return SKV_ERR_VERSION_SYNTAX;
    }
    *out = v;
    return SKV_OK;
}

uint64_t
skv_clock_now_ms(void)
{
    struct timespec ts;
    uint64_t        unix_ms;

    clock_gettime(CLOCK_REALTIME, &ts);
    unix_ms = (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
    /* A clock set before 2020 yields 0; the logical counter still moves. */
    return unix_ms > SKV_EPOCH_UNIX_MS ? unix_ms - SKV_EPOCH_UNIX_MS : 0;
}

uint64_t
skv_origin_random(void)
{
    uint64_t id = 0;

    while (id == 0) {
        if (getrandom(&id, sizeof(id), 0) != (ssize_t) sizeof(id)) {
            /* getrandom only fails before the entropy pool is ready or on
             * ancient kernels: fall back to time and address entropy. */
            struct timespec ts;

            clock_gettime(CLOCK_MONOTONIC, &ts);
            id = ((uint64_t) ts.tv_nsec << 32) ^ (uint64_t) ts.tv_sec
                 ^ (uint64_t) (uintptr_t) &ts;
        }
    }
    return id;
}

void
skv_clock_init(skv_clock_t *clock, uint64_t origin)
{
    clock->last_hlc = 0;
    clock->origin = origin;
}

uint64_t
skv_hlc_next(uint64_t last_hlc, uint64_t now_ms)
{
    uint64_t physical;

    /* A wall clock past the 48-bit field (year 10889) stays at its top. */
    if (now_ms > SKV_HLC_MS_MAX) {
        now_ms = SKV_HLC_MS_MAX;
    }
    physical = now_ms << SKV_HLC_LOGICAL_BITS;

    /* When the wall clock has not passed the last hlc (same millisecond,
     * clock stepped back, or a newer version observed), count logically;
     * a full counter simply carries into the millisecond field.  At the
     * very top the clock saturates instead of wrapping to 0. */
    if (physical > last_hlc) {
        return physical;
    }
    return last_hlc == UINT64_MAX ? UINT64_MAX : last_hlc + 1;
}

bool
skv_version_too_far_ahead(const skv_version_t *v, uint64_t now_ms,
                          uint64_t max_skew_ms)
{
    uint64_t limit;

    if (skv_version_is_zero(v)) {
        return false;
    }
    limit = now_ms > UINT64_MAX - max_skew_ms ? UINT64_MAX
                                              : now_ms + max_skew_ms;
    return skv_version_ms(v) > limit;
}

skv_version_t
skv_clock_next(skv_clock_t *clock, uint64_t now_ms)
{
    skv_version_t v;

    clock->last_hlc = skv_hlc_next(clock->last_hlc, now_ms);
    v.hlc = clock->last_hlc;
    v.origin = clock->origin;
    return v;
}

void
skv_clock_observe(skv_clock_t *clock, const skv_version_t *seen)
{
    if (seen->hlc > clock->last_hlc) {
        clock->last_hlc = seen->hlc;
    }
}
