/*
 * ngx_http_simplekv_module.h - types shared by the files of the simplekv
 * router module.
 *
 * One concern per file; calls go one way (docs/router.md has the diagram):
 *
 *   module.c    module definition: directives, init
 *   conf.c      configuration: create/merge, directive parsers, checks at
 *               `nginx -t`
 *   nodes.c     the node set, its placement, upstreams and token
 *   handler.c   a client request: method, key, body, the first round
 *   decide.c    on every wake-up: asks the quorum decisions
 *               (core/skv_quorum.c) what to do and does it: answer, retry,
 *               repair, read again, fail
 *   key.c       the key (or listing prefix) and query arguments of a request
 *   namespace.c the namespace of each simplekv location: its storaged
 *               paths, and the `nginx -t` rules that keep namespaces apart
 *   body.c      the request body filter: the hard cap on a PUT's value
 *   list.c      GET /<prefix>?list: merging the nodes' listings into a page
 *   reply.c     what the client receives: values, ETags, JSON errors, the
 *               error pages for requests nginx itself refused
 *   range.c     a GET's Range and If-Range, decided against a value's
 *               length and ETag
 *   stream.c    a large value sent to the client from one replica that
 *               holds the decided version (a streaming subrequest), and
 *               continued from another if it breaks off mid-body
 *   spool.c     a large value read from a holder into a temporary file,
 *               for its read repair and the answer
 *   fanout.c    rounds of replica requests: whom to ask, recording their
 *               outcomes, waking the parent, the round's deadline
 *   detach.c    after the answer, stragglers let go of the client's
 *               connection: their node connections go to orphan readers
 *   replica.c   one replica request (a subrequest) and its header filter
 *   upstream.c  the replica location's handler: the request to storaged
 *               and its answer over nginx's upstream machinery
 *   outcome.c   what one replica's answer means (a skv_reply_t)
 *   breaker.c   the circuit breaker for slow or frozen nodes
 *   probe.c     the router's own health probe of suspect nodes (a timer)
 *   contention.c  which writes query versions first (contended keys)
 *   epoch.c     the configuration's epoch and the live worker generations
 *   clock.c     the version clock shared by all workers
 *   shm.c       the shared memory zone: fixed layout, valid across reloads
 *   stats.c     counters
 *   status.c    the status (JSON) and metrics (Prometheus) locations
 *   dashboard.c the status page (HTML + JS polling status.c's JSON)
 */

#ifndef _NGX_HTTP_SIMPLEKV_MODULE_H_INCLUDED_
#define _NGX_HTTP_SIMPLEKV_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "skv_key.h"
#include "skv_placement.h"
#include "skv_quorum.h"
#include "skv_quorum_sets.h"
#include "skv_record.h"
#include "skv_version.h"


/* The internal location of conf/simplekv_proxy.conf
 * (simplekv_replica_location); every replica subrequest goes there. */
#define NGX_HTTP_SIMPLEKV_PROXY_URI      "/_simplekv/replica"
#define NGX_HTTP_SIMPLEKV_RESERVED       "/_simplekv/"

#define NGX_HTTP_SIMPLEKV_STORAGE_PREFIX "/v1/kv/"
#define NGX_HTTP_SIMPLEKV_LIST_PATH      "/v1/keys"

/* The namespace of a location that names none: today's keys. */
#define NGX_HTTP_SIMPLEKV_NS_DEFAULT     "default"
#define NGX_HTTP_SIMPLEKV_NS_NAME_MAX    64

/* Attempts of one client write: a write that met newer versions and can
 * never have been read is tried again with a newer version. */
#define NGX_HTTP_SIMPLEKV_WRITE_TRIES    6
/* Read rounds (first read + re-reads after a repair lost to a newer
 * concurrent write). */
#define NGX_HTTP_SIMPLEKV_READ_TRIES     3

#define NGX_HTTP_SIMPLEKV_DEFAULT_CTYPE  "application/octet-stream"

