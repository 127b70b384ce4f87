/*
 * http.c - the HTTP layer of storaged (see http.h and docs/protocol.md).
 *
 * libmicrohttpd does all HTTP parsing; it runs a pool of threads, each with
 * its own epoll loop.  For each request MHD first hands over the raw URI
 * (uri_seen: the request state is allocated there), then calls
 * handle_request() several times:
 *   1st call   headers known: only refusals that spare reading a body
 *              (shutting down, 401, a PUT's bad key or version, 413 from
 *              Content-Length) answer here;
 *   next calls body chunks (upload_data), appended to a buffer bounded by
 *              --max-value-size;
 *   last call  *upload_data_size == 0: route, validate, execute, answer.
 * Answering before the request was read completely would make MHD close
 * the connection, so everything else waits for the last call.
 *
 * MHD would percent-decode the URL path itself, turning "%00" into a NUL
 * that ends the C string: unescape_nothing() keeps the text raw and the key
 * is decoded by skv_key_decode, which knows keys may hold any byte.
 *
 * Store results become HTTP statuses only in send_store_result(); every
 * error body is JSON {"error": ..., "detail": ...} built with jansson.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "listing.h"
#include "skv_key.h"
#include "skv_record.h"
#include "skv_version.h"

#define HDR_VERSION    "X-Simplekv-Version"
#define HDR_TOMBSTONE  "X-Simplekv-Tombstone"
#define KV_PREFIX      "/v1/kv/"
#define KV_PREFIX_LEN  (sizeof(KV_PREFIX) - 1)
#define ALLOW_KV       "GET, HEAD, PUT, DELETE"
#define ALLOW_READ     "GET, HEAD"
#define LIST_BLOCK     (64 * 1024)
#define DEFAULT_CT     "application/octet-stream"
#define DISCARD_MIN    ((size_t) 1 << 20)

struct http_server {
    struct MHD_Daemon       *mhd;
    const storaged_config_t *cfg;
    store_t                 *store;
    stats_t                 *stats;
    char                    *auth_expected;  /* "Bearer <token>" or NULL */
    size_t                   auth_len;
    atomic_bool              stopping;
    atomic_int               inflight;
};

typedef enum {
    ROUTE_KV,
    ROUTE_KEYS,
    ROUTE_HEALTH,
    ROUTE_STATS,
    ROUTE_UNKNOWN
} route_t;

/* Per-request state, freed by request_completed(). */
typedef struct {
    bool           started;    /* the first handler call has run */
    bool           answered;   /* a response is queued; ignore the rest */
    bool           is_put;     /* a PUT /v1/kv/ request: keep its body */
    char          *query;      /* raw query string of /v1/keys, or NULL */
    bool           too_large;  /* body passed the limit: discard, then 413 */
    size_t         discarded;  /* bytes dropped since it did */
    unsigned char  key[SKV_KEY_MAX];
    size_t         key_len;
    skv_version_t  version;
    const char    *content_type;  /* MHD-owned, valid for the request */
    size_t         content_type_len;
    unsigned char *body;
    size_t         body_len;
    size_t         body_cap;
} request_t;

/* A GET /v1/keys response in progress (MHD's content reader state). */
typedef struct {
    http_server_t *srv;
    listing_t     *listing;
} list_stream_t;

static void
log_error(http_server_t *srv, const char *fmt, ...)
{
    va_list ap;
    char    line[1024];

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* One fprintf per line: stdio locks the stream, lines never mix. */
    fprintf(stderr, "storaged: %s\n", line);
    atomic_fetch_add(&srv->stats->errors_logged, 1);
}

static enum MHD_Result
send_response(http_server_t *srv, struct MHD_Connection *c, request_t *req,
              unsigned status, struct MHD_Response *resp)
{
    enum MHD_Result ret;

    if (resp == NULL) {
        log_error(srv, "out of memory building a %u response", status);
        return MHD_NO;
    }
    if (atomic_load(&srv->stopping)) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    }
    ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    if (ret == MHD_YES) {
        stats_count_status(srv->stats, status);
        if (req != NULL) {
            req->answered = true;
        }
    }
    return ret;
}

static struct MHD_Response *
empty_response(void)
{
    return MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
}

