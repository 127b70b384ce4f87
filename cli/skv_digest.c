/*
 * skv_digest.c - SHA-256 digests of values and their RFC 9530 field
 * values (see skv_digest.h).
 */
#include "skv_digest.h"

#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include <openssl/evp.h>

int
skv_sha256_file(FILE *f, unsigned char out[SKV_SHA256_LEN])
{
    EVP_MD_CTX    *ctx;
    unsigned char  buf[64 * 1024];
    unsigned int   n_out = 0;
    off_t          start;
    size_t         n;
    int            ok;

    start = ftello(f);
    if (start < 0) {
        return -1;
    }
    ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        errno = ENOMEM;
        return -1;
    }
    ok = 1;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        if (EVP_DigestUpdate(ctx, buf, n) != 1) {
            ok = 0;
            break;
        }
    }
    if (ferror(f)) {
        ok = 0;
    }
    if (ok && EVP_DigestFinal_ex(ctx, out, &n_out) != 1) {
        ok = 0;
    }
    EVP_MD_CTX_free(ctx);
    clearerr(f);
    if (fseeko(f, start, SEEK_SET) != 0) {
        return -1;
    }
    if (!ok) {
        if (errno == 0) {
            errno = EIO;
        }
        return -1;
    }
    return 0;
}

void
skv_digest_field(const unsigned char sha[SKV_SHA256_LEN],
                 char out[SKV_DIGEST_FIELD_MAX])
{
    unsigned char b64[48];

    EVP_EncodeBlock(b64, sha, SKV_SHA256_LEN);
    snprintf(out, SKV_DIGEST_FIELD_MAX, "sha-256=:%s:", (const char *) b64);
}

int
skv_digest_parse(const char *field, size_t len,
                 unsigned char out[SKV_SHA256_LEN])
{
    static const char name[] = "sha-256=:";
    const char       *p = field, *end = field + len, *colon;
    unsigned char     raw[48];
    size_t            b64_len;
    int               n;

    /* members are separated by commas; find the sha-256 one */
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) {
            p++;
        }
        if ((size_t) (end - p) > sizeof(name) - 1
            && strncasecmp(p, name, sizeof(name) - 1) == 0)
        {
            p += sizeof(name) - 1;
            colon = memchr(p, ':', (size_t) (end - p));
            if (colon == NULL) {
                return -1;
            }
            b64_len = (size_t) (colon - p);
            if (b64_len != 44) {            /* 32 bytes in base64 */
                return -1;
            }
            n = EVP_DecodeBlock(raw, (const unsigned char *) p,
                                (int) b64_len);
            /* EVP_DecodeBlock counts the padding's zero bytes: 33 */
            if (n != 33 || p[43] != '=') {
                return -1;
            }
            memcpy(out, raw, SKV_SHA256_LEN);
            return 0;
        }
        while (p < end && *p != ',') {
            p++;
        }
    }
    return -1;
}
