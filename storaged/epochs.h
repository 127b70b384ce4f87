/*
 * epochs.h - the epoch fence over HTTP: the X-Simplekv-Epoch header of
 * kv requests and the 421 that refuses them, GET/PUT /v1/epochs and
 * GET/PUT /v1/repair-watermark (docs/protocol.md, "The epoch fence").
 */
#ifndef STORAGED_EPOCHS_H
#define STORAGED_EPOCHS_H

#include <jansson.h>
#include <microhttpd.h>

#include "server.h"

/* First call of a kv request: parse X-Simplekv-Epoch into req (absent:
 * has_epoch false); a malformed or repeated header is answered 400. */
enum MHD_Result epoch_header(http_server_t *srv, struct MHD_Connection *c,
                             request_t *req);

/* 421 for a kv request outside window. */
enum MHD_Result epoch_refused(http_server_t *srv, struct MHD_Connection *c,
                              request_t *req, const store_epochs_t *window);

/* The window as {"min": A, "max": B}, nulls when unset. */
json_t *epochs_json(const store_epochs_t *window);

enum MHD_Result epochs_get(http_server_t *srv, struct MHD_Connection *c,
                           request_t *req);
/* doc: the request's JSON body. */
enum MHD_Result epochs_put(http_server_t *srv, struct MHD_Connection *c,
                           request_t *req, json_t *doc);

enum MHD_Result repair_get(http_server_t *srv, struct MHD_Connection *c,
                           request_t *req);
enum MHD_Result repair_put(http_server_t *srv, struct MHD_Connection *c,
                           request_t *req, json_t *doc);

#endif
