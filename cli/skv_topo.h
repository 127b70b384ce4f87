/*
 * skv_topo.h - the cluster as the routers describe it: every router's
 * status page (GET /_simplekv/status) read and checked against the others
 * (docs/membership.md): the node set with weight, previous_weight and
 * address, the epoch, whether it is a transition, live_epochs, and the
 * namespaces (each with its own N: "namespaces" on the page, or for a
 * router from before namespaces its "replicas" as the one namespace
 * "default").  Every router must show the same of all of these.
 *
 * The barrier: every router on the same epoch (a transition or not, as
 * the command needs), and live_epochs on every router holding only that
 * epoch (no worker of an older configuration is still running).
 */
#ifndef SKV_TOPO_H
#define SKV_TOPO_H

#include <stddef.h>
#include <stdint.h>

#include "skv_cli.h"
#include "skv_placement.h"

#define SKV_TOPO_NODES_MAX 64
#define SKV_TOPO_NAME_MAX  128
#define SKV_TOPO_ADDR_MAX  300
#define SKV_TOPO_NS_MAX    1024 /* as many as a storaged holds */
#define SKV_NS_NAME_MAX    64   /* 1-64 of [A-Za-z0-9_-] */
#define SKV_NS_DEFAULT     "default"

typedef struct {
    char     name[SKV_TOPO_NAME_MAX];
    char     base[SKV_TOPO_ADDR_MAX];  /* "http://host:port" */
    uint32_t weight;                   /* 0: owns nothing */
    uint32_t prev_weight;              /* = weight outside a transition */
    int      extra;                    /* --extra-node: not configured */
} skv_tnode_t;

/* A namespace: configured on the routers (its N and quorums), or only
 * found on the nodes (GET /v1/namespaces): then its keys have no owners. */
typedef struct {
    char     name[SKV_NS_NAME_MAX + 1];
    int      configured;
    size_t   replicas, write_quorum, read_quorum; /* 0 when not configured */
    uint64_t held;          /* keys + tombstones, summed over the nodes */
} skv_tns_t;

typedef struct {
    skv_tnode_t nodes[SKV_TOPO_NODES_MAX];
    size_t      n;
    uint64_t    epoch;
    int         transition;
    skv_tns_t   ns[SKV_TOPO_NS_MAX];   /* bytewise by name */
    size_t      n_ns;
    /* placement over the weights and over the previous weights: only
     * the nodes with a weight above 0, with their index in nodes[] */
    skv_node_t  cur[SKV_TOPO_NODES_MAX], prev[SKV_TOPO_NODES_MAX];
    size_t      cur_idx[SKV_TOPO_NODES_MAX], prev_idx[SKV_TOPO_NODES_MAX];
    size_t      n_cur, n_prev;
} skv_topo_t;

typedef enum {
    SKV_BARRIER_TRANSITION, /* rebalance: every router on one transition */
    SKV_BARRIER_STABLE,     /* cleanup, repair: one final configuration */
    SKV_BARRIER_NONE        /* epochs: whatever the routers say */
} skv_barrier_t;

/*
 * Read every router (opts->maint.routers, else opts->url), waiting up to
 * opts->maint.wait seconds for the barrier.  Adds the --extra-node nodes.
 * Returns SKV_EXIT_OK, or prints why not and returns SKV_EXIT_SERVER (or
 * SKV_EXIT_USAGE for a bad --extra-node).
 */
int skv_topo_load(const skv_opts_t *opts, skv_barrier_t want,
                  skv_topo_t *topo);

/* Owners of a key in a namespace of replicas N: indexes into topo->nodes,
 * best first; returns how many.  prev: over the previous weights (old
 * owners), else the weights. */
size_t skv_topo_owners(const skv_topo_t *topo, int prev, size_t replicas,
                       const void *key, size_t key_len, size_t *out);

/* A namespace name as the router accepts it: 1-64 of [A-Za-z0-9_-]. */
int skv_ns_name_ok(const char *name, size_t len);

/* The namespace called name, or NULL. */
skv_tns_t *skv_topo_ns_find(skv_topo_t *topo, const char *name);

/* Add a namespace found on a node (not configured), in name order; the
 * existing one if it is there already; NULL when the table is full. */
skv_tns_t *skv_topo_ns_add(skv_topo_t *topo, const char *name);

/* A namespace's storaged paths: "/v1/kv/" and "/v1/keys" for "default",
 * "/v1/ns/<name>/kv/" and "/v1/ns/<name>/keys" for the others. */
void skv_ns_paths(const char *name, char *kv, size_t kv_cap, char *keys,
                  size_t keys_cap);

/* "a:1:1,b:1:0,...;ns=default/3,two/2;E=5": what a checkpoint must
 * match (the configured namespaces only). */
void skv_topo_fingerprint(const skv_topo_t *topo, char *buf, size_t cap);

#endif
