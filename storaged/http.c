/*
 * http.c - storaged's HTTP daemon: start and stop, connection limits and
 * timeouts, and the dispatch of each request to its handler (kv.c,
 * endpoints.c); responses are built in reply.c.  See http.h and
 * docs/protocol.md.
 *
 * libmicrohttpd does all HTTP parsing; it runs a pool of threads, each with
 * its own epoll loop.  For each request MHD first hands over the raw URI
 * (uri_seen: the request state is allocated there), then calls
 * handle_request() several times:
 *   1st call   headers known: refusals that spare reading a body (shutting
 *              down, 401, ambiguous framing, and everything kv_begin and
 *              control_begin validate) answer here;
 *   next calls body chunks (upload_data): a kv PUT's go to kv_body, a
 *              control PUT's (JSON) to control_body, others are dropped,
 *              boundedly;
 *   last call  *upload_data_size == 0: execute and answer.
 * Answering on the first call a request that has a body makes MHD close
 * the connection after the answer (it cannot know where the next request
 * starts), which is right for a refusal and why execution waits.
 *
 * MHD would percent-decode the URL path itself, turning "%00" into a NUL
 * that ends the C string: unescape_nothing() keeps the text raw and the key
 * is decoded by skv_key_decode, which knows keys may hold any byte.
 *
 * Connections: a limit far above any router's keepalive pool (with the
 * open-files limit raised to match), an idle timeout between requests that
 * is longer than nginx's upstream keepalive_timeout (so routers close
 * first), and a short one for a connection until its first request has
 * been answered, so that idle or half-sent connections cannot pile up.
 * MHD 0.9.75 answers a malformed Content-Length itself, before any handler
 * runs (see docs/protocol.md).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>

#include "control.h"
#include "endpoints.h"
#include "kv.h"
#include "reply.h"

#define ALLOW_READ   "GET, HEAD"
/* Files besides connections: Berkeley DB, logs, epoll and ITC per thread,
 * the listening socket, stdio. */
#define FD_RESERVE   128
/* Each namespace keeps its three database files open (store_space.c):
 * asked for on top, when the hard limit allows, but not taken from the
 * connections when it does not. */
#define FD_SPACES    (3 * (rlim_t) STORE_SPACES_MAX)
#define MIN_CONNECTIONS 16

/* ---- routing and authentication ----------------------------------------- */

/* Keep the URL exactly as received; see the comment at the top. */
static size_t
unescape_nothing(void *cls, struct MHD_Connection *c, char *s)
{
    (void) cls;
    (void) c;
    return strlen(s);
}

/* Constant-time comparison, so a token cannot be guessed byte by byte
 * from response times: every accepted token is compared in full, whatever
 * matched before. */
static bool
authorized(http_server_t *srv, struct MHD_Connection *c)
{
    const char    *got;
    size_t         got_len, i;
    unsigned       t;
    unsigned char  diff;
    bool           ok;

    if (srv->n_auth == 0) {
        return true;
    }
    got = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                      MHD_HTTP_HEADER_AUTHORIZATION);
    if (got == NULL) {
        return false;
    }
    got_len = strlen(got);
    ok = false;
    for (t = 0; t < srv->n_auth; t++) {
        diff = got_len != srv->auth_len[t];
        for (i = 0; i < srv->auth_len[t]; i++) {
            diff |= (unsigned char) (srv->auth_expected[t][i]
                                     ^ (i < got_len ? got[i] : 0));
        }
        ok |= diff == 0;
    }
    return ok;
}

/* ---- framing headers ---------------------------------------------------- */

typedef struct {
    unsigned    content_length;
    unsigned    transfer_encoding;
    bool        te_chunked;       /* the (only) Transfer-Encoding is chunked */
    unsigned    version;
    unsigned    epoch;
} header_counts_t;

static enum MHD_Result
count_header(void *cls, enum MHD_ValueKind kind, const char *key,
             const char *value)
{
    header_counts_t *n = cls;

    (void) kind;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        n->content_length++;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        n->transfer_encoding++;
        n->te_chunked = value != NULL && strcasecmp(value, "chunked") == 0;
    } else if (strcasecmp(key, HDR_VERSION) == 0) {
        n->version++;
    } else if (strcasecmp(key, HDR_EPOCH) == 0) {
        n->epoch++;
    }
    return MHD_YES;
}

