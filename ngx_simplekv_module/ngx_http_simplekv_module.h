/*
 * ngx_http_simplekv_module.h - types shared by the files of the simplekv
 * router module.
 *
 * The module is split by concern:
 *   ngx_http_simplekv_module.c   module definition, directives, variables,
 *                                per-worker clock
 *   ngx_http_simplekv_conf.c     configuration: create/merge, directive
 *                                parsers, validation at `nginx -t`
 *   ngx_http_simplekv_handler.c  client request lifecycle: key, method,
 *                                body, the answer and JSON errors
 *   ngx_http_simplekv_replica.c  fan-out to replicas as subrequests,
 *                                quorum bookkeeping, 409 retry, read repair,
 *                                per-replica deadline
 *   ngx_http_simplekv_list.c     GET /<prefix>?list: merging the nodes'
 *                                sorted key listings into pages
 *   ngx_http_simplekv_stats.c    shared-memory counters, status (JSON) and
 *                                metrics (Prometheus) locations
 */

#ifndef _NGX_HTTP_SIMPLEKV_MODULE_H_INCLUDED_
#define _NGX_HTTP_SIMPLEKV_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "skv_key.h"
#include "skv_placement.h"
#include "skv_record.h"
#include "skv_version.h"


/* The internal location of conf/simplekv_proxy.conf; every replica
 * subrequest goes there. */
#define NGX_HTTP_SIMPLEKV_PROXY_URI      "/_simplekv/replica"

#define NGX_HTTP_SIMPLEKV_STORAGE_PREFIX "/v1/kv/"

/* subrequest_output_buffer_size in conf/simplekv_proxy.conf */
#define NGX_HTTP_SIMPLEKV_SNIPPET_BUFFER (16 * 1024 * 1024)

/* 409 retries of one client write; each retry uses a newer version. */
#define NGX_HTTP_SIMPLEKV_WRITE_TRIES    3
/* Read rounds (first read + re-reads after a repair lost to a newer
 * concurrent write). */
#define NGX_HTTP_SIMPLEKV_READ_TRIES     3

#define NGX_HTTP_SIMPLEKV_DEFAULT_CTYPE  "application/octet-stream"

/* Circuit breaker: a node that timed out is skipped for this long after
 * its last timeout, but for one probe request per interval. */
#define NGX_HTTP_SIMPLEKV_SUSPECT_MS     5000
#define NGX_HTTP_SIMPLEKV_PROBE_MS       200
/* After the answer, a request to a suspect node may hold the client's
 * connection this long at most. */
#define NGX_HTTP_SIMPLEKV_PROBE_GRACE_MS 10

/* ngx_http_simplekv_node_suspect() */
#define NGX_HTTP_SIMPLEKV_SKIP           1
#define NGX_HTTP_SIMPLEKV_PROBE          2


typedef enum {
    NGX_HTTP_SIMPLEKV_OP_GET = 0,
    NGX_HTTP_SIMPLEKV_OP_PUT,
    NGX_HTTP_SIMPLEKV_OP_DELETE,
    NGX_HTTP_SIMPLEKV_OP_LIST
} ngx_http_simplekv_op_e;


/* What became of one replica subrequest. */
typedef enum {
    NGX_HTTP_SIMPLEKV_PENDING = 0,
    NGX_HTTP_SIMPLEKV_ACK,          /* write applied or already there */
    NGX_HTTP_SIMPLEKV_CONFLICT,     /* 409: the replica holds newer */
    NGX_HTTP_SIMPLEKV_FOUND,        /* read: value */
    NGX_HTTP_SIMPLEKV_TOMBSTONE,    /* read: 404 with version */
    NGX_HTTP_SIMPLEKV_MISSING,      /* read: 404, never seen */
    NGX_HTTP_SIMPLEKV_LISTED,       /* list: a page of key lines */
    NGX_HTTP_SIMPLEKV_FAILED,       /* error, refused, bad answer */
    NGX_HTTP_SIMPLEKV_TIMEDOUT
} ngx_http_simplekv_outcome_e;


typedef struct {
    ngx_str_t                       name;
    ngx_str_t                       upstream;
    ngx_uint_t                      weight;
} ngx_http_simplekv_node_t;


