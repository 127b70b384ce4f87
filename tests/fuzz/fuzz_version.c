/*
 * fuzz_version.c - version text (skv_version_parse / skv_version_format),
 * ordering (skv_version_cmp) and the clock's step (skv_hlc_next,
 * skv_clock_next, skv_clock_observe, skv_version_too_far_ahead).
 *
 * The input is read twice: as version text (the whole input, and each
 * 32-byte piece of it), and as raw numbers (the first 48 bytes give three
 * versions, the next ones a clock state).  Checked:
 *  - parse accepts exactly 32 lowercase hex digits, not all zero, and then
 *    format(parse(text)) == text; parse(format(v)) == v for every non-zero
 *    v, and the zero version's text is refused;
 *  - cmp is reflexive, antisymmetric and transitive, agrees with (hlc,
 *    origin) order and with memcmp of the texts;
 *  - the clock's step never goes back, moves forward unless saturated,
 *    reaches the wall clock, and an observed version keeps the next one
 *    above it (below the top);
 *  - too_far_ahead matches its definition, with no overflow.
 */
#include <string.h>

#include "fuzz.h"
#include "skv_version.h"

static int
sign(int x)
{
    return (x > 0) - (x < 0);
}

static bool
is_lower_hex(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* parse() of any text, checked against the rule, and round-tripped. */
static void
check_text(const uint8_t *data, size_t len)
{
    char           *text, out[SKV_VERSION_TEXT_LEN + 1];
    skv_version_t   v, untouched = { 7, 7 };
    bool            valid, nonzero = false;
    skv_status_t    rc;

    text = malloc(len > 0 ? len : 1);
    FUZZ_CHECK(text != NULL);
    if (len > 0) {
        memcpy(text, data, len);
    }

    valid = len == SKV_VERSION_TEXT_LEN;
    for (size_t i = 0; valid && i < len; i++) {
        valid = is_lower_hex(data[i]);
        nonzero |= data[i] != '0';
    }
    valid = valid && nonzero;

    v = untouched;
    rc = skv_version_parse(text, len, &v);
    FUZZ_CHECK((rc == SKV_OK) == valid);
    if (rc != SKV_OK) {
        FUZZ_CHECK(rc == SKV_ERR_VERSION_SYNTAX);
        FUZZ_CHECK(v.hlc == untouched.hlc && v.origin == untouched.origin);
    } else {
        FUZZ_CHECK(!skv_version_is_zero(&v));
        skv_version_format(&v, out);
        FUZZ_CHECK(out[SKV_VERSION_TEXT_LEN] == '\0');
        FUZZ_CHECK(memcmp(out, data, SKV_VERSION_TEXT_LEN) == 0);
    }
    free(text);
}

/* format() of any version, parsed back. */
static void
check_format(const skv_version_t *v)
{
    char           text[SKV_VERSION_TEXT_LEN + 1];
    skv_version_t  back;

    skv_version_format(v, text);
    FUZZ_CHECK(strlen(text) == SKV_VERSION_TEXT_LEN);
    for (size_t i = 0; i < SKV_VERSION_TEXT_LEN; i++) {
        FUZZ_CHECK(is_lower_hex((uint8_t) text[i]));
    }
    if (skv_version_is_zero(v)) {
        FUZZ_CHECK(skv_version_parse(text, SKV_VERSION_TEXT_LEN, &back)
                   == SKV_ERR_VERSION_SYNTAX);
        return;
    }
    FUZZ_CHECK(skv_version_parse(text, SKV_VERSION_TEXT_LEN, &back)
               == SKV_OK);
    FUZZ_CHECK(back.hlc == v->hlc && back.origin == v->origin);
    FUZZ_CHECK(skv_version_cmp(&back, v) == 0);
    FUZZ_CHECK(skv_version_ms(v) == v->hlc >> SKV_HLC_LOGICAL_BITS);
}

static int
expected_cmp(const skv_version_t *a, const skv_version_t *b)
{
    if (a->hlc != b->hlc) {
        return a->hlc < b->hlc ? -1 : 1;
    }
    return a->origin < b->origin ? -1 : a->origin > b->origin;
}

static void
check_order(const skv_version_t *v, size_t n)
{
    char  text[3][SKV_VERSION_TEXT_LEN + 1];

    for (size_t i = 0; i < n; i++) {
        skv_version_format(&v[i], text[i]);
        FUZZ_CHECK(skv_version_cmp(&v[i], &v[i]) == 0);
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            int c = sign(skv_version_cmp(&v[i], &v[j]));

            FUZZ_CHECK(c == -sign(skv_version_cmp(&v[j], &v[i])));
            FUZZ_CHECK(c == expected_cmp(&v[i], &v[j]));
            FUZZ_CHECK(c == sign(memcmp(text[i], text[j],
                                        SKV_VERSION_TEXT_LEN)));
            FUZZ_CHECK((c == 0) == (v[i].hlc == v[j].hlc
                                    && v[i].origin == v[j].origin));
            for (size_t k = 0; k < n; k++) {
                if (c <= 0 && skv_version_cmp(&v[j], &v[k]) <= 0) {
                    FUZZ_CHECK(skv_version_cmp(&v[i], &v[k]) <= 0);
                }
            }
        }
    }
}