/*
 * Refuse a request whose body length is ambiguous: MHD takes the first of
 * several Content-Lengths and ignores Content-Length when a
 * Transfer-Encoding is present, so such a request could be read
 * differently by a proxy in front.  NULL when the framing is clear.
 */
static const char *
framing_problem(struct MHD_Connection *c, request_t *req)
{
    header_counts_t n;

    memset(&n, 0, sizeof(n));
    MHD_get_connection_values(c, MHD_HEADER_KIND, count_header, &n);
    req->version_headers = n.version;
    req->epoch_headers = n.epoch;
    if (n.content_length > 1) {
        return "more than one Content-Length header";
    }
    if (n.content_length > 0 && n.transfer_encoding > 0) {
        return "Content-Length together with Transfer-Encoding";
    }
    if (n.transfer_encoding > 1 || (n.transfer_encoding == 1
                                    && !n.te_chunked))
    {
        return "the only Transfer-Encoding accepted is one 'chunked'";
    }
    return NULL;
}

/* ---- dispatch ----------------------------------------------------------- */

static bool
is_read_method(const char *method)
{
    return strcmp(method, MHD_HTTP_METHOD_GET) == 0
           || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
}

/* The first call: headers are known, no body byte has been read. */
static enum MHD_Result
first_call(http_server_t *srv, struct MHD_Connection *c, request_t *req,
           const char *url, const char *method)
{
    const char *problem;

    if (atomic_load(&srv->stopping)) {
        return reply_error(srv, c, req, MHD_HTTP_SERVICE_UNAVAILABLE,
                           "shutting down", "storaged is stopping");
    }
    if (!authorized(srv, c)) {
        return reply_error(srv, c, req, MHD_HTTP_UNAUTHORIZED,
                           "unauthorized",
                           "a valid 'Authorization: Bearer <token>' header "
                           "is required");
    }
    problem = framing_problem(c, req);
    if (problem != NULL) {
        return reply_error(srv, c, req, MHD_HTTP_BAD_REQUEST,
                           "bad request", problem);
    }
    req->route = parse_route(url, req->space, &req->space_len,
                             &req->key_offset);
    req->head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    switch (req->route) {
    case ROUTE_KV:
        return kv_begin(srv, c, req, url, method);
    case ROUTE_EPOCHS:
    case ROUTE_REPAIR:
    case ROUTE_LEASE:
        return control_begin(srv, c, req, method);
    case ROUTE_KEYS:
    case ROUTE_NAMESPACES:
    case ROUTE_HEALTH:
    case ROUTE_STATS:
        if (!is_read_method(method)) {
            return reply_not_allowed(srv, c, req, method, ALLOW_READ);
        }
        return MHD_YES;
    case ROUTE_BAD_NAMESPACE:
        return reply_error(srv, c, req, MHD_HTTP_BAD_REQUEST,
                           "bad namespace", STORE_SPACE_NAME_RULE);
    case ROUTE_UNKNOWN:
    default:
        return reply_error(srv, c, req, MHD_HTTP_NOT_FOUND, "not found",
                           "no such endpoint; see docs/protocol.md");
    }
}

/* The request is complete (and was not refused): execute and answer. */
static enum MHD_Result
last_call(http_server_t *srv, struct MHD_Connection *c, request_t *req)
{
    switch (req->route) {
    case ROUTE_KV:
        return kv_finish(srv, c, req);
    case ROUTE_EPOCHS:
    case ROUTE_REPAIR:
    case ROUTE_LEASE:
        return control_finish(srv, c, req);
    case ROUTE_KEYS:
        return endpoint_keys(srv, c, req);
    case ROUTE_NAMESPACES:
        return endpoint_namespaces(srv, c, req);
    case ROUTE_HEALTH:
        return endpoint_health(srv, c, req);
    case ROUTE_STATS:
    default:
        return endpoint_stats(srv, c, req);
    }
}

/* The request line and headers are complete: the connection's first
 * request is no longer under headguard's deadline (headguard.h). */