typedef struct {
    ngx_array_t                     nodes;      /* ngx_http_simplekv_node_t */
    skv_node_t                     *placement;  /* same order as nodes */
    ngx_str_t                       authorization; /* "Bearer <token>" */
    ngx_shm_zone_t                 *shm_zone;
    ngx_flag_t                      used;       /* a location says simplekv */
} ngx_http_simplekv_main_conf_t;


typedef struct {
    ngx_flag_t                      enable;
    ngx_uint_t                      replicas;
    ngx_uint_t                      write_quorum;
    ngx_uint_t                      read_quorum;
    size_t                          max_value_size;
    ngx_msec_t                      replica_timeout;
    ngx_uint_t                      read_fanout;
} ngx_http_simplekv_loc_conf_t;


/* simplekv_read_fanout: whom a read asks first */
#define NGX_HTTP_SIMPLEKV_FANOUT_ALL     1  /* every replica */
#define NGX_HTTP_SIMPLEKV_FANOUT_QUORUM  2  /* max(R, W) of them, then all */


typedef struct ngx_http_simplekv_ctx_s  ngx_http_simplekv_ctx_t;


/* One subrequest to one replica; it is also the subrequest's module ctx,
 * read by the $simplekv_* variables. */
typedef struct {
    ngx_http_simplekv_ctx_t        *ctx;
    ngx_http_request_t             *request;
    ngx_uint_t                      node;       /* index into mcf->nodes */
    ngx_uint_t                      round;
    ngx_uint_t                      op;
    ngx_str_t                       version_text;
    ngx_str_t                       content_type;
    ngx_msec_t                      start;

    ngx_http_simplekv_outcome_e     outcome;
    ngx_uint_t                      status;
    skv_version_t                   version;    /* zero when none */
    ngx_str_t                       body;
    ngx_str_t                       body_type;

    unsigned                        done:1;
    unsigned                        aborted:1;
    unsigned                        unsent:1;   /* failed before the request
                                                   reached the node */
    unsigned                        probe:1;    /* to a suspect node */
} ngx_http_simplekv_replica_t;


typedef enum {
    NGX_HTTP_SIMPLEKV_PHASE_WRITE = 0,
    NGX_HTTP_SIMPLEKV_PHASE_READ,
    NGX_HTTP_SIMPLEKV_PHASE_REPAIR,
    NGX_HTTP_SIMPLEKV_PHASE_LIST
} ngx_http_simplekv_phase_e;


struct ngx_http_simplekv_ctx_s {
    ngx_http_request_t             *request;
    ngx_http_simplekv_main_conf_t  *mcf;
    ngx_http_simplekv_loc_conf_t   *lcf;
    ngx_uint_t                      op;

    u_char                         *key;
    size_t                          key_len;
    ngx_str_t                       storage_uri;  /* /v1/kv/<canonical>,
                                                     or /v1/keys?... */

    size_t                          order[SKV_PLACE_MAX];
    ngx_uint_t                      nreplicas;

    /* what a write sends: the client's body or the value being repaired */
    ngx_chain_t                    *body;
    off_t                           body_len;
    off_t                           received;   /* body bytes read so far */
    ngx_str_t                       content_type;
    skv_version_t                   version;

    ngx_http_simplekv_phase_e       phase;
    ngx_uint_t                      round;
    ngx_uint_t                      write_tries;
    ngx_uint_t                      read_tries;

    /* the current round: one slot per placed replica, NULL if not asked */
    ngx_http_simplekv_replica_t    *slot[SKV_PLACE_MAX];
    ngx_uint_t                      asked;
    ngx_uint_t                      pending;

    /* every subrequest ever started, to bound stragglers */
    ngx_array_t                     all;
    ngx_uint_t                      running;

    /* read results kept across the repair round */
    ngx_http_simplekv_replica_t    *newest;
    ngx_uint_t                      holders;
    unsigned                        holds[SKV_PLACE_MAX];

    ngx_event_t                     deadline;

    unsigned                        answered:1;
    unsigned                        posted:1;
    unsigned                        expired:1;
    unsigned                        too_large:1;
    unsigned                        skipped:1;
    unsigned                        held_back:1; /* the read fan-out left
                                                    healthy replicas out */   /* this round left out a
                                                    suspect node */
    unsigned                        no_skip:1;   /* ask every node */

    /* listing: a page of at most list_limit live keys after list_after */
    ngx_uint_t                      list_limit;
    ngx_uint_t                      list_node_limit;
};


extern ngx_module_t  ngx_http_simplekv_module;


