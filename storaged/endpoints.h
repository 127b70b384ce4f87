/*
 * endpoints.h - the read-only endpoints besides keys: GET /v1/keys and
 * /v1/ns/<name>/keys (the listing of a namespace), /v1/namespaces (every
 * namespace this node holds, with its counters), /v1/health and
 * /v1/stats.
 */
#ifndef STORAGED_ENDPOINTS_H
#define STORAGED_ENDPOINTS_H

#include <microhttpd.h>

#include "server.h"

enum MHD_Result endpoint_keys(http_server_t *srv, struct MHD_Connection *c,
                              request_t *req);
enum MHD_Result endpoint_namespaces(http_server_t *srv,
                                    struct MHD_Connection *c,
                                    request_t *req);
enum MHD_Result endpoint_health(http_server_t *srv, struct MHD_Connection *c,
                                request_t *req);
enum MHD_Result endpoint_stats(http_server_t *srv, struct MHD_Connection *c,
                               request_t *req);

#endif
