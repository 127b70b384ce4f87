/*
 * skv_digest.h - SHA-256 integrity digests (RFC 9530) for skv: the
 * Content-Digest `put` sends, and the Repr-Digest `get` checks.
 *
 * A field value is "sha-256=:<base64 of the 32 bytes>:"; one naming
 * several algorithms ("sha-512=:...:, sha-256=:...:") is searched for its
 * sha-256 member.  OpenSSL's EVP interface (libcrypto) does the hashing.
 */
#ifndef SKV_DIGEST_H
#define SKV_DIGEST_H

#include <stddef.h>
#include <stdio.h>

#define SKV_SHA256_LEN 32
/* "sha-256=:" + 44 base64 characters + ":" + NUL */
#define SKV_DIGEST_FIELD_MAX 64

/* SHA-256 of f from its current position to its end; the position is put
 * back.  0, or -1 with errno set (a read or seek error). */
int skv_sha256_file(FILE *f, unsigned char out[SKV_SHA256_LEN]);

/* The field value for a digest: "sha-256=:...:". */
void skv_digest_field(const unsigned char sha[SKV_SHA256_LEN],
                      char out[SKV_DIGEST_FIELD_MAX]);

/* The sha-256 member of a Repr-Digest/Content-Digest field value: 0 with
 * out filled, -1 when it has none or it is malformed. */
int skv_digest_parse(const char *field, size_t len,
                     unsigned char out[SKV_SHA256_LEN]);

#endif