static struct MHD_Response *
json_response(json_t *doc)
{
    struct MHD_Response *resp;
    char                *text;

    if (doc == NULL) {
        return NULL;
    }
    text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (text == NULL) {
        return NULL;
    }
    resp = MHD_create_response_from_buffer(strlen(text), text,
                                           MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(text);
        return NULL;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "application/json");
    return resp;
}

/* The JSON error body every failure carries. */
static enum MHD_Result
send_error(http_server_t *srv, struct MHD_Connection *c, request_t *req,
           unsigned status, const char *error, const char *detail)
{
    struct MHD_Response *resp;

    resp = json_response(json_pack("{s:s, s:s}", "error", error,
                                   "detail", detail));
    if (resp != NULL && status == MHD_HTTP_UNAUTHORIZED) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer");
    }
    return send_response(srv, c, req, status, resp);
}

static enum MHD_Result
send_not_allowed(http_server_t *srv, struct MHD_Connection *c,
                 request_t *req, const char *method, const char *allow)
{
    struct MHD_Response *resp;
    char                 detail[128];

    snprintf(detail, sizeof(detail), "%.40s is not allowed here; use %s",
             method, allow);
    resp = json_response(json_pack("{s:s, s:s}", "error",
                                   "method not allowed", "detail", detail));
    if (resp != NULL) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    }
    return send_response(srv, c, req, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
}

/*
 * The one place where a store result becomes an HTTP status.  is_delete
 * selects 204 over 201 for an applied write.
 */
static enum MHD_Result
send_store_result(http_server_t *srv, struct MHD_Connection *c,
                  request_t *req, const char *what, store_rc_t rc,
                  bool is_delete, const skv_version_t *current,
                  const char *err)
{
    struct MHD_Response *resp;
    char                 vtext[SKV_VERSION_TEXT_LEN + 1];
    unsigned             status;

    switch (rc) {
    case STORE_APPLIED:
    case STORE_UNCHANGED:
        status = rc == STORE_UNCHANGED ? MHD_HTTP_OK
                 : is_delete ? MHD_HTTP_NO_CONTENT : MHD_HTTP_CREATED;
        resp = empty_response();
        break;
    case STORE_CONFLICT:
        status = MHD_HTTP_CONFLICT;
        resp = json_response(json_pack("{s:s, s:s}", "error", "conflict",
                                       "detail",
                                       "a newer version is stored"));
        break;
    case STORE_NOT_FOUND:
        status = MHD_HTTP_NOT_FOUND;
        resp = json_response(json_pack("{s:s, s:s}", "error", "not found",
                                       "detail", "no such key"));
        current = NULL;
        break;
    case STORE_ERR_INVALID:
        return send_error(srv, c, req, MHD_HTTP_BAD_REQUEST, "bad request",
                          err);
    case STORE_ERR_NOSPACE:
        log_error(srv, "%s of a %zu-byte key: %s", what, req->key_len, err);
        return send_error(srv, c, req, MHD_HTTP_INSUFFICIENT_STORAGE,
                          "insufficient storage", err);
    case STORE_ERR_CORRUPT:
    case STORE_ERR_DB:
    case STORE_OK:
    default:
        log_error(srv, "%s of a %zu-byte key: %s", what, req->key_len, err);
        return send_error(srv, c, req, MHD_HTTP_INTERNAL_SERVER_ERROR,
                          store_rc_name(rc), err);
    }
    if (resp != NULL && current != NULL) {
        skv_version_format(current, vtext);
        MHD_add_response_header(resp, HDR_VERSION, vtext);
    }
    return send_response(srv, c, req, status, resp);
}

/* Keep the URL exactly as received; see the comment at the top. */
static size_t
unescape_nothing(void *cls, struct MHD_Connection *c, char *s)
{
    (void) cls;
    (void) c;
    return strlen(s);
}

static route_t
route_of(const char *url)
{
    if (strncmp(url, KV_PREFIX, KV_PREFIX_LEN) == 0) {
        return ROUTE_KV;
    }
    if (strcmp(url, "/v1/keys") == 0) {
        return ROUTE_KEYS;
    }
    if (strcmp(url, "/v1/health") == 0) {
        return ROUTE_HEALTH;
    }
    if (strcmp(url, "/v1/stats") == 0) {
        return ROUTE_STATS;
    }
    return ROUTE_UNKNOWN;
}

/* Constant-time comparison, so the token cannot be guessed byte by byte
 * from response times. */