static void
headguard_mark(http_server_t *srv, struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *info;

    if (srv->guard == NULL) {
        return;
    }
    info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (info != NULL) {
        headguard_done(info->socket_context);
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
    size_t         size;

    (void) version;
    if (req == NULL) {
        return MHD_NO;          /* uri_seen ran out of memory */
    }
    if (!req->started) {
        req->started = true;
        headguard_mark(srv, c);
        return first_call(srv, c, req, url, method);
    }
    if (*upload_data_size > 0) {
        size = *upload_data_size;
        *upload_data_size = 0;
        if (req->answered) {
            return MHD_YES;     /* already refused: MHD discards the rest */
        }
        if (req->control_put) {
            return control_body(srv, req, upload_data, size);
        }
        if (req->route != ROUTE_KV || req->op != KV_PUT) {
            /* Only a PUT has a use for a body: drop others, boundedly. */
            req->discarded += size;
            return req->discarded > DISCARD_MIN ? MHD_NO : MHD_YES;
        }
        return kv_body(srv, req, upload_data, size);
    }
    if (req->answered) {
        return MHD_YES;
    }
    return last_call(srv, c, req);
}

/*
 * Called by MHD once per request with the raw request URI, before any
 * parsing: allocates the request state, and keeps the raw query (see
 * query.h) of a listing, a removal or a lease release.
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
        http_log_error(srv, "out of memory for a request");
        return NULL;
    }
    q = strchr(uri, '?');
    if (q != NULL) {
        req->query = strdup(q + 1);
        if (req->query == NULL) {
            free(req);
            http_log_error(srv, "out of memory for a request");
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
    http_server_t              *srv = cls;
    request_t                  *req = *con_cls;
    const union MHD_ConnectionInfo *info;

    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        /* The connection has served a request: from now on it gets the
         * idle timeout (see connection_event). */
        info = MHD_get_connection_info(c,
                                       MHD_CONNECTION_INFO_CONNECTION_TIMEOUT);
        if (info != NULL
            && info->connection_timeout != srv->cfg->idle_timeout_s)
        {
            MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT,
                                      srv->cfg->idle_timeout_s);
        }
    }
    if (req != NULL) {
        store_upload_end(srv->store, req->upload);
        free(req->body);
        free(req->query);
        free(req);
        *con_cls = NULL;
        atomic_fetch_sub(&srv->inflight, 1);
    }
}

/* A new connection gets the short timeout until its first request has
 * been answered (request_completed switches it to the idle timeout), and
 * a deadline for its first request's headers (headguard.h). */
static void
connection_event(void *cls, struct MHD_Connection *c, void **socket_context,
                 enum MHD_ConnectionNotificationCode code)
{
    http_server_t                  *srv = cls;
    const union MHD_ConnectionInfo *info;

    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        if (srv->guard != NULL) {
            headguard_close(srv->guard, *socket_context);
            *socket_context = NULL;
        }
        return;
    }
    if (code != MHD_CONNECTION_NOTIFY_STARTED) {
        return;
    }
    if (srv->guard != NULL) {
        info = MHD_get_connection_info(c,
                                       MHD_CONNECTION_INFO_CONNECTION_FD);
        if (info != NULL) {
            *socket_context = headguard_open(srv->guard, info->connect_fd);
        }
    }
    if (srv->cfg->first_request_timeout_s != srv->cfg->idle_timeout_s) {
        MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT,
                                  srv->cfg->first_request_timeout_s);
    }
}

/* ---- start and stop ----------------------------------------------------- */

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];

    (void) cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    fprintf(stderr, "storaged: http: %s\n", line);
}

/*
 * Raise the open-files limit to what --max-connections needs (and the
 * namespaces' files), up to the hard limit; with a hard limit too low for
 * the connections, serve fewer and say so.
 * Returns the connection limit to use.
 */
static unsigned
fit_fd_limit(unsigned wanted)
{
    struct rlimit rl;
    rlim_t        need = (rlim_t) wanted + FD_RESERVE;
    rlim_t        ask = need + FD_SPACES;
    unsigned      fit;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return wanted;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < ask) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= ask
                      ? ask : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            getrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need) {
        return wanted;
    }
    fit = rl.rlim_cur > FD_RESERVE + MIN_CONNECTIONS
          ? (unsigned) (rl.rlim_cur - FD_RESERVE) : MIN_CONNECTIONS;
    fprintf(stderr, "storaged: warning: the open-files limit (RLIMIT_NOFILE, "
                    "hard limit %llu) is too low for --max-connections %u; "
                    "serving at most %u connections.  Raise the hard limit "
                    "(ulimit -Hn, systemd LimitNOFILE=)\n",
            (unsigned long long) rl.rlim_max, wanted, fit);
    return fit;
}

/* Once http_stop began, a new connection is closed as soon as it is
 * accepted; the ones already open drain. */