static void
check_clock(const skv_version_t *seen, uint64_t last, uint64_t now,
            uint64_t skew, uint64_t origin)
{
    uint64_t       next, capped, limit;
    skv_clock_t    clock;
    skv_version_t  a, b;

    /* one step */
    next = skv_hlc_next(last, now);
    capped = now > SKV_HLC_MS_MAX ? SKV_HLC_MS_MAX : now;
    FUZZ_CHECK(next >= last);
    FUZZ_CHECK(next > last || last == UINT64_MAX);
    FUZZ_CHECK(next >= capped << SKV_HLC_LOGICAL_BITS);
    FUZZ_CHECK(next == (capped << SKV_HLC_LOGICAL_BITS > last
                        ? capped << SKV_HLC_LOGICAL_BITS
                        : last == UINT64_MAX ? UINT64_MAX : last + 1));

    /* a clock: each version above the one before and above what it saw */
    skv_clock_init(&clock, origin);
    clock.last_hlc = last;
    a = skv_clock_next(&clock, now);
    FUZZ_CHECK(a.origin == origin && a.hlc == next);
    FUZZ_CHECK(clock.last_hlc == a.hlc);
    skv_clock_observe(&clock, seen);
    FUZZ_CHECK(clock.last_hlc >= a.hlc && clock.last_hlc >= seen->hlc);
    b = skv_clock_next(&clock, now > 0 ? now - 1 : 0); /* clock stepped back */
    FUZZ_CHECK(b.hlc >= a.hlc && b.hlc >= seen->hlc);
    if (b.hlc != UINT64_MAX) {
        FUZZ_CHECK(b.hlc > a.hlc && b.hlc > seen->hlc);
        FUZZ_CHECK(skv_version_cmp(&b, &a) > 0);
        if (origin >= seen->origin || b.hlc > seen->hlc) {
            FUZZ_CHECK(skv_version_cmp(&b, seen) > 0);
        }
    }

    /* too far ahead: ms(v) > now + skew, the sum saturating; zero never */
    limit = now > UINT64_MAX - skew ? UINT64_MAX : now + skew;
    FUZZ_CHECK(skv_version_too_far_ahead(seen, now, skew)
               == (!skv_version_is_zero(seen)
                   && skv_version_ms(seen) > limit));
    /* a version made by a clock at now is never too far ahead of now */
    a.hlc = skv_hlc_next(0, now);
    if (now <= SKV_HLC_MS_MAX && a.origin != 0) {
        FUZZ_CHECK(!skv_version_too_far_ahead(&a, now, skew));
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_t      in = { data, size };
    skv_version_t  v[3];
    uint64_t       last, now, skew, origin;

    check_text(data, size);
    for (size_t off = 0; off + SKV_VERSION_TEXT_LEN <= size && off < 128;
         off += SKV_VERSION_TEXT_LEN) {
        check_text(data + off, SKV_VERSION_TEXT_LEN);
    }

    for (int i = 0; i < 3; i++) {
        v[i].hlc = fuzz_u64(&in);
        v[i].origin = fuzz_u64(&in);
        check_format(&v[i]);
    }
    check_order(v, 3);

    last = fuzz_u64(&in);
    now = fuzz_u64(&in);
    skew = fuzz_u64(&in);
    origin = fuzz_u64(&in);
    /* small values matter most for the clock: also try them scaled down */
    check_clock(&v[0], last, now, skew, origin);
    check_clock(&v[1], last >> 40, now >> 40, skew >> 48, origin);
    return 0;
}
