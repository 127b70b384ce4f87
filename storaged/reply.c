/*
 * reply.c - storaged's responses (see reply.h): JSON error bodies built
 * with jansson, the 405 answer, and the mapping from store results to HTTP
 * statuses.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"

void
http_log_error(http_server_t *srv, const char *fmt, ...)
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

enum MHD_Result
reply_send(http_server_t *srv, struct MHD_Connection *c, request_t *req,
           unsigned status, struct MHD_Response *resp)
{
    enum MHD_Result ret;

    if (resp == NULL) {
        http_log_error(srv, "out of memory building a %u response", status);
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

struct MHD_Response *
reply_empty(void)
{
    return MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
}

struct MHD_Response *
reply_json(json_t *doc)
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

static struct MHD_Response *
error_body(const char *error, const char *detail)
{
    return reply_json(json_pack("{s:s, s:s}", "error", error,
                                "detail", detail));
}

enum MHD_Result
reply_error(http_server_t *srv, struct MHD_Connection *c, request_t *req,
            unsigned status, const char *error, const char *detail)
{
    struct MHD_Response *resp;

    resp = error_body(error, detail);
    if (resp != NULL && status == MHD_HTTP_UNAUTHORIZED) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer");
        /* only a client with the token keeps a connection past its first
         * request (the headers' deadline, headguard.h, covers only that) */
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    }
    return reply_send(srv, c, req, status, resp);
}

enum MHD_Result
reply_not_allowed(http_server_t *srv, struct MHD_Connection *c,
                  request_t *req, const char *method, const char *allow)
{
    struct MHD_Response *resp;
    char                 detail[128];

    snprintf(detail, sizeof(detail), "%.40s is not allowed here; use %s",
             method, allow);
    resp = error_body("method not allowed", detail);
    if (resp != NULL) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    }
    return reply_send(srv, c, req, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
}

static const char *
held_text(store_held_t held)
{
    switch (held) {
    case STORE_HELD_YES:
        return "yes";
    case STORE_HELD_NO:
        return "no";
    case STORE_HELD_UNKNOWN:
    default:
        return "unknown";
    }
}

enum MHD_Result
reply_store_result(http_server_t *srv, struct MHD_Connection *c,
                   request_t *req, const char *what, store_rc_t rc,
                   bool is_delete, const skv_version_t *current,
                   const store_held_t *held, const char *err)
{
    struct MHD_Response *resp;
    char                 vtext[SKV_VERSION_TEXT_LEN + 1];
    unsigned             status;

    switch (rc) {
    case STORE_APPLIED:
    case STORE_UNCHANGED:
        status = rc == STORE_UNCHANGED ? MHD_HTTP_OK
                 : is_delete ? MHD_HTTP_NO_CONTENT : MHD_HTTP_CREATED;
        resp = reply_empty();
        if (rc == STORE_APPLIED) {
            held = NULL;
        }
        break;
    case STORE_CONFLICT:
        status = MHD_HTTP_CONFLICT;
        resp = error_body("conflict", "a newer version is stored");
        break;
    case STORE_NOT_FOUND:
        status = MHD_HTTP_NOT_FOUND;
        resp = error_body("not found", "no such key");
        current = NULL;
        held = NULL;
        break;
    case STORE_ERR_INVALID:
        return reply_error(srv, c, req, MHD_HTTP_BAD_REQUEST, "bad request",
                           err);
    case STORE_ERR_NOSPACE:
        http_log_error(srv, "%s of a %zu-byte key: %s", what, req->key_len,
                       err);
        return reply_error(srv, c, req, MHD_HTTP_INSUFFICIENT_STORAGE,
                           "insufficient storage", err);
    case STORE_ERR_CORRUPT:
    case STORE_ERR_DB:
    case STORE_OK:
    default:
        http_log_error(srv, "%s of a %zu-byte key: %s", what, req->key_len,
                       err);
        return reply_error(srv, c, req, MHD_HTTP_INTERNAL_SERVER_ERROR,
                           store_rc_name(rc), err);
    }
    if (resp != NULL && current != NULL) {
        skv_version_format(current, vtext);
        MHD_add_response_header(resp, HDR_VERSION, vtext);
    }
    if (resp != NULL && held != NULL) {
        MHD_add_response_header(resp, HDR_HELD, held_text(*held));
    }
    return reply_send(srv, c, req, status, resp);
}

enum MHD_Result
reply_store_error(http_server_t *srv, struct MHD_Connection *c,
                  request_t *req, const char *what, store_rc_t rc,
                  const char *err)
{
    http_log_error(srv, "%s: %s", what, err);
    if (rc == STORE_ERR_NOSPACE) {
        return reply_error(srv, c, req, MHD_HTTP_INSUFFICIENT_STORAGE,
                           "insufficient storage", err);
    }
    return reply_error(srv, c, req, MHD_HTTP_INTERNAL_SERVER_ERROR,
                       store_rc_name(rc), err);
}