static bool
authorized(http_server_t *srv, struct MHD_Connection *c)
{
    const char    *got;
    size_t         got_len, i;
    unsigned char  diff;

    if (srv->auth_expected == NULL) {
        return true;
    }
    got = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                      MHD_HTTP_HEADER_AUTHORIZATION);
    if (got == NULL) {
        return false;
    }
    got_len = strlen(got);
    diff = got_len != srv->auth_len;
    for (i = 0; i < srv->auth_len; i++) {
        diff |= (unsigned char) (srv->auth_expected[i]
                                 ^ (i < got_len ? got[i] : 0));
    }
    return diff == 0;
}

static enum MHD_Result
key_error(http_server_t *srv, struct MHD_Connection *c, request_t *req,
          skv_status_t s)
{
    if (s == SKV_ERR_KEY_TOO_LONG) {
        return send_error(srv, c, req, MHD_HTTP_URI_TOO_LONG,
                          "key too long",
                          "keys are at most 1024 bytes after "
                          "percent-decoding");
    }
    return send_error(srv, c, req, MHD_HTTP_BAD_REQUEST, "bad key",
                      skv_strerror(s));
}

/* ---- GET/HEAD /v1/kv/<key> ---------------------------------------------- */

static void
free_item_buffer(void *buf)
{
    free(buf);
}

static enum MHD_Result
do_get(http_server_t *srv, struct MHD_Connection *c, request_t *req)
{
    struct MHD_Response *resp;
    store_item_t         item;
    store_rc_t           rc;
    char                 err[STORE_ERR_MAX];
    char                 vtext[SKV_VERSION_TEXT_LEN + 1];
    char                 ct[SKV_CONTENT_TYPE_MAX + 1];

    rc = store_get(srv->store, req->key, req->key_len, &item, err);
    if (rc != STORE_OK) {
        return send_store_result(srv, c, req, "GET", rc, false, NULL, err);
    }

    skv_version_format(&item.version, vtext);
    if (item.tombstone) {
        store_item_free(&item);
        resp = json_response(json_pack("{s:s, s:s}", "error", "not found",
                                       "detail", "the key was deleted"));
        if (resp != NULL) {
            MHD_add_response_header(resp, HDR_VERSION, vtext);
            MHD_add_response_header(resp, HDR_TOMBSTONE, "1");
        }
        return send_response(srv, c, req, MHD_HTTP_NOT_FOUND, resp);
    }

    if (item.content_type_len > 0) {
        memcpy(ct, item.content_type, item.content_type_len);
        ct[item.content_type_len] = '\0';
    } else {
        strcpy(ct, DEFAULT_CT);
    }
    /* The response body points into the buffer read from the database;
     * MHD frees that buffer when the response is destroyed. */
    resp = MHD_create_response_from_buffer_with_free_callback_cls(
        item.value_len, (void *) item.value, free_item_buffer, item.buf);
    if (resp == NULL) {
        store_item_free(&item);
        return send_response(srv, c, req, 500, NULL);
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ct);
    MHD_add_response_header(resp, HDR_VERSION, vtext);
    return send_response(srv, c, req, MHD_HTTP_OK, resp);
}

/* ---- PUT and DELETE /v1/kv/<key> ---------------------------------------- */

static bool
parse_version_header(struct MHD_Connection *c, skv_version_t *out)
{
    const char *v;

    v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, HDR_VERSION);
    return v != NULL && skv_version_parse(v, strlen(v), out) == SKV_OK;
}

static enum MHD_Result
version_error(http_server_t *srv, struct MHD_Connection *c, request_t *req)
{
    return send_error(srv, c, req, MHD_HTTP_BAD_REQUEST, "bad version",
                      "X-Simplekv-Version must be 32 lowercase hex digits, "
                      "not all zero");
}

static enum MHD_Result
do_delete(http_server_t *srv, struct MHD_Connection *c, request_t *req)
{
    skv_version_t current;
    store_rc_t    rc;
    char          err[STORE_ERR_MAX];

    rc = store_delete_if_newer(srv->store, req->key, req->key_len,
                               &req->version, &current, err);
    return send_store_result(srv, c, req, "DELETE", rc, true, &current, err);
}

