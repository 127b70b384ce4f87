/*
 * reply.h - how storaged answers: the JSON error body every failure
 * carries, the 405 with its Allow header, and the one mapping from a store
 * result to an HTTP status (reply_store_result).  Every response goes out
 * through reply_send(), which counts it by status for /v1/stats.
 */
#ifndef STORAGED_REPLY_H
#define STORAGED_REPLY_H

#include <jansson.h>
#include <microhttpd.h>

#include "server.h"

/* One line on stderr ("storaged: ..."), counted in the stats. */
void http_log_error(http_server_t *srv, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Queue resp (NULL: out of memory, logged; the connection is closed) and
 * release it; marks req answered (req may be NULL). */
enum MHD_Result reply_send(http_server_t *srv, struct MHD_Connection *c,
                           request_t *req, unsigned status,
                           struct MHD_Response *resp);

/* A response with no body; a JSON response (takes doc's reference). */
struct MHD_Response *reply_empty(void);
struct MHD_Response *reply_json(json_t *doc);

/* {"error": error, "detail": detail} with the given status. */
enum MHD_Result reply_error(http_server_t *srv, struct MHD_Connection *c,
                            request_t *req, unsigned status,
                            const char *error, const char *detail);

/* 405 with Allow: allow. */
enum MHD_Result reply_not_allowed(http_server_t *srv,
                                  struct MHD_Connection *c, request_t *req,
                                  const char *method, const char *allow);

/* A store result as an HTTP status, in one place.  is_delete selects 204
 * over 201 for an applied write; current (if not NULL) is sent as the
 * X-Simplekv-Version of success and conflict answers, and held (if not
 * NULL) as the X-Simplekv-Held of conflict and "already stored" answers. */
enum MHD_Result reply_store_result(http_server_t *srv,
                                   struct MHD_Connection *c, request_t *req,
                                   const char *what, store_rc_t rc,
                                   bool is_delete,
                                   const skv_version_t *current,
                                   const store_held_t *held,
                                   const char *err);

/* A failed store call that is not about one key: logged ("<what>: err"),
 * then 507 for STORE_ERR_NOSPACE, else 500. */
enum MHD_Result reply_store_error(http_server_t *srv,
                                  struct MHD_Connection *c, request_t *req,
                                  const char *what, store_rc_t rc,
                                  const char *err);

#endif
