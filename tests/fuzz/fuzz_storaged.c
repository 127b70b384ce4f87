/*
 * fuzz_storaged.c - storaged's request validation (storaged/parse.c,
 * storaged/query.c): what it decides from a request's path, query and
 * headers before it touches the store, on hostile text.
 *
 * The first byte picks the parser, the rest is its text (a NUL-ended copy,
 * as libmicrohttpd hands values over; a NUL inside ends it there):
 *   0 the path: parse_route, then the key's decoding (kv.c: skv_key_decode
 *     of the text after the route's key offset);
 *   1 the query: query_get / query_count, parse_limit, parse_key_arg for
 *     prefix and after, and a removal's if-version (kv.c's check_remove);
 *   2 X-Simplekv-Epoch (parse_epoch);
 *   3 Content-Digest / Repr-Digest (parse_digest);
 *   4 Range against a value length from the next 8 bytes (parse_range);
 *   5 X-Simplekv-If-Version / X-Simplekv-Version (skv_version_parse);
 *   6 built inputs: a namespace and key, 32 digest bytes, a range and an
 *     epoch made from the bytes, put in canonical text and parsed back.
 * Checked: each verdict against the format's definition written again
 * here, results inside their input (a key offset within the path, a range
 * within the value, a query value within the query), and round trips.
 */
#include <inttypes.h>
#include <string.h>

#include <openssl/evp.h>

#include "fuzz.h"
#include "parse.h"
#include "query.h"
#include "skv_key.h"
#include "skv_version.h"

static bool
name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
           || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
}

/* The namespace rule written again: 1..64 of [A-Za-z0-9_-]. */
static bool
name_ok(const char *name, size_t len)
{
    if (len == 0 || len > STORE_SPACE_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!name_char(name[i])) {
            return false;
        }
    }
    return true;
}

static void
check_route(const char *url)
{
    char           space[STORE_SPACE_NAME_MAX + 1];
    size_t         space_len = 999, key_offset = (size_t) -1, len, klen;
    size_t         url_len = strlen(url);
    route_t        route;
    const char    *name, *slash;
    unsigned char *key = malloc(SKV_KEY_MAX);

    FUZZ_CHECK(key != NULL);
    route = parse_route(url, space, &space_len, &key_offset);
    FUZZ_CHECK(space_len <= STORE_SPACE_NAME_MAX
               && strlen(space) == space_len);
    FUZZ_CHECK(store_space_name_valid(space, space_len));

    if (strncmp(url, "/v1/ns/", 7) == 0) {
        name = url + 7;
        slash = strchr(name, '/');
        if (slash == NULL || (strncmp(slash, "/kv/", 4) != 0
                              && strcmp(slash, "/keys") != 0))
        {
            FUZZ_CHECK(route == ROUTE_UNKNOWN);
        } else if (!name_ok(name, (size_t) (slash - name))) {
            FUZZ_CHECK(route == ROUTE_BAD_NAMESPACE);
        } else {
            len = (size_t) (slash - name);
            FUZZ_CHECK(space_len == len && memcmp(space, name, len) == 0);
            if (slash[1] == 'k' && slash[2] == 'v') {
                FUZZ_CHECK(route == ROUTE_KV);
                FUZZ_CHECK(key_offset == 7 + len + 4);
            } else {
                FUZZ_CHECK(route == ROUTE_KEYS);
            }
        }
    } else if (strncmp(url, "/v1/kv/", 7) == 0) {
        FUZZ_CHECK(route == ROUTE_KV && key_offset == 7);
        FUZZ_CHECK(strcmp(space, STORE_SPACE_DEFAULT) == 0);
    } else {
        FUZZ_CHECK(route != ROUTE_KV && route != ROUTE_BAD_NAMESPACE);
        FUZZ_CHECK(strcmp(space, STORE_SPACE_DEFAULT) == 0);
        FUZZ_CHECK((route == ROUTE_KEYS) == (strcmp(url, "/v1/keys") == 0));
        FUZZ_CHECK((route == ROUTE_UNKNOWN)
                   == (strcmp(url, "/v1/keys") != 0
                       && strcmp(url, "/v1/namespaces") != 0
                       && strcmp(url, "/v1/health") != 0
                       && strcmp(url, "/v1/stats") != 0
                       && strcmp(url, "/v1/epochs") != 0
                       && strcmp(url, "/v1/repair-watermark") != 0
                       && strcmp(url, "/v1/lease") != 0));
    }

    if (route == ROUTE_KV) {
        FUZZ_CHECK(key_offset <= url_len);
        /* kv_begin decodes the rest of the path as the key */
        if (skv_key_decode(url + key_offset, url_len - key_offset, key,
                           &klen) == SKV_OK)
        {
            FUZZ_CHECK(klen >= 1 && klen <= SKV_KEY_MAX);
        }
    }
    free(key);
}