/* First call of a PUT: refuse early what can be refused from the headers. */
static enum MHD_Result
begin_put(http_server_t *srv, struct MHD_Connection *c, request_t *req)
{
    const char         *cl, *ct;
    char               *end;
    unsigned long long  len = 0;
    char                detail[128];

    ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                     MHD_HTTP_HEADER_CONTENT_TYPE);
    if (ct != NULL) {
        req->content_type = ct;
        req->content_type_len = strlen(ct);
        if (req->content_type_len > SKV_CONTENT_TYPE_MAX) {
            return send_error(srv, c, req, MHD_HTTP_BAD_REQUEST,
                              "bad content type",
                              "Content-Type is longer than 255 bytes");
        }
    }

    /* MHD has already checked Content-Length's syntax. */
    cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl != NULL) {
        len = strtoull(cl, &end, 10);
    }
    if (len > srv->cfg->max_value_size) {
        snprintf(detail, sizeof(detail),
                 "the value is %llu bytes; the limit is %" PRIu64, len,
                 srv->cfg->max_value_size);
        return send_error(srv, c, req, MHD_HTTP_CONTENT_TOO_LARGE,
                          "value too large", detail);
    }
    if (len > 0) {
        req->body = malloc(len);
        if (req->body == NULL) {
            return send_error(srv, c, req, MHD_HTTP_INTERNAL_SERVER_ERROR,
                              "out of memory", "cannot buffer the value");
        }
        req->body_cap = len;
    }
    return MHD_YES;
}

static enum MHD_Result
append_body(http_server_t *srv, request_t *req, const char *data,
            size_t size)
{
    size_t         cap;
    unsigned char *grown;

    if (req->too_large) {
        /* MHD 0.9.75 refuses a response queued while a body is still
         * arriving, so an oversized chunked body is read and dropped and
         * the 413 goes out at its end.  Dropping is bounded: past as much
         * again as the limit (at least 1 MiB), the connection is closed. */
        req->discarded += size;
        if (req->discarded > srv->cfg->max_value_size
            && req->discarded > DISCARD_MIN)
        {
            log_error(srv, "closing a connection whose chunked value "
                           "passed the limit by %zu bytes", req->discarded);
            return MHD_NO;
        }
        return MHD_YES;
    }
    if (size > srv->cfg->max_value_size - req->body_len) {
        req->too_large = true;
        req->discarded = size;
        free(req->body);
        req->body = NULL;
        req->body_len = req->body_cap = 0;
        return MHD_YES;
    }
    if (req->body_len + size > req->body_cap) {
        /* Chunked bodies (no Content-Length) grow by doubling, capped. */
        cap = req->body_cap > 0 ? req->body_cap : 4096;
        while (cap < req->body_len + size) {
            cap *= 2;
        }
        if (cap > srv->cfg->max_value_size) {
            cap = srv->cfg->max_value_size;
        }
        grown = realloc(req->body, cap);
        if (grown == NULL) {
            log_error(srv, "out of memory buffering a %zu-byte value", cap);
            return MHD_NO;
        }
        req->body = grown;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, size);
    req->body_len += size;
    return MHD_YES;
}

static enum MHD_Result
finish_put(http_server_t *srv, struct MHD_Connection *c, request_t *req)
{
    skv_version_t current;
    store_rc_t    rc;
    char          err[STORE_ERR_MAX];
    char          detail[128];

    if (req->too_large) {
        snprintf(detail, sizeof(detail),
                 "the value is over the limit of %" PRIu64 " bytes",
                 srv->cfg->max_value_size);
        return send_error(srv, c, req, MHD_HTTP_CONTENT_TOO_LARGE,
                          "value too large", detail);
    }
    rc = store_put_if_newer(srv->store, req->key, req->key_len,
                            &req->version, req->content_type,
                            req->content_type_len, req->body, req->body_len,
                            &current, err);
    return send_store_result(srv, c, req, "PUT", rc, false, &current, err);
}

/* ---- GET /v1/keys ------------------------------------------------------- */

/*
 * Find a query argument in the raw query string.  MHD's own argument
 * parsing would turn '+' into a space, but in a key '+' is itself; so the
 * raw text is kept (uri_seen) and split here.  First occurrence wins; an
 * argument without '=' has an empty value.
 */
static bool
query_get(const char *query, const char *name, const char **val,
          size_t *val_len)
{
    size_t      name_len = strlen(name);
    const char *p = query, *end, *eq;

    while (p != NULL && *p != '\0') {
        end = strchr(p, '&');
        if (end == NULL) {
            end = p + strlen(p);
        }
        eq = memchr(p, '=', (size_t) (end - p));
        if ((size_t) ((eq != NULL ? eq : end) - p) == name_len
            && memcmp(p, name, name_len) == 0)
        {
            *val = eq != NULL ? eq + 1 : end;
            *val_len = (size_t) (end - *val);
            return true;
        }
        p = *end == '&' ? end + 1 : end;
    }
    return false;
}

