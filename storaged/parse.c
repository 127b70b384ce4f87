/*
 * parse.c - request parts validated as text, before the store (see
 * parse.h): routes and namespaces, the epoch header, digests, ranges and
 * listing arguments.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "parse.h"
#include "query.h"

/* ---- routes ------------------------------------------------------------- */

static void
set_space(char *space, size_t *space_len, const char *name, size_t len)
{
    memcpy(space, name, len);
    space[len] = '\0';
    *space_len = len;
}

/*
 * /v1/ns/<name>/kv/<key> and /v1/ns/<name>/keys: the namespace's kv and
 * listing routes (ROUTE_BAD_NAMESPACE when <name> is not a namespace
 * name).  Anything else under /v1/ns/ is unknown.
 */
static route_t
ns_route_of(const char *url, char *space, size_t *space_len,
            size_t *key_offset)
{
    const char *name = url + NS_PREFIX_LEN;
    const char *rest = strchr(name, '/');
    route_t     route;

    if (rest == NULL) {
        return ROUTE_UNKNOWN;
    }
    if (strncmp(rest, "/kv/", 4) == 0) {
        route = ROUTE_KV;
    } else if (strcmp(rest, "/keys") == 0) {
        route = ROUTE_KEYS;
    } else {
        return ROUTE_UNKNOWN;
    }
    if (!store_space_name_valid(name, (size_t) (rest - name))) {
        return ROUTE_BAD_NAMESPACE;
    }
    if (route == ROUTE_KV) {
        *key_offset = (size_t) (rest + 4 - url);
    }
    set_space(space, space_len, name, (size_t) (rest - name));
    return route;
}

route_t
parse_route(const char *url, char *space, size_t *space_len,
            size_t *key_offset)
{
    set_space(space, space_len, STORE_SPACE_DEFAULT,
              sizeof(STORE_SPACE_DEFAULT) - 1);
    if (strncmp(url, KV_PREFIX, KV_PREFIX_LEN) == 0) {
        *key_offset = KV_PREFIX_LEN;
        return ROUTE_KV;
    }
    if (strncmp(url, NS_PREFIX, NS_PREFIX_LEN) == 0) {
        return ns_route_of(url, space, space_len, key_offset);
    }
    if (strcmp(url, "/v1/keys") == 0) {
        return ROUTE_KEYS;
    }
    if (strcmp(url, "/v1/namespaces") == 0) {
        return ROUTE_NAMESPACES;
    }
    if (strcmp(url, "/v1/health") == 0) {
        return ROUTE_HEALTH;
    }
    if (strcmp(url, "/v1/stats") == 0) {
        return ROUTE_STATS;
    }
    if (strcmp(url, "/v1/epochs") == 0) {
        return ROUTE_EPOCHS;
    }
    if (strcmp(url, "/v1/repair-watermark") == 0) {
        return ROUTE_REPAIR;
    }
    if (strcmp(url, "/v1/lease") == 0) {
        return ROUTE_LEASE;
    }
    return ROUTE_UNKNOWN;
}

/* ---- headers ------------------------------------------------------------ */

#define EPOCH_DIGITS_MAX 20     /* 18446744073709551615 */

int
parse_epoch(const char *text, uint64_t *out)
{
    size_t   len = strlen(text), i;
    uint64_t v = 0;

    if (len == 0 || len > EPOCH_DIGITS_MAX) {
        return -1;
    }
    for (i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9') {
            return -1;
        }
        if (v > (UINT64_MAX - (uint64_t) (text[i] - '0')) / 10) {
            return -1;
        }
        v = v * 10 + (uint64_t) (text[i] - '0');
    }
    *out = v;
    return 0;
}

int
parse_digest(const char *field, unsigned char out[STORE_SHA256_LEN])
{
    const char    *p = field, *end, *colon;
    unsigned char  dec[64];
    size_t         klen, vlen;
    int            n;

    while (*p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',') {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        end = strchr(p, ',');
        if (end == NULL) {
            end = p + strlen(p);
        }
        klen = strcspn(p, "=,");
        if (klen == 7 && strncmp(p, "sha-256", 7) == 0) {
            if (p[7] != '=' || p[8] != ':') {
                return -1;
            }
            colon = strchr(p + 9, ':');
            if (colon == NULL || colon > end) {
                return -1;
            }
            vlen = (size_t) (colon - (p + 9));
            if (vlen != 44 || p[9 + 43] != '=' || p[9 + 42] == '=') {
                return -1;
            }
            n = EVP_DecodeBlock(dec, (const unsigned char *) p + 9,
                                (int) vlen);
            if (n != 33) {      /* 32 bytes, and one of padding */
                return -1;
            }
            memcpy(out, dec, STORE_SHA256_LEN);
            return 1;
        }
        p = end;
    }
    return 0;
}

int
parse_range(const char *h, uint64_t total, uint64_t *start, uint64_t *len)
{
    const char *p;
    char       *e;
    uint64_t    a, b;
    bool        has_a, has_b;

    while (*h == ' ' || *h == '\t') {
        h++;
    }
    if (strncasecmp(h, "bytes", 5) != 0) {
        return 0;
    }
    p = h + 5;
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    if (*p++ != '=' || strchr(p, ',') != NULL) {
        return 0;
    }
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    has_a = *p >= '0' && *p <= '9';
    a = 0;
    if (has_a) {
        errno = 0;
        a = strtoull(p, &e, 10);
        if (errno == ERANGE) {
            a = UINT64_MAX;
        }
        p = e;
    }
    if (*p++ != '-') {
        return 0;
    }
    has_b = *p >= '0' && *p <= '9';
    b = 0;
    if (has_b) {
        errno = 0;
        b = strtoull(p, &e, 10);
        if (errno == ERANGE) {
            b = UINT64_MAX;
        }
        p = e;
    }
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    if (*p != '\0' || (!has_a && !has_b) || (has_a && has_b && b < a)) {
        return 0;
    }
    if (!has_a) {
        /* The last b bytes. */
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
    if (!has_b || b >= total) {
        b = total - 1;
    }
    *start = a;
    *len = b - a + 1;
    return 1;
}

/* ---- listing arguments -------------------------------------------------- */

skv_status_t
parse_key_arg(const char *query, const char *name,
              unsigned char out[SKV_KEY_MAX], size_t *out_len)
{
    const char *v;
    size_t      len;

    if (!query_get(query, name, &v, &len) || len == 0) {
        *out_len = 0;
        return SKV_OK;
    }
    return skv_key_decode(v, len, out, out_len);
}

int
parse_limit(const char *query, uint64_t *limit)
{
    const char *lim;
    char       *end;
    size_t      lim_len;

    *limit = 0;
    if (!query_get(query, "limit", &lim, &lim_len)) {
        return 0;
    }
    errno = 0;
    *limit = strtoull(lim, &end, 10);
    if (lim_len == 0 || lim[0] < '0' || lim[0] > '9'
        || end != lim + lim_len || errno != 0 || *limit == 0)
    {
        return -1;
    }
    return 0;
}
