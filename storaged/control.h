/*
 * control.h - the endpoints of the membership tools (docs/membership.md):
 * /v1/epochs and /v1/repair-watermark (epochs.c) and /v1/lease (here).
 * None is behind the epoch fence; all need the token like every request.
 *
 * control_begin checks the method on the first call (and refuses a PUT
 * body declared over CONTROL_BODY_MAX); a PUT's JSON body arrives through
 * control_body; control_finish parses it and runs the request.
 */
#ifndef STORAGED_CONTROL_H
#define STORAGED_CONTROL_H

#include <microhttpd.h>

#include "server.h"

#define CONTROL_BODY_MAX 4096

enum MHD_Result control_begin(http_server_t *srv, struct MHD_Connection *c,
                              request_t *req, const char *method);
enum MHD_Result control_body(http_server_t *srv, request_t *req,
                             const char *data, size_t size);
enum MHD_Result control_finish(http_server_t *srv, struct MHD_Connection *c,
                               request_t *req);

#endif