/* Decode a prefix/after argument: key encoding, but empty is allowed. */
static skv_status_t
decode_arg(request_t *req, const char *name, unsigned char *out,
           size_t *out_len)
{
    const char *v;
    size_t      len;

    if (!query_get(req->query, name, &v, &len) || len == 0) {
        *out_len = 0;
        return SKV_OK;
    }
    return skv_key_decode(v, len, out, out_len);
}

/* MHD asks for the next block of the listing. */
static ssize_t
list_stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    list_stream_t *ls = cls;
    char           err[STORE_ERR_MAX];
    ssize_t        n;

    (void) pos;
    n = listing_next(ls->listing, buf, max, err);
    if (n < 0) {
        /* The chunked stream ends without its last chunk: the client sees
         * a truncated transfer, never a silently short listing. */
        log_error(ls->srv, "listing keys: %s", err);
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    return n > 0 ? n : MHD_CONTENT_READER_END_OF_STREAM;
}

static void
list_stream_free(void *cls)
{
    list_stream_t *ls = cls;

    listing_free(ls->listing);
    free(ls);
}

static enum MHD_Result
do_list(http_server_t *srv, struct MHD_Connection *c, request_t *req)
{
    struct MHD_Response *resp;
    list_stream_t       *ls;
    unsigned char        prefix[SKV_KEY_MAX], after[SKV_KEY_MAX];
    size_t               prefix_len, after_len, lim_len;
    const char          *lim;
    char                *end;
    unsigned long long   limit = 0;

    if (decode_arg(req, "prefix", prefix, &prefix_len) != SKV_OK) {
        return send_error(srv, c, req, MHD_HTTP_BAD_REQUEST, "bad prefix",
                          "prefix must be a percent-encoded key of at "
                          "most 1024 bytes");
    }
    if (decode_arg(req, "after", after, &after_len) != SKV_OK) {
        return send_error(srv, c, req, MHD_HTTP_BAD_REQUEST, "bad after",
                          "after must be a percent-encoded key of at "
                          "most 1024 bytes");
    }
    if (query_get(req->query, "limit", &lim, &lim_len)) {
        errno = 0;
        limit = strtoull(lim, &end, 10);
        if (lim_len == 0 || lim[0] < '0' || lim[0] > '9'
            || end != lim + lim_len || errno != 0 || limit == 0)
        {
            return send_error(srv, c, req, MHD_HTTP_BAD_REQUEST, "bad limit",
                              "limit must be a positive integer");
        }
    }

    ls = calloc(1, sizeof(*ls));
    if (ls != NULL) {
        ls->srv = srv;
        ls->listing = listing_new(srv->store, prefix, prefix_len, after,
                                  after_len, limit);
    }
    if (ls == NULL || ls->listing == NULL) {
        free(ls);
        return send_error(srv, c, req, MHD_HTTP_INTERNAL_SERVER_ERROR,
                          "out of memory", "cannot start a listing");
    }
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, LIST_BLOCK,
                                             list_stream_read, ls,
                                             list_stream_free);
    if (resp == NULL) {
        list_stream_free(ls);
        return send_response(srv, c, req, 500, NULL);
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; charset=us-ascii");
    return send_response(srv, c, req, MHD_HTTP_OK, resp);
}

/* ---- health and stats --------------------------------------------------- */

static enum MHD_Result
do_health(http_server_t *srv, struct MHD_Connection *c, request_t *req)
{
    if (!store_healthy(srv->store)) {
        return send_error(srv, c, req, MHD_HTTP_SERVICE_UNAVAILABLE,
                          "unhealthy", "the database is not usable");
    }
    return send_response(srv, c, req, MHD_HTTP_OK,
                         json_response(json_pack("{s:s}", "status", "ok")));
}