/* simplekv_max_value_size and storaged's --max-value-size: 1 GiB */
#define NGX_HTTP_SIMPLEKV_MAX_VALUE      (1024 * 1024 * 1024)
/* simplekv_stream_threshold: replica answers larger than this are taken
 * as metadata only, and the value is streamed (stream.c, spool.c) */
/* storaged's chunk size: a value above it is stored in chunks, and is
 * faster streamed from one replica than read whole from a quorum
 * (docs/benchmarks.md, "Where the time goes", point 8) */
#define NGX_HTTP_SIMPLEKV_STREAM_THRESHOLD (256 * 1024)

/* Replicas one request may ask: in a transition, the old owners and the
 * new owners of a key (docs/membership.md). */
#define NGX_HTTP_SIMPLEKV_ASKED_MAX      (2 * SKV_PLACE_MAX)

/* Circuit breaker: a node that timed out is skipped for this long after
 * its last timeout, but for one probe request per interval. */
#define NGX_HTTP_SIMPLEKV_SUSPECT_MS     5000
#define NGX_HTTP_SIMPLEKV_PROBE_MS       200
/* The router's own probe of a suspect node (probe.c) waits this long. */
#define NGX_HTTP_SIMPLEKV_PROBE_TIMEOUT_MS 1000
/* A key that met another router's newer version is "contended" for this
 * long: its writes query the replicas' versions first. */
#define NGX_HTTP_SIMPLEKV_CONTENDED_MS   10000
/* After the answer, a request to a suspect node may hold the client's
 * connection this long at most. */
#define NGX_HTTP_SIMPLEKV_PROBE_GRACE_MS 10
/* A node with this many detached requests of one worker unanswered is
 * suspect at once, before the first of them times out (detach.c). */
#define NGX_HTTP_SIMPLEKV_ORPHANS_SUSPECT 16
/* simplekv_read_hedge's default: a quorum read whose first replicas have
 * not settled it by then asks the others too (a replica that froze before
 * the breaker knew costs a read this, not simplekv_replica_timeout). */
#define NGX_HTTP_SIMPLEKV_READ_HEDGE_MS  20

/* ngx_http_simplekv_breaker_check() */
#define NGX_HTTP_SIMPLEKV_ASK            0
#define NGX_HTTP_SIMPLEKV_SKIP           1
#define NGX_HTTP_SIMPLEKV_PROBE          2

/* simplekv_read_fanout: whom a read asks first */
#define NGX_HTTP_SIMPLEKV_FANOUT_ALL     1  /* every replica */
#define NGX_HTTP_SIMPLEKV_FANOUT_QUORUM  2  /* max(R, W) of them, then all */


typedef enum {
    NGX_HTTP_SIMPLEKV_OP_GET = 0,
    NGX_HTTP_SIMPLEKV_OP_PUT,
    NGX_HTTP_SIMPLEKV_OP_DELETE,
    NGX_HTTP_SIMPLEKV_OP_LIST,
    NGX_HTTP_SIMPLEKV_OP_HEAD,     /* a write's version query */
    NGX_HTTP_SIMPLEKV_OP_STREAM    /* replica_start(): stream.c's GET,
                                      a GET in the replica's ctx */
} ngx_http_simplekv_op_e;


typedef enum {
    NGX_HTTP_SIMPLEKV_PHASE_WRITE = 0,
    NGX_HTTP_SIMPLEKV_PHASE_READ,
    NGX_HTTP_SIMPLEKV_PHASE_REPAIR,
    NGX_HTTP_SIMPLEKV_PHASE_LIST,
    NGX_HTTP_SIMPLEKV_PHASE_QUERY,  /* versions before a write (ABD) */
    NGX_HTTP_SIMPLEKV_PHASE_SPOOL   /* a large value into a temp file,
                                       before its repair (spool.c) */
} ngx_http_simplekv_phase_e;


