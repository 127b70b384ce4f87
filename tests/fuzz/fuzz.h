/*
 * fuzz.h - shared by the libFuzzer harnesses in tests/fuzz/: the entry
 * point's prototype, an invariant check that crashes (so libFuzzer keeps
 * the input as a reproducer), and a reader that turns the fuzzer's bytes
 * into small integers and flags (0 once the bytes run out).
 */
#ifndef SKV_FUZZ_H
#define SKV_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant that must hold for every input: abort with its text and
 * place, which libFuzzer reports as a crash and saves the input. */
#define FUZZ_CHECK(cond)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,      \
                    __LINE__, #cond);                                       \
            abort();                                                        \
        }                                                                   \
    } while (0)

typedef struct {
    const uint8_t *p;
    size_t         n;
} fuzz_in_t;

static inline uint8_t
fuzz_u8(fuzz_in_t *in)
{
    if (in->n == 0) {
        return 0;
    }
    in->n--;
    return *in->p++;
}

static inline uint64_t
fuzz_u64(fuzz_in_t *in)
{
    uint64_t x = 0;

    for (int i = 0; i < 8; i++) {
        x = x << 8 | fuzz_u8(in);
    }
    return x;
}

static inline bool
fuzz_bool(fuzz_in_t *in)
{
    return (fuzz_u8(in) & 1) != 0;
}

/* lo..hi inclusive; hi - lo must be below 256. */
static inline size_t
fuzz_range(fuzz_in_t *in, size_t lo, size_t hi)
{
    return lo + fuzz_u8(in) % (hi - lo + 1);
}

#endif