static enum MHD_Result
do_stats(http_server_t *srv, struct MHD_Connection *c, request_t *req)
{
    struct MHD_Response *resp;
    char                *text;

    text = stats_render(srv->stats, srv->store);
    if (text == NULL) {
        return send_error(srv, c, req, MHD_HTTP_INTERNAL_SERVER_ERROR,
                          "out of memory", "cannot render stats");
    }
    resp = MHD_create_response_from_buffer(strlen(text), text,
                                           MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(text);
        return send_response(srv, c, req, 500, NULL);
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "application/json");
    return send_response(srv, c, req, MHD_HTTP_OK, resp);
}

/* ---- dispatch ----------------------------------------------------------- */

static bool
is_method(const char *method, const char *name)
{
    return strcmp(method, name) == 0;
}

/*
 * A request is answered once it has been read completely: answering
 * earlier makes MHD close the connection (it cannot know what follows),
 * which would defeat keep-alive.  Only refusals that save reading a body
 * (shutting down, no token, value too large) go out on the first call.
 */
static enum MHD_Result
first_call(http_server_t *srv, struct MHD_Connection *c, request_t *req,
           const char *url, const char *method)
{
    skv_status_t s;

    if (atomic_load(&srv->stopping)) {
        return send_error(srv, c, req, MHD_HTTP_SERVICE_UNAVAILABLE,
                          "shutting down", "storaged is stopping");
    }
    if (!authorized(srv, c)) {
        return send_error(srv, c, req, MHD_HTTP_UNAUTHORIZED,
                          "unauthorized",
                          "a valid 'Authorization: Bearer <token>' header "
                          "is required");
    }
    if (route_of(url) == ROUTE_KV && is_method(method, MHD_HTTP_METHOD_PUT)) {
        /* A PUT that will be refused anyway is refused before its value
         * is read (dispatch checks the same again at the end). */
        req->is_put = true;
        s = skv_key_decode(url + KV_PREFIX_LEN, strlen(url + KV_PREFIX_LEN),
                           req->key, &req->key_len);
        if (s != SKV_OK) {
            return key_error(srv, c, req, s);
        }
        if (!parse_version_header(c, &req->version)) {
            return version_error(srv, c, req);
        }
        return begin_put(srv, c, req);
    }
    return MHD_YES;
}

/* The request is complete: route, validate, execute, answer. */
static enum MHD_Result
dispatch(http_server_t *srv, struct MHD_Connection *c, request_t *req,
              const char *url, const char *method)
{
    route_t       route;
    skv_status_t  s;
    bool          read_only;

    route = route_of(url);
    read_only = is_method(method, MHD_HTTP_METHOD_GET)
                || is_method(method, MHD_HTTP_METHOD_HEAD);

    switch (route) {
    case ROUTE_KV:
        if (!read_only && !is_method(method, MHD_HTTP_METHOD_PUT)
            && !is_method(method, MHD_HTTP_METHOD_DELETE))
        {
            return send_not_allowed(srv, c, req, method, ALLOW_KV);
        }
        s = skv_key_decode(url + KV_PREFIX_LEN, strlen(url + KV_PREFIX_LEN),
                           req->key, &req->key_len);
        if (s != SKV_OK) {
            return key_error(srv, c, req, s);
        }
        if (read_only) {
            return do_get(srv, c, req);
        }
        if (!parse_version_header(c, &req->version)) {
            return version_error(srv, c, req);
        }
        if (is_method(method, MHD_HTTP_METHOD_DELETE)) {
            return do_delete(srv, c, req);
        }
        return finish_put(srv, c, req);

    case ROUTE_KEYS:
    case ROUTE_HEALTH:
    case ROUTE_STATS:
        if (!read_only) {
            return send_not_allowed(srv, c, req, method, ALLOW_READ);
        }
        return route == ROUTE_KEYS     ? do_list(srv, c, req)
               : route == ROUTE_HEALTH ? do_health(srv, c, req)
                                       : do_stats(srv, c, req);

    case ROUTE_UNKNOWN:
    default:
        return send_error(srv, c, req, MHD_HTTP_NOT_FOUND, "not found",
                          "no such endpoint; see docs/protocol.md");
    }
}