/* A node's counters and circuit breaker in the shared zone (shm.c). */
typedef struct ngx_http_simplekv_shm_node_s  ngx_http_simplekv_shm_node_t;


typedef struct {
    ngx_str_t                       name;
    ngx_str_t                       upstream;
    ngx_str_t                       address;    /* its first server */
    ngx_uint_t                      weight;
    ngx_uint_t                      previous_weight; /* = weight outside a
                                                        transition */
    /* its upstream{} block, found at postconfiguration */
    ngx_http_upstream_srv_conf_t   *uscf;
    /* this configuration's slot in the shared zone, NULL without one */
    ngx_http_simplekv_shm_node_t   *shm;
    /* this worker's detached requests to the node still unanswered
     * (detach.c) */
    ngx_uint_t                      orphans;
} ngx_http_simplekv_node_t;


typedef struct {
    ngx_array_t                     nodes;      /* ngx_http_simplekv_node_t */
    skv_node_t                     *placement;  /* same order as nodes */
    skv_node_t                     *previous;   /* previous weights */
    ngx_uint_t                      weighted;   /* nodes with a weight */
    ngx_uint_t                      previously_weighted;
    ngx_uint_t                      epoch;      /* simplekv_epoch */
    ngx_str_t                       epoch_text;
    ngx_flag_t                      transition; /* previous_weight given */
    ngx_str_t                       authorization; /* "Bearer <token>" */
    ngx_msec_t                      max_clock_skew;
    ngx_shm_zone_t                 *shm_zone;
    ngx_array_t                     locations;  /* ngx_http_simplekv_site_t */
    ngx_array_t                     replica_locations; /* same type */
    ngx_array_t                     namespaces; /* ..._namespace_t */
} ngx_http_simplekv_main_conf_t;


typedef struct ngx_http_simplekv_shm_ns_s  ngx_http_simplekv_shm_ns_t;

/* A namespace of this configuration and the quorums all its locations
 * share (namespace.c). */
typedef struct {
    ngx_str_t                       name;
    ngx_uint_t                      replicas;
    ngx_uint_t                      write_quorum;
    ngx_uint_t                      read_quorum;
    ngx_http_core_loc_conf_t       *first;      /* its first location */
    /* its counters in the shared zone, NULL without a slot */
    ngx_http_simplekv_shm_ns_t     *shm;
} ngx_http_simplekv_namespace_t;


typedef struct {
    ngx_flag_t                      enable;
    ngx_uint_t                      replicas;
    ngx_uint_t                      write_quorum;
    ngx_uint_t                      read_quorum;
    off_t                           max_value_size;
    size_t                          stream_threshold;
    ngx_msec_t                      replica_timeout;
    ngx_msec_t                      straggler_grace;
    ngx_uint_t                      read_fanout;
    ngx_msec_t                      read_hedge;     /* 0: off */

    /* simplekv_namespace; empty when neither this level nor an enclosing
     * one names one (then the location is in "default", implicitly) */
    ngx_str_t                       ns_name;
    ngx_str_t                       ns_kv_prefix;   /* /v1/ns/<name>/kv/ */
    ngx_str_t                       ns_list_path;   /* /v1/ns/<name>/keys */
    uint64_t                        ns_seed;        /* keys' hash seed */
    ngx_http_simplekv_namespace_t  *ns;             /* at postconfiguration */
    void                           *dashboard;  /* simplekv_dashboard */

    /* the replica location (upstream.c): nginx's upstream settings, one
     * copy per node (mcf->nodes order), each naming that node's upstream
     * block; built at postconfiguration */
    ngx_flag_t                      replica_location;
    ngx_msec_t                      storage_connect_timeout;
    ngx_msec_t                      storage_send_timeout;
    ngx_msec_t                      storage_read_timeout;
    size_t                          storage_buffer_size;
    ngx_http_upstream_conf_t       *upstreams;
} ngx_http_simplekv_loc_conf_t;


