/*
 * http.h - storaged's HTTP front end (libmicrohttpd), protocol /v1.
 *
 * Parses requests into calls on the store (store.h) and maps their results
 * to HTTP statuses in one place.  The protocol is described in
 * docs/protocol.md.
 */
#ifndef STORAGED_HTTP_H
#define STORAGED_HTTP_H

#include "config.h"
#include "stats.h"
#include "store.h"

typedef struct http_server http_server_t;

/* Bind and start serving; NULL with a message on stderr on failure. */
http_server_t *http_start(const storaged_config_t *cfg, store_t *st,
                          stats_t *stats);

/*
 * Graceful stop: stop accepting connections, answer 503 (Connection:
 * close) to requests that arrive on open connections, wait up to drain_ms
 * for the requests in flight to complete, then stop the worker threads and
 * close the listening socket.
 */
void http_stop(http_server_t *srv, unsigned drain_ms);

#endif