/* A key's canonical path in namespace space, parsed back. */
static void
check_key_path(const char *space, size_t space_len, const unsigned char *key,
               size_t key_len)
{
    char           *url, got[STORE_SPACE_NAME_MAX + 1];
    size_t          n, got_len, off = 0, back_len;
    unsigned char  *back;
    route_t         route;
    bool            ns = space_len > 0;

    url = malloc(16 + STORE_SPACE_NAME_MAX + SKV_KEY_ENCODED_MAX + 1);
    back = malloc(SKV_KEY_MAX);
    FUZZ_CHECK(url != NULL && back != NULL);
    n = ns ? (size_t) sprintf(url, "/v1/ns/%.*s/kv/", (int) space_len, space)
           : (size_t) sprintf(url, "/v1/kv/");
    n += skv_key_encode(key, key_len, url + n, SKV_KEY_ENCODED_MAX + 1);
    url[n] = '\0';

    route = parse_route(url, got, &got_len, &off);
    if (ns && !name_ok(space, space_len)) {
        FUZZ_CHECK(route == ROUTE_BAD_NAMESPACE);
    } else {
        FUZZ_CHECK(route == ROUTE_KV);
        if (ns) {
            FUZZ_CHECK(got_len == space_len
                       && memcmp(got, space, space_len) == 0);
        } else {
            FUZZ_CHECK(strcmp(got, STORE_SPACE_DEFAULT) == 0);
        }
        FUZZ_CHECK(skv_key_decode(url + off, n - off, back, &back_len)
                   == SKV_OK);
        FUZZ_CHECK(back_len == key_len && memcmp(back, key, key_len) == 0);
    }
    free(back);
    free(url);
}

static void
check_query(const char *q)
{
    static const char *const names[] = {"limit", "prefix", "after",
                                        "remove", "if-version", ""};
    const char     *v;
    size_t          vlen, klen;
    uint64_t        limit;
    unsigned char  *key = malloc(SKV_KEY_MAX);
    skv_version_t   ver;
    char            text[32];

    FUZZ_CHECK(key != NULL);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        bool     got = query_get(q, names[i], &v, &vlen);
        unsigned n = query_count(q, names[i]);

        FUZZ_CHECK(got == (n > 0));
        if (got) {
            /* inside the query, ending at '&' or its end */
            FUZZ_CHECK(v >= q && v + vlen <= q + strlen(q));
            FUZZ_CHECK(v[vlen] == '&' || v[vlen] == '\0');
            FUZZ_CHECK(memchr(v, '&', vlen) == NULL);
        }
    }

    if (parse_limit(q, &limit) == 0 && query_get(q, "limit", &v, &vlen)) {
        /* accepted: decimal digits of a positive number, nothing else */
        FUZZ_CHECK(limit > 0);
        snprintf(text, sizeof(text), "%" PRIu64, limit);
        FUZZ_CHECK(vlen >= strlen(text));
        for (size_t i = 0; i < vlen; i++) {
            FUZZ_CHECK(v[i] >= '0' && v[i] <= '9');
        }
        FUZZ_CHECK(memcmp(v + vlen - strlen(text), text, strlen(text))
                   == 0);
    } else if (!query_get(q, "limit", &v, &vlen)) {
        FUZZ_CHECK(parse_limit(q, &limit) == 0 && limit == 0);
    }

    for (int i = 0; i < 2; i++) {
        const char *name = i ? "after" : "prefix";

        if (parse_key_arg(q, name, key, &klen) == SKV_OK) {
            FUZZ_CHECK(klen <= SKV_KEY_MAX);
            if (!query_get(q, name, &v, &vlen) || vlen == 0) {
                FUZZ_CHECK(klen == 0);
            }
        } else {
            FUZZ_CHECK(query_get(q, name, &v, &vlen) && vlen > 0);
        }
    }

    /* a removal's if-version, as check_remove reads it */
    if (query_get(q, "if-version", &v, &vlen)
        && skv_version_parse(v, vlen, &ver) == SKV_OK)
    {
        FUZZ_CHECK(vlen == SKV_VERSION_TEXT_LEN);
    }
    free(key);
}