/* ngx_http_simplekv_module.c */
skv_version_t ngx_http_simplekv_next_version(void);
void ngx_http_simplekv_observe_version(const skv_version_t *v);

/* ngx_http_simplekv_conf.c */
void *ngx_http_simplekv_create_main_conf(ngx_conf_t *cf);
char *ngx_http_simplekv_init_main_conf(ngx_conf_t *cf, void *conf);
void *ngx_http_simplekv_create_loc_conf(ngx_conf_t *cf);
char *ngx_http_simplekv_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
char *ngx_http_simplekv_node(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_simplekv_token_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_simplekv(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
ngx_int_t ngx_http_simplekv_check_upstreams(ngx_conf_t *cf);

/* ngx_http_simplekv_handler.c */
ngx_int_t ngx_http_simplekv_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_simplekv_init_body_filter(void);
void ngx_http_simplekv_answer(ngx_http_simplekv_ctx_t *ctx);
void ngx_http_simplekv_answer_error(ngx_http_simplekv_ctx_t *ctx,
    ngx_uint_t status, const char *error, ngx_str_t *detail);
ngx_int_t ngx_http_simplekv_send_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *error, ngx_str_t *detail);
ngx_int_t ngx_http_simplekv_raw_key(ngx_http_request_t *r, ngx_str_t *raw);
ngx_int_t ngx_http_simplekv_send_body(ngx_http_request_t *r,
    ngx_buf_t *b, ngx_uint_t status, const char *type);

/* ngx_http_simplekv_replica.c */
void ngx_http_simplekv_answering(ngx_http_simplekv_ctx_t *ctx);
ngx_int_t ngx_http_simplekv_start_write(ngx_http_simplekv_ctx_t *ctx);
ngx_int_t ngx_http_simplekv_start_read(ngx_http_simplekv_ctx_t *ctx);
ngx_int_t ngx_http_simplekv_start_round(ngx_http_simplekv_ctx_t *ctx,
    ngx_http_simplekv_phase_e phase);
ngx_int_t ngx_http_simplekv_init_replica_filter(void);
ngx_http_simplekv_replica_t *ngx_http_simplekv_replica_ctx(
    ngx_http_request_t *r);
void ngx_http_simplekv_fail(ngx_http_simplekv_ctx_t *ctx,
    ngx_uint_t answered, ngx_uint_t needed, ngx_uint_t timedout,
    const char *what);

/* ngx_http_simplekv_list.c */
ngx_int_t ngx_http_simplekv_is_list(ngx_http_request_t *r);
ngx_int_t ngx_http_simplekv_list_arg(ngx_str_t *args, const char *name,
    ngx_str_t *value, ngx_uint_t *present);
ngx_int_t ngx_http_simplekv_start_list(ngx_http_simplekv_ctx_t *ctx);
void ngx_http_simplekv_decide_list(ngx_http_simplekv_ctx_t *ctx);

/* ngx_http_simplekv_stats.c */
ngx_int_t ngx_http_simplekv_stats_init_zone(ngx_conf_t *cf,
    ngx_http_simplekv_main_conf_t *mcf);
void ngx_http_simplekv_stats_replica(ngx_http_simplekv_main_conf_t *mcf,
    ngx_uint_t node, ngx_http_simplekv_outcome_e outcome, ngx_msec_t ms);
ngx_uint_t ngx_http_simplekv_node_suspect(ngx_http_simplekv_main_conf_t *mcf,
    ngx_uint_t node);
ngx_uint_t ngx_http_simplekv_node_is_suspect(
    ngx_http_simplekv_main_conf_t *mcf, ngx_uint_t node);
void ngx_http_simplekv_stats_skipped(ngx_http_simplekv_main_conf_t *mcf,
    ngx_uint_t node);
void ngx_http_simplekv_stats_read_repair(ngx_http_simplekv_main_conf_t *mcf);
ngx_atomic_t *ngx_http_simplekv_stats_clock(
    ngx_http_simplekv_main_conf_t *mcf, uint64_t *origin);
void ngx_http_simplekv_stats_write_retry(ngx_http_simplekv_main_conf_t *mcf);
ngx_int_t ngx_http_simplekv_log_handler(ngx_http_request_t *r);
char *ngx_http_simplekv_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_simplekv_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_SIMPLEKV_MODULE_H_INCLUDED_ */
