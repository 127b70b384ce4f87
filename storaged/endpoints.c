/*
 * endpoints.c - GET /v1/keys (and /v1/ns/<name>/keys), /v1/namespaces,
 * /v1/health and /v1/stats (see endpoints.h).
 *
 * A listing names its namespace in X-Simplekv-Namespace; one this node
 * never held lists nothing (and is not created).
 *
 * A listing with a `limit` (the router's pages: at most 4096 lines) is
 * built in memory and sent with a Content-Length: a chunked answer makes
 * nginx reserve its whole subrequest buffer per node.  The page is bounded
 * by the limit, and limits above LIST_MEMORY_LINES stream like a listing
 * without one: chunked, block by block from the index (listing.c), so that
 * memory stays bounded whatever the number of keys.
 */
#include <stdlib.h>
#include <string.h>

#include "endpoints.h"
#include "listing.h"
#include "query.h"
#include "reply.h"
#include "skv_keyline.h"

#define LIST_BLOCK         (64 * 1024)
#define LIST_MEMORY_LINES  10000

/* A GET /v1/keys response in progress (MHD's content reader state). */
typedef struct {
    http_server_t *srv;
    listing_t     *listing;
} list_stream_t;

/* MHD asks for the next block of a streamed listing. */
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
        http_log_error(ls->srv, "listing keys: %s", err);
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

/* The chunked listing; takes the listing. */
static struct MHD_Response *
list_streamed(http_server_t *srv, listing_t *l)
{
    struct MHD_Response *resp;
    list_stream_t       *ls;

    ls = calloc(1, sizeof(*ls));
    if (ls == NULL) {
        listing_free(l);
        return NULL;
    }
    ls->srv = srv;
    ls->listing = l;
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, LIST_BLOCK,
                                             list_stream_read, ls,
                                             list_stream_free);
    if (resp == NULL) {
        list_stream_free(ls);
    }
    return resp;
}

/* The whole page in one buffer (*out, malloc'd); 0, or -1 with err filled
 * (or err empty when out of memory). */
static int
list_in_memory(listing_t *l, char **out, size_t *out_len, char *err)
{
    char    *buf = NULL, *grown;
    size_t   len = 0, cap = 0;
    ssize_t  n;

    err[0] = '\0';
    do {
        if (cap - len < LIST_BLOCK) {
            cap = cap == 0 ? LIST_BLOCK : cap * 2;
            grown = realloc(buf, cap);
            if (grown == NULL) {
                free(buf);
                return -1;
            }
            buf = grown;
        }
        n = listing_next(l, buf + len, cap - len, err);
        if (n < 0) {
            free(buf);
            return -1;
        }
        len += (size_t) n;
    } while (n > 0);
    *out = buf;
    *out_len = len;
    return 0;
}

/* The headers of every listing answer. */
static void
list_headers(struct MHD_Response *resp, request_t *req)
{
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; charset=us-ascii");
    MHD_add_response_header(resp, HDR_NAMESPACE, req->space);
}

static enum MHD_Result
list_page(http_server_t *srv, struct MHD_Connection *c, request_t *req,
          listing_t *l)
{
    struct MHD_Response *resp;
    char                *page;
    size_t               len;
    char                 err[STORE_ERR_MAX];
    int                  rc;

    rc = list_in_memory(l, &page, &len, err);
    listing_free(l);
    if (rc != 0) {
        if (err[0] != '\0') {
            http_log_error(srv, "listing keys: %s", err);
        }
        return reply_error(srv, c, req, MHD_HTTP_INTERNAL_SERVER_ERROR,
                           err[0] != '\0' ? "database error"
                                          : "out of memory",
                           err[0] != '\0' ? err : "cannot build the page");
    }
    resp = MHD_create_response_from_buffer(len, page, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(page);
        return reply_send(srv, c, req, 500, NULL);
    }
    list_headers(resp, req);
    return reply_send(srv, c, req, MHD_HTTP_OK, resp);
}

