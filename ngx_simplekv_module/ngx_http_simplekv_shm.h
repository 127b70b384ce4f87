/*
 * ngx_http_simplekv_shm.h - the layout of the router's shared memory zone,
 * for the files that keep state in it (clock.c, breaker.c, stats.c,
 * status.c).  shm.c explains why the layout is fixed.
 */

#ifndef _NGX_HTTP_SIMPLEKV_SHM_H_INCLUDED_
#define _NGX_HTTP_SIMPLEKV_SHM_H_INCLUDED_


#include "ngx_http_simplekv_module.h"


/* Node slots in the zone: every node name any configuration of this
 * nginx has used, up to this many (a configuration has at most 64). */
#define NGX_HTTP_SIMPLEKV_SHM_NODES    256
#define NGX_HTTP_SIMPLEKV_SHM_NAME     256

/* latency histogram upper bounds in ms (stats.c); +Inf is the count */
#define NGX_HTTP_SIMPLEKV_NBUCKETS     11

/* client requests by method and status (stats.c) */
#define NGX_HTTP_SIMPLEKV_NMETHODS     5
#define NGX_HTTP_SIMPLEKV_NCODES       16
#define NGX_HTTP_SIMPLEKV_NSTATUS      (NGX_HTTP_SIMPLEKV_NCODES + 1)

/* worker processes alive, with their configuration's epoch (epoch.c) */
#define NGX_HTTP_SIMPLEKV_LIVE_MAX     256

/* recently contended keys (contention.c): a direct-mapped table */
#define NGX_HTTP_SIMPLEKV_CONTENTION_SLOTS  4096

/* namespace slots (request counters by namespace), kept by name like the
 * node slots */
#define NGX_HTTP_SIMPLEKV_SHM_NAMESPACES  64

#define NGX_HTTP_SIMPLEKV_SHM_MAGIC    0x736b7673686d0007ULL  /* "skvshm" 7 */


struct ngx_http_simplekv_shm_node_s {
    u_char                  name[NGX_HTTP_SIMPLEKV_SHM_NAME];
    size_t                  name_len;

    ngx_atomic_t            up;
    ngx_atomic_t            successes;
    ngx_atomic_t            failures;
    ngx_atomic_t            timeouts;
    ngx_atomic_t            skipped;
    ngx_atomic_t            latency_ms_sum;
    ngx_atomic_t            latency_count;
    ngx_atomic_t            latency_bucket[NGX_HTTP_SIMPLEKV_NBUCKETS];

    /* the circuit breaker (wall-clock ms, shared by all workers) */
    ngx_atomic_t            suspect_until;
    ngx_atomic_t            probe_after;
};


struct ngx_http_simplekv_shm_ns_s {
    u_char                  name[NGX_HTTP_SIMPLEKV_NS_NAME_MAX];
    size_t                  name_len;

    ngx_atomic_t            requests[NGX_HTTP_SIMPLEKV_NMETHODS]
                                    [NGX_HTTP_SIMPLEKV_NSTATUS];
};


struct ngx_http_simplekv_shm_s {
    uint64_t                magic;

    /* the version clock all workers share (clock.c) */
    ngx_atomic_t            clock_last_hlc;
    uint64_t                clock_origin;

    ngx_atomic_t            requests[NGX_HTTP_SIMPLEKV_NMETHODS]
                                    [NGX_HTTP_SIMPLEKV_NSTATUS];
    ngx_atomic_t            read_repairs;
    ngx_atomic_t            write_retries;
    ngx_atomic_t            clock_refused;
    ngx_atomic_t            write_queries;
    ngx_atomic_t            read_hedges;
    ngx_atomic_t            stream_resumes;

    /* key hash and until when (ms) it counts as contended */
    ngx_atomic_t            contended_key[NGX_HTTP_SIMPLEKV_CONTENTION_SLOTS];
    ngx_atomic_t            contended_until[NGX_HTTP_SIMPLEKV_CONTENTION_SLOTS];

    /* pid 0: free; all ones: being claimed */
    ngx_atomic_t            live_pid[NGX_HTTP_SIMPLEKV_LIVE_MAX];
    ngx_atomic_t            live_epoch[NGX_HTTP_SIMPLEKV_LIVE_MAX];

    ngx_uint_t              nslots;     /* slots handed out so far */
    ngx_http_simplekv_shm_node_t  slots[NGX_HTTP_SIMPLEKV_SHM_NODES];

    ngx_uint_t              nns;        /* namespace slots handed out */
    ngx_http_simplekv_shm_ns_t  ns_slots[NGX_HTTP_SIMPLEKV_SHM_NAMESPACES];
};


#endif /* _NGX_HTTP_SIMPLEKV_SHM_H_INCLUDED_ */