/* A simplekv or replica location, for the checks at postconfiguration. */
typedef struct {
    ngx_http_core_srv_conf_t       *server;
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_simplekv_loc_conf_t   *lcf;
} ngx_http_simplekv_site_t;


typedef struct ngx_http_simplekv_ctx_s  ngx_http_simplekv_ctx_t;


/* One subrequest to one replica; it is also the subrequest's module ctx,
 * read by the replica location's handler (upstream.c). */
typedef struct {
    ngx_http_simplekv_ctx_t        *ctx;
    ngx_http_request_t             *request;
    ngx_uint_t                      slot;       /* index into ctx->order */
    ngx_uint_t                      node;       /* index into mcf->nodes */
    ngx_uint_t                      round;      /* 0: after the answer */
    ngx_uint_t                      op;
    ngx_str_t                       version_text;
    ngx_str_t                       content_type;
    ngx_msec_t                      start;

    /* upstream.c: parsing storaged's answer */
    ngx_http_status_t               status;
    ngx_http_chunked_t              chunked;

    skv_reply_t                     reply;
    ngx_str_t                       body;
    ngx_str_t                       body_type;
    ngx_str_t                       digest;     /* its Repr-Digest */
    off_t                           length;     /* the value's length */
    off_t                           received;   /* body bytes read */
    off_t                           progress;   /* at the last deadline */
    /* stream.c: where in the client's body this answer starts, and the
     * bytes of it passed on to the client (replica.c's body filter) */
    off_t                           offset;
    off_t                           sent;
    /* a PUT refused before its body was read (upstream.c) */
    ngx_uint_t                      early_status;

    /* a GET pinned to one version (stream.c, spool.c): sent as
     * X-Simplekv-If-Version, and the byte range asked for, if any */
    ngx_str_t                       if_version;
    ngx_str_t                       range;

    unsigned                        done:1;
    unsigned                        aborted:1;
    unsigned                        probe:1;    /* to a suspect node */
    unsigned                        large:1;    /* over simplekv_stream_
                                                   threshold: metadata only */
    unsigned                        stream:1;   /* stream.c's subrequest */
    unsigned                        spool:1;    /* spool.c's subrequest */
    unsigned                        repair:1;   /* writes ctx->newest back */
    unsigned                        relayed:1;  /* stream: its body is
                                                   the client's */
    unsigned                        resume:1;   /* stream: continues a
                                                   body cut short */
    unsigned                        gone:1;     /* stream: the client
                                                   left */
    unsigned                        late_seen:1; /* late repair considered */
    unsigned                        has_length:1; /* a Content-Length came */
} ngx_http_simplekv_replica_t;


typedef void (*ngx_http_simplekv_wake_pt)(ngx_http_simplekv_ctx_t *ctx);


#define ngx_http_simplekv_replica_node(rep)                                  \
    (&((ngx_http_simplekv_node_t *) (rep)->ctx->mcf->nodes.elts)[(rep)->node])


struct ngx_http_simplekv_ctx_s {
    ngx_http_request_t             *request;
    ngx_http_simplekv_main_conf_t  *mcf;
    ngx_http_simplekv_loc_conf_t   *lcf;
    ngx_uint_t                      op;

    u_char                         *key;
    size_t                          key_len;
    ngx_str_t                       storage_uri;  /* /v1/kv/<canonical>,
                                                     or /v1/keys?... */

    size_t                          order[NGX_HTTP_SIMPLEKV_ASKED_MAX];
    /* SKV_SET_NEW and/or SKV_SET_OLD: is order[i] a new or old owner */
    u_char                          member[NGX_HTTP_SIMPLEKV_ASKED_MAX];
    skv_sets_t                      sets;
    ngx_uint_t                      nreplicas;

    /* what a write sends: the client's body or the value being repaired */
    ngx_chain_t                    *body;
    off_t                           body_len;
    off_t                           received;   /* body bytes read so far */
    ngx_str_t                       content_type;
    /* the client's Content-Digest and Repr-Digest, sent to every replica */
    ngx_str_t                       content_digest;
    ngx_str_t                       repr_digest;
    skv_version_t                   version;

