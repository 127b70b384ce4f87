/*
 * skv_key.h - key validation and percent-encoding.
 *
 * A key is any sequence of 1..SKV_KEY_MAX bytes.  On the wire (client URLs,
 * router -> storaged URLs, key listings) it is percent-encoded.  Decoding and
 * validation are one step so that no program can accept a key another would
 * refuse.
 */
#ifndef SKV_KEY_H
#define SKV_KEY_H

#include <stddef.h>

#include "skv_status.h"

#define SKV_KEY_MAX 1024
/* Longest percent-encoded form of a valid key: every byte as %XX. */
#define SKV_KEY_ENCODED_MAX (3 * SKV_KEY_MAX)

/*
 * Decode a percent-encoded key into out (capacity SKV_KEY_MAX).  "%XX" with
 * hex digits of either case decodes to one byte; every other byte stands for
 * itself ('+' is not a space: keys are URL paths, not form fields).
 * Returns SKV_OK, SKV_ERR_KEY_EMPTY, SKV_ERR_KEY_TOO_LONG or
 * SKV_ERR_KEY_ENCODING.  On error *out_len is unspecified.
 */
skv_status_t skv_key_decode(const char *enc, size_t enc_len,
                            unsigned char *out, size_t *out_len);

/*
 * Percent-encode key bytes: RFC 3986 unreserved characters (A-Z a-z 0-9
 * - . _ ~) stay, every other byte becomes %XX with uppercase hex.  Writes at
 * most cap bytes (no NUL terminator) and returns the full encoded length;
 * if that exceeds cap, the output is incomplete and the caller must retry
 * with a larger buffer.  3 * len always suffices.
 */
size_t skv_key_encode(const unsigned char *key, size_t len, char *out,
                      size_t cap);

#endif