static void
check_epoch(const char *text)
{
    uint64_t          v = 12345;
    unsigned __int128 want = 0;
    size_t            len = strlen(text);
    bool              ok = len >= 1 && len <= 20;
    char              back[32];

    for (size_t i = 0; ok && i < len; i++) {
        ok = text[i] >= '0' && text[i] <= '9';
        want = want * 10 + (unsigned) (text[i] - '0');
    }
    ok = ok && want <= UINT64_MAX;
    if (parse_epoch(text, &v) == 0) {
        FUZZ_CHECK(ok && v == (uint64_t) want);
        snprintf(back, sizeof(back), "%" PRIu64, v);
        FUZZ_CHECK(parse_epoch(back, &v) == 0);
        FUZZ_CHECK(v == (uint64_t) want);
    } else {
        FUZZ_CHECK(!ok);
        FUZZ_CHECK(v == 12345);     /* untouched on a refusal */
    }
}

static void
check_digest(const char *field)
{
    unsigned char out[STORE_SHA256_LEN], dec[64];
    const char   *m;
    int           r = parse_digest(field, out);

    FUZZ_CHECK(r >= -1 && r <= 1);
    if (r != 1) {
        return;
    }
    /* a member "sha-256=:<44 base64 characters>:" (at the start or after
     * a comma and blanks) decodes to exactly what was returned */
    for (m = strstr(field, "sha-256=:"); m != NULL;
         m = strstr(m + 1, "sha-256=:"))
    {
        const char *b = m;

        while (b > field && (b[-1] == ' ' || b[-1] == '\t')) {
            b--;
        }
        if ((b == field || b[-1] == ',') && strlen(m) >= 9 + 44 + 1
            && m[9 + 44] == ':'
            && EVP_DecodeBlock(dec, (const unsigned char *) m + 9, 44) == 33
            && memcmp(dec, out, sizeof(out)) == 0)
        {
            return;
        }
    }
    FUZZ_CHECK(!"the sha-256 member returned is in the field");
}

/* The range rule written again for "bytes=A-B" / "bytes=A-" / "bytes=-B"
 * with numbers that fit: 1 with start and len, -1, or 0. */
static int
model_range(bool has_a, uint64_t a, bool has_b, uint64_t b, uint64_t total,
            uint64_t *start, uint64_t *len)
{
    if ((!has_a && !has_b) || (has_a && has_b && b < a)) {
        return 0;
    }
    if (!has_a) {
        if (b == 0 || total == 0) {
            return -1;
        }
        *len = b < total ? b : total;
        *start = total - *len;
        return 1;
    }
    if (a >= total) {
        return -1;
    }
    *start = a;
    *len = (has_b && b < total ? b : total - 1) - a + 1;
    return 1;
}

static void
check_range(const char *h, uint64_t total)
{
    uint64_t start = 7, len = 9;
    int      r = parse_range(h, total, &start, &len);

    FUZZ_CHECK(r >= -1 && r <= 1);
    if (r == 1) {
        FUZZ_CHECK(total > 0 && len >= 1 && start < total
                   && len <= total - start);
    } else {
        FUZZ_CHECK(start == 7 && len == 9);
    }
}

