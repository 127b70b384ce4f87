/*
 * skv_version.h - write versions and the hybrid logical clock that makes them.
 *
 * A version is 128 bits: a 64-bit hybrid logical clock value (48 bits of
 * milliseconds since 2020-01-01T00:00:00Z, then a 16-bit logical counter)
 * and a 64-bit origin id unique to the writer (an nginx worker).  Versions
 * are totally ordered by (hlc, origin).  The text form is 32 lowercase hex
 * digits, hlc first, so comparing two texts with memcmp/strcmp compares the
 * versions.  The all-zero version means "none" and is never produced by a
 * clock.
 */
#ifndef SKV_VERSION_H
#define SKV_VERSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "skv_status.h"

#define SKV_VERSION_TEXT_LEN 32
/* Unix time in ms of 2020-01-01T00:00:00Z, the clock's epoch. */
#define SKV_EPOCH_UNIX_MS 1577836800000ULL
#define SKV_HLC_LOGICAL_BITS 16
/* The largest millisecond count the hlc can hold (48 bits). */
#define SKV_HLC_MS_MAX (UINT64_MAX >> SKV_HLC_LOGICAL_BITS)

typedef struct {
    uint64_t hlc;
    uint64_t origin;
} skv_version_t;

typedef struct {
    uint64_t last_hlc; /* highest hlc issued or observed */
    uint64_t origin;
} skv_clock_t;

/* <0, 0, >0 like memcmp. */
int skv_version_cmp(const skv_version_t *a, const skv_version_t *b);
bool skv_version_is_zero(const skv_version_t *v);

/* Milliseconds since the epoch encoded in the version's hlc. */
uint64_t skv_version_ms(const skv_version_t *v);

/* Writes exactly SKV_VERSION_TEXT_LEN hex digits plus a NUL. */
void skv_version_format(const skv_version_t *v,
                        char out[SKV_VERSION_TEXT_LEN + 1]);

/* Exactly 32 lowercase hex digits, not all zero; else SKV_ERR_VERSION_SYNTAX. */
skv_status_t skv_version_parse(const char *text, size_t len,
                               skv_version_t *out);

/* Wall clock in ms since SKV_EPOCH_UNIX_MS (CLOCK_REALTIME). */
uint64_t skv_clock_now_ms(void);

/* A random non-zero 64-bit origin id (getrandom). */
uint64_t skv_origin_random(void);

void skv_clock_init(skv_clock_t *clock, uint64_t origin);

/*
 * True when the version's time part (skv_version_ms) is more than
 * max_skew_ms ahead of now_ms (both in ms since SKV_EPOCH_UNIX_MS): such a
 * version was not made by a sane clock and must be neither stored nor
 * adopted, or it would outrank every later write of its key.  The zero
 * version is never ahead; max_skew_ms 0 allows no skew at all (callers
 * that mean "no check" do not call this).
 */
bool skv_version_too_far_ahead(const skv_version_t *v, uint64_t now_ms,
                               uint64_t max_skew_ms);

/*
 * The clock's one step, for callers that keep last_hlc elsewhere (the
 * router shares one in memory between its worker processes and advances it
 * with compare-and-swap): max(now_ms << 16, last_hlc + 1), with now_ms
 * capped at SKV_HLC_MS_MAX.
 *
 * Saturating: an all-ones last_hlc yields all ones again instead of
 * wrapping to 0.  The result is then no longer greater than last_hlc, so a
 * clock that has adopted the highest possible version repeats it; only a
 * version far in the future leads there, which is why such versions are
 * refused (skv_version_too_far_ahead) rather than observed.
 */
uint64_t skv_hlc_next(uint64_t last_hlc, uint64_t now_ms);

/*
 * The next version: hlc = skv_hlc_next(last, now_ms).  Strictly greater
 * than every version this clock issued or observed, even when the wall
 * clock steps back, until the hlc reaches all ones, where it saturates (see
 * skv_hlc_next).
 */
skv_version_t skv_clock_next(skv_clock_t *clock, uint64_t now_ms);

/* Remember a version seen elsewhere so the next one issued is newer: takes
 * the larger hlc, so it never wraps either. */
void skv_clock_observe(skv_clock_t *clock, const skv_version_t *seen);

#endif