    ngx_http_simplekv_phase_e       phase;
    ngx_uint_t                      round;
    ngx_uint_t                      write_tries;
    ngx_uint_t                      read_tries;

    /* the current round: one slot per placed replica, NULL if not asked */
    ngx_http_simplekv_replica_t    *slot[NGX_HTTP_SIMPLEKV_ASKED_MAX];
    /* replicas the read fan-out held back this round (fanout.c) */
    u_char                          held[NGX_HTTP_SIMPLEKV_ASKED_MAX];

    /* every subrequest ever started, to bound stragglers */
    ngx_array_t                     all;
    ngx_uint_t                      running;

    /* read results kept across the repair round */
    ngx_http_simplekv_replica_t    *newest;
    ngx_uint_t                      holders;
    unsigned                        holds[NGX_HTTP_SIMPLEKV_ASKED_MAX];
    size_t                          prior[2];   /* holders per set */

    /* handler.c's decisions: the parent's wake-up (a posted request)
     * before the answer, and a posted event after it (late repair) */
    ngx_http_simplekv_wake_pt       decide;
    ngx_http_simplekv_wake_pt       late;
    ngx_event_t                     late_event;

    ngx_event_t                     deadline;
    /* a quorum read still undecided after simplekv_read_hedge asks the
     * replicas it held back (fanout.c) */
    ngx_event_t                     hedge;

    /* a large value: the temp file it was read into (spool.c), the
     * holders already tried for it (stream.c, spool.c: bits of slots),
     * the range the client asked for (range.c) */
    ngx_temp_file_t                *spool;
    ngx_http_simplekv_replica_t    *stream;     /* stream.c's subrequest */
    off_t                           streamed;   /* bytes of the client's
                                                   body its ended stream
                                                   subrequests passed on */
    ngx_uint_t                      tried;
    off_t                           range_start;
    off_t                           range_end;  /* inclusive */
    ngx_event_t                     detach;     /* detach.c */

    /* listing: a page of at most list_limit live keys after list_after */
    ngx_uint_t                      list_limit;
    ngx_uint_t                      list_node_limit;
    u_char                         *list_after;   /* decoded */
    size_t                          list_after_len;

    unsigned                        answered:1;
    unsigned                        posted:1;
    unsigned                        late_posted:1;
    unsigned                        expired:1;
    unsigned                        too_large:1;
    unsigned                        skipped:1;   /* this round left out a
                                                    suspect node */
    unsigned                        suspect_skipped:1; /* ... left out a
                                                    node the breaker
                                                    suspects */
    unsigned                        held_back:1; /* the read fan-out left
                                                    healthy replicas out */
    unsigned                        no_skip:1;   /* ask every node */
    unsigned                        query:1;     /* query versions before
                                                    the next write round */
    unsigned                        versions_known:1; /* this write round's
                                                    version is above a
                                                    query quorum's */
    unsigned                        ranged:1;    /* range_start/_end hold */
    unsigned                        spooled:1;   /* ctx->spool holds the
                                                    newest value whole */
    unsigned                        streaming:1; /* stream.c's subrequest
                                                    runs, before its answer
                                                    (no round wakes us) */
    unsigned                        bulk:1;      /* this round moves a large
                                                    value: its deadline
                                                    waits while bytes flow */
};


extern ngx_module_t  ngx_http_simplekv_module;


/* ngx_http_simplekv_conf.c */
void *ngx_http_simplekv_create_main_conf(ngx_conf_t *cf);
char *ngx_http_simplekv_init_main_conf(ngx_conf_t *cf, void *conf);
void *ngx_http_simplekv_create_loc_conf(ngx_conf_t *cf);
char *ngx_http_simplekv_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);