static enum MHD_Result
handle_request(void *cls, struct MHD_Connection *c, const char *url,
               const char *method, const char *version,
               const char *upload_data, size_t *upload_data_size,
               void **con_cls)
{
    http_server_t *srv = cls;
    request_t     *req = *con_cls;

    (void) version;

    if (req == NULL) {
        return MHD_NO;          /* uri_seen ran out of memory */
    }
    if (!req->started) {
        req->started = true;
        return first_call(srv, c, req, url, method);
    }
    if (*upload_data_size > 0) {
        size_t size = *upload_data_size;

        *upload_data_size = 0;
        if (req->answered) {
            return MHD_YES;     /* already refused: discard */
        }
        if (!req->is_put) {
            /* Only a PUT has a use for a body: drop others, boundedly. */
            req->discarded += size;
            return req->discarded > DISCARD_MIN ? MHD_NO : MHD_YES;
        }
        return append_body(srv, req, upload_data, size);
    }
    if (req->answered) {
        return MHD_YES;
    }
    return dispatch(srv, c, req, url, method);
}

/*
 * Called by MHD once per request with the raw request URI, before any
 * parsing: allocates the request state, and keeps the raw query of a
 * listing (see query_get).
 */
static void *
uri_seen(void *cls, const char *uri, struct MHD_Connection *c)
{
    http_server_t *srv = cls;
    request_t     *req;
    const char    *q;

    (void) c;
    req = calloc(1, sizeof(*req));
    if (req == NULL) {
        log_error(srv, "out of memory for a request");
        return NULL;
    }
    q = strchr(uri, '?');
    if (q != NULL && strncmp(uri, "/v1/keys?", 9) == 0) {
        req->query = strdup(q + 1);
        if (req->query == NULL) {
            free(req);
            log_error(srv, "out of memory for a request");
            return NULL;
        }
    }
    atomic_fetch_add(&srv->inflight, 1);
    return req;
}

static void
request_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                  enum MHD_RequestTerminationCode toe)
{
    http_server_t *srv = cls;
    request_t     *req = *con_cls;

    (void) c;
    (void) toe;
    if (req != NULL) {
        free(req->body);
        free(req->query);
        free(req);
        *con_cls = NULL;
        atomic_fetch_sub(&srv->inflight, 1);
    }
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];

    (void) cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    fprintf(stderr, "storaged: http: %s\n", line);
}

http_server_t *
http_start(const storaged_config_t *cfg, store_t *st, stats_t *stats)
{
    http_server_t *srv;
    unsigned int   flags;

    srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        fprintf(stderr, "storaged: out of memory\n");
        return NULL;
    }
    srv->cfg = cfg;
    srv->store = st;
    srv->stats = stats;
    if (cfg->token != NULL) {
        srv->auth_len = strlen("Bearer ") + cfg->token_len;
        srv->auth_expected = malloc(srv->auth_len + 1);
        if (srv->auth_expected == NULL) {
            free(srv);
            return NULL;
        }
        snprintf(srv->auth_expected, srv->auth_len + 1, "Bearer %s",
                 cfg->token);
    }

    flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC
            | MHD_USE_ERROR_LOG;
    if (cfg->listen_addr.ss_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    srv->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, handle_request, srv,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (const struct sockaddr *) &cfg->listen_addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int) cfg->threads,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape_nothing, NULL,
        MHD_OPTION_URI_LOG_CALLBACK, uri_seen, srv,
        MHD_OPTION_NOTIFY_COMPLETED, request_completed, srv,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) 120,
        /* Per-connection pool, zeroed on every request: 32 KiB holds the
         * longest request line and headers (a 1024-byte key is at most
         * 3072 encoded) and stays below glibc's mmap threshold, where a
         * larger pool costs an mmap/munmap pair per request. */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) 32 * 1024,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int) 1024,
        MHD_OPTION_END);
    if (srv->mhd == NULL) {
        fprintf(stderr, "storaged: cannot listen on %s: %s\n",
                cfg->listen_text,
                errno != 0 ? strerror(errno) : "libmicrohttpd failed");
        free(srv->auth_expected);
        free(srv);
        return NULL;
    }
    return srv;
}

void
http_stop(http_server_t *srv, unsigned drain_ms)
{
    struct timespec ts = {0, 10 * 1000000L};
    MHD_socket      fd;
    unsigned        waited = 0;

    if (srv == NULL) {
        return;
    }
    atomic_store(&srv->stopping, true);
    fd = MHD_quiesce_daemon(srv->mhd);
    if (fd != MHD_INVALID_SOCKET) {
        close(fd);
    }
    while (atomic_load(&srv->inflight) > 0 && waited < drain_ms) {
        nanosleep(&ts, NULL);
        waited += 10;
    }
    MHD_stop_daemon(srv->mhd);
    free(srv->auth_expected);
    free(srv);
}