enum MHD_Result
endpoint_keys(http_server_t *srv, struct MHD_Connection *c, request_t *req)
{
    struct MHD_Response *resp;
    listing_t           *l;
    store_space_t       *sp;
    store_rc_t           rc;
    char                 err[STORE_ERR_MAX];
    unsigned char        prefix[SKV_KEY_MAX], after[SKV_KEY_MAX];
    size_t               prefix_len, after_len;
    uint64_t             limit;

    if (parse_key_arg(req->query, "prefix", prefix, &prefix_len) != SKV_OK) {
        return reply_error(srv, c, req, MHD_HTTP_BAD_REQUEST, "bad prefix",
                           "prefix must be a percent-encoded key of at "
                           "most 1024 bytes");
    }
    if (parse_key_arg(req->query, "after", after, &after_len) != SKV_OK) {
        return reply_error(srv, c, req, MHD_HTTP_BAD_REQUEST, "bad after",
                           "after must be a percent-encoded key of at "
                           "most 1024 bytes");
    }
    if (parse_limit(req->query, &limit) != 0) {
        return reply_error(srv, c, req, MHD_HTTP_BAD_REQUEST, "bad limit",
                           "limit must be a positive integer");
    }
    /* Never created by a read: one never held lists nothing. */
    rc = store_space(srv->store, req->space, req->space_len, false, &sp,
                     err);
    if (rc != STORE_OK && rc != STORE_NOT_FOUND) {
        return reply_store_error(srv, c, req, "listing keys", rc, err);
    }
    if (req->head) {
        /* Headers only.  A streamed (chunked) answer to a HEAD would still
         * carry libmicrohttpd's last chunk, which the client takes for the
         * start of its next response on the connection. */
        resp = reply_empty();
        if (resp != NULL) {
            list_headers(resp, req);
        }
        return reply_send(srv, c, req, MHD_HTTP_OK, resp);
    }
    l = listing_new(srv->store, sp, prefix, prefix_len, after, after_len,
                    limit);
    if (l == NULL) {
        return reply_error(srv, c, req, MHD_HTTP_INTERNAL_SERVER_ERROR,
                           "out of memory", "cannot start a listing");
    }
    if (limit > 0 && limit <= LIST_MEMORY_LINES) {
        return list_page(srv, c, req, l);
    }
    resp = list_streamed(srv, l);
    if (resp != NULL) {
        list_headers(resp, req);
    }
    return reply_send(srv, c, req, MHD_HTTP_OK, resp);
}

enum MHD_Result
endpoint_namespaces(http_server_t *srv, struct MHD_Connection *c,
                    request_t *req)
{
    json_t              *list;
    store_space_stats_t *spaces;
    size_t               n, i;

    spaces = store_spaces_list(srv->store, &n);
    list = json_array();
    for (i = 0; spaces != NULL && list != NULL && i < n; i++) {
        if (json_array_append_new(list, stats_space_json(&spaces[i])) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    free(spaces);
    if (spaces == NULL || list == NULL) {
        json_decref(list);
        return reply_error(srv, c, req, MHD_HTTP_INTERNAL_SERVER_ERROR,
                           "out of memory", "cannot list the namespaces");
    }
    return reply_send(srv, c, req, MHD_HTTP_OK,
                      reply_json(json_pack("{s:o}", "namespaces", list)));
}

enum MHD_Result
endpoint_health(http_server_t *srv, struct MHD_Connection *c, request_t *req)
{
    if (!store_healthy(srv->store)) {
        return reply_error(srv, c, req, MHD_HTTP_SERVICE_UNAVAILABLE,
                           "unhealthy", "the database is not usable");
    }
    return reply_send(srv, c, req, MHD_HTTP_OK,
                      reply_json(json_pack("{s:s}", "status", "ok")));
}

enum MHD_Result
endpoint_stats(http_server_t *srv, struct MHD_Connection *c, request_t *req)
{
    struct MHD_Response *resp;
    char                *text;

    text = stats_render(srv->stats, srv->store, &srv->lease);
    if (text == NULL) {
        return reply_error(srv, c, req, MHD_HTTP_INTERNAL_SERVER_ERROR,
                           "out of memory", "cannot render stats");
    }
    resp = MHD_create_response_from_buffer(strlen(text), text,
                                           MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(text);
        return reply_send(srv, c, req, 500, NULL);
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "application/json");
    return reply_send(srv, c, req, MHD_HTTP_OK, resp);
}