static void
check_built(fuzz_in_t *in)
{
    char           space[STORE_SPACE_NAME_MAX + 8], text[128], b64[64];
    unsigned char  key[64], sha[STORE_SHA256_LEN], out[STORE_SHA256_LEN];
    size_t         space_len, key_len;
    uint64_t       a, b, total, start = 0, len = 0, mstart = 0, mlen = 0;
    uint64_t       epoch, back;
    bool           has_a, has_b;
    int            r, m;

    /* a namespace (sometimes with a byte outside the rule) and a key */
    space_len = fuzz_range(in, 0, STORE_SPACE_NAME_MAX + 2);
    for (size_t i = 0; i < space_len; i++) {
        uint8_t c = fuzz_u8(in);

        space[i] = (c & 0x80) ? (char) (c & 0x7f) : "abcXYZ09_-"[c % 10];
        if (space[i] == '/' || space[i] == '\0') {
            space[i] = 'q';
        }
    }
    key_len = fuzz_range(in, 1, sizeof(key));
    for (size_t i = 0; i < key_len; i++) {
        key[i] = fuzz_u8(in);
    }
    check_key_path(space, space_len, key, key_len);

    /* a digest among other members */
    for (size_t i = 0; i < sizeof(sha); i++) {
        sha[i] = fuzz_u8(in);
    }
    EVP_EncodeBlock((unsigned char *) b64, sha, (int) sizeof(sha));
    snprintf(text, sizeof(text), "%ssha-256=:%s:%s",
             fuzz_bool(in) ? "sha-512=:AAAA:, " : "", b64,
             fuzz_bool(in) ? ", md5=:x:" : "");
    FUZZ_CHECK(parse_digest(text, out) == 1);
    FUZZ_CHECK(memcmp(out, sha, sizeof(sha)) == 0);

    /* a range: numbers near the value's size */
    total = fuzz_bool(in) ? fuzz_u64(in) : fuzz_u8(in);
    has_a = fuzz_bool(in);
    has_b = fuzz_bool(in);
    a = fuzz_bool(in) ? fuzz_u64(in) : fuzz_u8(in);
    b = fuzz_bool(in) ? fuzz_u64(in) : fuzz_u8(in);
    {
        char *p = text;

        p += sprintf(p, "%sbytes%s=%s", fuzz_bool(in) ? " " : "",
                     fuzz_bool(in) ? "\t" : "", fuzz_bool(in) ? " " : "");
        if (has_a) {
            p += sprintf(p, "%" PRIu64, a);
        }
        p += sprintf(p, "-");
        if (has_b) {
            sprintf(p, "%" PRIu64, b);
        }
    }
    r = parse_range(text, total, &start, &len);
    m = model_range(has_a, a, has_b, b, total, &mstart, &mlen);
    FUZZ_CHECK(r == m);
    if (r == 1) {
        FUZZ_CHECK(start == mstart && len == mlen);
    }
    check_range(text, total);

    /* an epoch, formatted and parsed back */
    epoch = fuzz_u64(in) >> fuzz_range(in, 0, 63);
    snprintf(text, sizeof(text), "%" PRIu64, epoch);
    FUZZ_CHECK(parse_epoch(text, &back) == 0 && back == epoch);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_t  in = {data, size};
    char      *text;
    uint64_t   total;
    uint8_t    which;
    skv_version_t v, v2;
    char       vt[SKV_VERSION_TEXT_LEN + 1];

    if (size == 0) {
        return 0;
    }
    which = data[0] % 7;
    if (which == 6) {
        fuzz_u8(&in);
        check_built(&in);
        return 0;
    }
    if (which == 4) {
        fuzz_u8(&in);
        total = fuzz_bool(&in) ? fuzz_u64(&in) : fuzz_u8(&in);
        data = in.p;
        size = in.n;
    } else {
        data++;
        size--;
        total = 0;
    }
    text = malloc(size + 1);
    FUZZ_CHECK(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';

    switch (which) {
    case 0:
        check_route(text);
        break;
    case 1:
        check_query(text);
        break;
    case 2:
        check_epoch(text);
        break;
    case 3:
        check_digest(text);
        break;
    case 4:
        check_range(text, total);
        break;
    case 5:
        if (skv_version_parse(text, strlen(text), &v) == SKV_OK) {
            skv_version_format(&v, vt);
            FUZZ_CHECK(strcmp(vt, text) == 0);
            FUZZ_CHECK(skv_version_parse(vt, strlen(vt), &v2) == SKV_OK
                       && skv_version_cmp(&v, &v2) == 0);
        }
        break;
    }
    free(text);
    return 0;
}
