/*
 * kv.h - the /v1/kv/<key> handlers: GET/HEAD, PUT and DELETE (with
 * ?remove&if-version: drop this node's copy), behind the epoch fence.
 *
 * A kv request is validated once, on libmicrohttpd's first call, from its
 * request line and headers (kv_begin: method, key, version, content type,
 * declared length, digests); a PUT's body then arrives through kv_body
 * (stored as it comes when the value is large), and the request is
 * executed when it is complete (kv_finish).
 */
#ifndef STORAGED_KV_H
#define STORAGED_KV_H

#include <microhttpd.h>

#include "server.h"

/* First call: validate; refusals are answered here (before any body). */
enum MHD_Result kv_begin(http_server_t *srv, struct MHD_Connection *c,
                         request_t *req, const char *url,
                         const char *method);

/* Body bytes of a PUT that kv_begin accepted. */
enum MHD_Result kv_body(http_server_t *srv, request_t *req, const char *data,
                        size_t size);

/* The request is complete: execute it and answer. */
enum MHD_Result kv_finish(http_server_t *srv, struct MHD_Connection *c,
                          request_t *req);

/* A version more than --max-clock-skew ahead of this node's clock is
 * answered 400 ("version from the future"); otherwise nothing is sent.
 * Also used by PUT /v1/repair-watermark. */
enum MHD_Result kv_check_future(http_server_t *srv, struct MHD_Connection *c,
                                request_t *req, const skv_version_t *v);

#endif