static enum MHD_Result
accept_unless_stopping(void *cls, const struct sockaddr *addr,
                       socklen_t addrlen)
{
    http_server_t *srv = cls;

    (void) addr;
    (void) addrlen;
    return atomic_load(&srv->stopping) ? MHD_NO : MHD_YES;
}

static struct MHD_Daemon *
start_mhd(http_server_t *srv)
{
    const storaged_config_t *cfg = srv->cfg;
    unsigned int             flags;

    flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC
            | MHD_USE_ERROR_LOG;
    if (cfg->listen_addr.ss_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    return MHD_start_daemon(
        flags, 0, accept_unless_stopping, srv, handle_request, srv,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (const struct sockaddr *) &cfg->listen_addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int) cfg->threads,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape_nothing, NULL,
        MHD_OPTION_URI_LOG_CALLBACK, uri_seen, srv,
        MHD_OPTION_NOTIFY_COMPLETED, request_completed, srv,
        MHD_OPTION_NOTIFY_CONNECTION, connection_event, srv,
        MHD_OPTION_CONNECTION_LIMIT, srv->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, cfg->idle_timeout_s,
        /* Per-connection pool, zeroed on every request: 32 KiB holds the
         * longest request line and headers (a 1024-byte key is at most
         * 3072 encoded) and stays below glibc's mmap threshold, where a
         * larger pool costs an mmap/munmap pair per request. */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) 32 * 1024,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int) 4096,
        MHD_OPTION_END);
}

static void
free_auth(http_server_t *srv)
{
    unsigned t;

    for (t = 0; t < srv->n_auth; t++) {
        free(srv->auth_expected[t]);
    }
    srv->n_auth = 0;
}

http_server_t *
http_start(const storaged_config_t *cfg, store_t *st, stats_t *stats)
{
    http_server_t *srv;
    unsigned       t;

    srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        fprintf(stderr, "storaged: out of memory\n");
        return NULL;
    }
    srv->cfg = cfg;
    srv->store = st;
    srv->stats = stats;
    for (t = 0; t < cfg->n_tokens; t++) {
        srv->auth_len[t] = strlen("Bearer ") + cfg->token_lens[t];
        srv->auth_expected[t] = malloc(srv->auth_len[t] + 1);
        if (srv->auth_expected[t] == NULL) {
            free_auth(srv);
            free(srv);
            return NULL;
        }
        snprintf(srv->auth_expected[t], srv->auth_len[t] + 1, "Bearer %s",
                 cfg->tokens[t]);
        srv->n_auth = t + 1;
    }
    /* MHD splits the limit between its threads. */
    srv->max_connections = fit_fd_limit(cfg->max_connections);
    if (srv->max_connections < cfg->threads) {
        srv->max_connections = cfg->threads;
    }
    lease_init(&srv->lease);
    if (cfg->first_request_timeout_s > 0) {
        srv->guard = headguard_start(cfg->first_request_timeout_s * 1000);
        if (srv->guard == NULL) {
            lease_destroy(&srv->lease);
            free_auth(srv);
            free(srv);
            return NULL;
        }
    }
    srv->mhd = start_mhd(srv);
    if (srv->mhd == NULL) {
        fprintf(stderr, "storaged: cannot listen on %s: %s\n",
                cfg->listen_text,
                errno != 0 ? strerror(errno) : "libmicrohttpd failed");
        headguard_stop(srv->guard);
        lease_destroy(&srv->lease);
        free_auth(srv);
        free(srv);
        return NULL;
    }
    return srv;
}

void
http_stop(http_server_t *srv, unsigned drain_ms)
{
    struct timespec ts = {0, 10 * 1000000L};
    unsigned        waited = 0;

    if (srv == NULL) {
        return;
    }
    /* No MHD_quiesce_daemon(): with epoll worker threads it races with
     * their own removal of the listening socket from their epoll sets,
     * and libmicrohttpd (0.9.75) aborts when it loses ("Failed to remove
     * listen FD from epoll set"; seen in the test suites under load).
     * The accept policy closes new connections instead, and
     * MHD_stop_daemon closes the listening socket. */
    atomic_store(&srv->stopping, true);
    while (atomic_load(&srv->inflight) > 0 && waited < drain_ms) {
        nanosleep(&ts, NULL);
        waited += 10;
    }
    MHD_stop_daemon(srv->mhd);
    /* after the daemon: its connections' "closed" notifications use it */
    headguard_stop(srv->guard);
    lease_destroy(&srv->lease);
    free_auth(srv);
    free(srv);
}