/* ngx_http_simplekv_nodes.c */
char *ngx_http_simplekv_node(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_simplekv_token_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_simplekv_build_placement(ngx_conf_t *cf,
    ngx_http_simplekv_main_conf_t *mcf);
ngx_int_t ngx_http_simplekv_check_upstreams(ngx_conf_t *cf,
    ngx_http_simplekv_main_conf_t *mcf);

/* ngx_http_simplekv_conf.c (continued) */
char *ngx_http_simplekv(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_simplekv_replica_location(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_simplekv_error_location(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_simplekv_check_conf(ngx_conf_t *cf);

/* ngx_http_simplekv_handler.c */
ngx_int_t ngx_http_simplekv_handler(ngx_http_request_t *r);

/* ngx_http_simplekv_decide.c */
ngx_int_t ngx_http_simplekv_start_write(ngx_http_simplekv_ctx_t *ctx);
ngx_int_t ngx_http_simplekv_start_read(ngx_http_simplekv_ctx_t *ctx);
void ngx_http_simplekv_decide(ngx_http_simplekv_ctx_t *ctx);
void ngx_http_simplekv_decide_late(ngx_http_simplekv_ctx_t *ctx);
void ngx_http_simplekv_finish(ngx_http_simplekv_ctx_t *ctx,
    ngx_uint_t status, const char *error, ngx_str_t *detail);

/* ngx_http_simplekv_key.c */
ngx_int_t ngx_http_simplekv_arg(ngx_str_t *args, const char *name,
    ngx_str_t *value, ngx_uint_t *count);
ngx_int_t ngx_http_simplekv_is_list(ngx_http_request_t *r);
ngx_int_t ngx_http_simplekv_path_key(ngx_http_request_t *r, ngx_str_t *raw);
ngx_int_t ngx_http_simplekv_parse_key(ngx_http_simplekv_ctx_t *ctx,
    ngx_uint_t *status, const char **error, ngx_str_t *detail);

/* ngx_http_simplekv_namespace.c */
char *ngx_http_simplekv_namespace(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_simplekv_merge_namespace(ngx_conf_t *cf,
    ngx_http_simplekv_loc_conf_t *prev, ngx_http_simplekv_loc_conf_t *conf);
ngx_int_t ngx_http_simplekv_check_namespaces(ngx_conf_t *cf,
    ngx_http_simplekv_main_conf_t *mcf);

/* ngx_http_simplekv_body.c */
ngx_int_t ngx_http_simplekv_init_body_filter(void);

/* ngx_http_simplekv_list.c */
ngx_int_t ngx_http_simplekv_list_parse(ngx_http_simplekv_ctx_t *ctx,
    ngx_uint_t *status, const char **error, ngx_str_t *detail);
ngx_int_t ngx_http_simplekv_list_answer(ngx_http_simplekv_ctx_t *ctx);

/* ngx_http_simplekv_reply.c */
ngx_int_t ngx_http_simplekv_send_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *error, ngx_str_t *detail);
ngx_int_t ngx_http_simplekv_send_body(ngx_http_request_t *r,
    ngx_buf_t *b, ngx_uint_t status, const char *type);
ngx_int_t ngx_http_simplekv_send_written(ngx_http_request_t *r,
    ngx_uint_t op, const skv_version_t *version);
ngx_int_t ngx_http_simplekv_send_value(ngx_http_request_t *r,
    ngx_http_simplekv_replica_t *rep);
ngx_int_t ngx_http_simplekv_send_value_header(ngx_http_simplekv_ctx_t *ctx,
    ngx_http_simplekv_replica_t *rep);
ngx_int_t ngx_http_simplekv_send_last_buf(ngx_http_request_t *r,
    ngx_buf_t *b);
ngx_int_t ngx_http_simplekv_value_headers(ngx_http_simplekv_ctx_t *ctx,
    ngx_http_simplekv_replica_t *rep);
ngx_int_t ngx_http_simplekv_preconditions(ngx_http_simplekv_ctx_t *ctx,
    ngx_http_simplekv_replica_t *rep);
ngx_int_t ngx_http_simplekv_send_unsatisfiable(ngx_http_request_t *r,
    off_t length);

/* ngx_http_simplekv_range.c */
ngx_int_t ngx_http_simplekv_range(ngx_http_request_t *r, off_t length,
    off_t *start, off_t *end);

/* ngx_http_simplekv_stream.c */
void ngx_http_simplekv_stream(ngx_http_simplekv_ctx_t *ctx);
ngx_int_t ngx_http_simplekv_stream_header(ngx_http_request_t *sr,
    ngx_http_simplekv_replica_t *rep);

/* ngx_http_simplekv_spool.c */
ngx_int_t ngx_http_simplekv_start_spool(ngx_http_simplekv_ctx_t *ctx);
void ngx_http_simplekv_decide_spool(ngx_http_simplekv_ctx_t *ctx);
ngx_int_t ngx_http_simplekv_spool_write(ngx_http_simplekv_replica_t *rep,
    u_char *data, size_t size);
ngx_int_t ngx_http_simplekv_send_spooled(ngx_http_simplekv_ctx_t *ctx);
ngx_uint_t ngx_http_simplekv_next_holder(ngx_http_simplekv_ctx_t *ctx);
ngx_int_t ngx_http_simplekv_error_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_simplekv_add_header(ngx_http_request_t *r,
    const char *name, ngx_str_t *value);

/* ngx_http_simplekv_replica.c */
ngx_int_t ngx_http_simplekv_init_replica_filter(void);
ngx_http_simplekv_replica_t *ngx_http_simplekv_replica_ctx(
    ngx_http_request_t *r);
ngx_http_simplekv_replica_t *ngx_http_simplekv_replica_start(
    ngx_http_simplekv_ctx_t *ctx, ngx_uint_t slot, ngx_uint_t op,
    ngx_uint_t repair, ngx_uint_t round, ngx_http_post_subrequest_pt done);
ngx_int_t ngx_http_simplekv_pin_version(ngx_http_simplekv_ctx_t *ctx,
    ngx_http_simplekv_replica_t *rep);

/* ngx_http_simplekv_upstream.c */
ngx_int_t ngx_http_simplekv_upstream_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_simplekv_upstream_init_location(ngx_conf_t *cf,
    ngx_http_simplekv_main_conf_t *mcf, ngx_http_simplekv_site_t *site);

/* ngx_http_simplekv_fanout.c */
ngx_int_t ngx_http_simplekv_start_round(ngx_http_simplekv_ctx_t *ctx,
    ngx_http_simplekv_phase_e phase);
ngx_int_t ngx_http_simplekv_late_write_back(ngx_http_simplekv_ctx_t *ctx,
    ngx_http_simplekv_replica_t *rep);
void ngx_http_simplekv_answering(ngx_http_simplekv_ctx_t *ctx);
void ngx_http_simplekv_release(ngx_http_request_t *r);
void ngx_http_simplekv_cleanup(void *data);
ngx_int_t ngx_http_simplekv_replica_done(ngx_http_request_t *sr, void *data,
    ngx_int_t rc);
void ngx_http_simplekv_arm_deadline(ngx_http_simplekv_ctx_t *ctx);

/* ngx_http_simplekv_detach.c */
void ngx_http_simplekv_detach_arm(ngx_http_simplekv_ctx_t *ctx);
ngx_int_t ngx_http_simplekv_detach(ngx_http_simplekv_replica_t *rep);

/* ngx_http_simplekv_outcome.c */
void ngx_http_simplekv_outcome(ngx_http_simplekv_replica_t *rep,
    ngx_http_request_t *sr, ngx_int_t rc);
ngx_uint_t ngx_http_simplekv_node_answered(const skv_reply_t *reply);
ngx_table_elt_t *ngx_http_simplekv_find_header(ngx_http_request_t *sr,
    const char *name);

/* ngx_http_simplekv_breaker.c */
ngx_uint_t ngx_http_simplekv_breaker_check(ngx_http_simplekv_node_t *node,
    ngx_uint_t take_probe);
ngx_uint_t ngx_http_simplekv_breaker_suspect(ngx_http_simplekv_node_t *node);
void ngx_http_simplekv_breaker_record(ngx_http_simplekv_node_t *node,
    const skv_reply_t *reply);
void ngx_http_simplekv_breaker_probed(ngx_http_simplekv_node_t *node,
    ngx_uint_t answered);

/* ngx_http_simplekv_probe.c */
ngx_int_t ngx_http_simplekv_probe_init(ngx_cycle_t *cycle,
    ngx_http_simplekv_main_conf_t *mcf);
void ngx_http_simplekv_probe_exit(ngx_cycle_t *cycle);
ngx_msec_t ngx_http_simplekv_now_ms(void);

/* ngx_http_simplekv_clock.c */
void ngx_http_simplekv_clock_init(ngx_cycle_t *cycle,
    ngx_http_simplekv_main_conf_t *mcf);
skv_version_t ngx_http_simplekv_next_version(void);
uint64_t ngx_http_simplekv_clock_origin(void);
ngx_int_t ngx_http_simplekv_observe_version(const skv_version_t *v,
    ngx_http_simplekv_main_conf_t *mcf, ngx_log_t *log, ngx_str_t *node);

/* ngx_http_simplekv_contention.c */
ngx_uint_t ngx_http_simplekv_contended(ngx_http_simplekv_ctx_t *ctx);
void ngx_http_simplekv_contention_note(ngx_http_simplekv_ctx_t *ctx);
void ngx_http_simplekv_contention_seen(ngx_http_simplekv_ctx_t *ctx,
    const skv_reply_t *replies, ngx_uint_t n);

/* ngx_http_simplekv_epoch.c */
ngx_int_t ngx_http_simplekv_epoch_register(
    ngx_http_simplekv_main_conf_t *mcf);
void ngx_http_simplekv_epoch_unregister(ngx_http_simplekv_main_conf_t *mcf);
u_char *ngx_http_simplekv_epoch_json(u_char *p,
    ngx_http_simplekv_main_conf_t *mcf);

/* ngx_http_simplekv_shm.c */
typedef struct ngx_http_simplekv_shm_s  ngx_http_simplekv_shm_t;
ngx_int_t ngx_http_simplekv_shm_add(ngx_conf_t *cf,
    ngx_http_simplekv_main_conf_t *mcf);
ngx_http_simplekv_shm_t *ngx_http_simplekv_shm(
    ngx_http_simplekv_main_conf_t *mcf);

/* ngx_http_simplekv_stats.c */
void ngx_http_simplekv_stats_replica(ngx_http_simplekv_node_t *node,
    const skv_reply_t *reply, ngx_msec_t ms);
void ngx_http_simplekv_stats_skipped(ngx_http_simplekv_node_t *node);
void ngx_http_simplekv_stats_read_repair(ngx_http_simplekv_main_conf_t *mcf);
void ngx_http_simplekv_stats_read_hedge(ngx_http_simplekv_main_conf_t *mcf);
void ngx_http_simplekv_stats_write_retry(ngx_http_simplekv_main_conf_t *mcf);
void ngx_http_simplekv_stats_write_query(ngx_http_simplekv_main_conf_t *mcf);
void ngx_http_simplekv_stats_stream_resume(
    ngx_http_simplekv_main_conf_t *mcf);
ngx_int_t ngx_http_simplekv_log_handler(ngx_http_request_t *r);

/* ngx_http_simplekv_status.c */
char *ngx_http_simplekv_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_simplekv_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* ngx_http_simplekv_dashboard.c */
char *ngx_http_simplekv_dashboard(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_SIMPLEKV_MODULE_H_INCLUDED_ */
