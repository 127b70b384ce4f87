/*
 * skv_topo.c - read the routers' status pages, check that they agree and
 * that the barrier holds (see skv_topo.h).
 */
#include "skv_topo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "skv_async.h"
#include "skv_http.h"

#define STATUS_PATH "/_simplekv/status"

/* A non-negative integer member, also accepted as a decimal string. */
static int
get_uint(const json_t *obj, const char *name, uint64_t *out)
{
    const json_t *v = json_object_get(obj, name);

    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t) json_integer_value(v);
        return 0;
    }
    if (json_is_string(v)) {
        char *end;

        *out = strtoull(json_string_value(v), &end, 10);
        return *end == '\0' && end != json_string_value(v) ? 0 : -1;
    }
    return -1;
}

static int
parse_node(const json_t *jn, skv_tnode_t *node, char *why, size_t cap)
{
    const char *name = json_string_value(json_object_get(jn, "name"));
    const char *addr = json_string_value(json_object_get(jn, "address"));
    uint64_t    w, pw;

    if (name == NULL || addr == NULL || get_uint(jn, "weight", &w) != 0) {
        snprintf(why, cap, "a node lacks its name, address or weight (a "
                           "router without membership support?)");
        return -1;
    }
    if (get_uint(jn, "previous_weight", &pw) != 0) {
        pw = w;
    }
    if (strlen(name) >= SKV_TOPO_NAME_MAX
        || strlen(addr) + 8 >= SKV_TOPO_ADDR_MAX
        || w > SKV_NODE_WEIGHT_MAX || pw > SKV_NODE_WEIGHT_MAX) {
        snprintf(why, cap, "node entry out of range");
        return -1;
    }
    memset(node, 0, sizeof(*node));
    snprintf(node->name, sizeof(node->name), "%s", name);
    snprintf(node->base, sizeof(node->base), "http://%s", addr);
    node->weight = (uint32_t) w;
    node->prev_weight = (uint32_t) pw;
    return 0;
}

int
skv_ns_name_ok(const char *name, size_t len)
{
    if (len == 0 || len > SKV_NS_NAME_MAX) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        char c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '-' || c == '_')) {
            return 0;
        }
    }
    return 1;
}

skv_tns_t *
skv_topo_ns_find(skv_topo_t *topo, const char *name)
{
    for (size_t i = 0; i < topo->n_ns; i++) {
        if (strcmp(topo->ns[i].name, name) == 0) {
            return &topo->ns[i];
        }
    }
    return NULL;
}

skv_tns_t *
skv_topo_ns_add(skv_topo_t *topo, const char *name)
{
    skv_tns_t *ns = skv_topo_ns_find(topo, name);
    size_t     at = 0;

    if (ns != NULL) {
        return ns;
    }
    if (topo->n_ns == SKV_TOPO_NS_MAX
        || !skv_ns_name_ok(name, strlen(name))) {
        return NULL;
    }
    while (at < topo->n_ns && strcmp(topo->ns[at].name, name) < 0) {
        at++;
    }
    memmove(&topo->ns[at + 1], &topo->ns[at],
            (topo->n_ns - at) * sizeof(topo->ns[0]));
    topo->n_ns++;
    ns = &topo->ns[at];
    memset(ns, 0, sizeof(*ns));
    snprintf(ns->name, sizeof(ns->name), "%s", name);
    return ns;
}

void
skv_ns_paths(const char *name, char *kv, size_t kv_cap, char *keys,
             size_t keys_cap)
{
    if (strcmp(name, SKV_NS_DEFAULT) == 0) {
        snprintf(kv, kv_cap, "/v1/kv/");
        snprintf(keys, keys_cap, "/v1/keys");
    } else {
        snprintf(kv, kv_cap, "/v1/ns/%s/kv/", name);
        snprintf(keys, keys_cap, "/v1/ns/%s/keys", name);
    }
}

/* A quorum member of a namespace entry: absent means N/2+1. */
static size_t
ns_quorum(const json_t *jn, const char *name, size_t replicas)
{
    uint64_t v;

    return get_uint(jn, name, &v) == 0 ? (size_t) v : replicas / 2 + 1;
}

/* The page's namespaces into t, in name order: "namespaces", or from a
 * router without namespaces, "replicas" (a list or one number; the
 * largest) as the one namespace "default".  -1 with why. */
static int
parse_namespaces(const json_t *root, skv_topo_t *t, char *why, size_t cap)
{
    const json_t *list = json_object_get(root, "namespaces");
    const json_t *r = json_object_get(root, "replicas");
    size_t        i, best = 0;
    json_t       *v;

    if (json_is_array(list) && json_array_size(list) > 0) {
        json_array_foreach(list, i, v) {
            const char *name = json_string_value(json_object_get(v, "name"));
            uint64_t    n;
            skv_tns_t  *ns;

            if (name == NULL || get_uint(v, "replicas", &n) != 0 || n == 0
                || n > SKV_PLACE_MAX) {
                snprintf(why, cap, "a namespace on its status page lacks "
                                   "its name or replicas");
                return -1;
            }
            if (skv_topo_ns_find(t, name) != NULL) {
                snprintf(why, cap, "namespace \"%s\" twice on its status "
                                   "page", name);
                return -1;
            }
            ns = skv_topo_ns_add(t, name);
            if (ns == NULL) {
                snprintf(why, cap, "bad namespace name \"%.80s\", or too "
                                   "many namespaces", name);
                return -1;
            }
            ns->configured = 1;
            ns->replicas = (size_t) n;
            ns->write_quorum = ns_quorum(v, "write_quorum", ns->replicas);
            ns->read_quorum = ns_quorum(v, "read_quorum", ns->replicas);
        }
        return 0;
    }
    if (json_is_integer(r)) {
        best = (size_t) json_integer_value(r);
    }
    json_array_foreach(r, i, v) {
        if (json_is_integer(v) && (size_t) json_integer_value(v) > best) {
            best = (size_t) json_integer_value(v);
        }
    }
    if (best == 0 || best > SKV_PLACE_MAX) {
        snprintf(why, cap, "no replicas and no namespaces on its status "
                           "page");
        return -1;
    }
    t->ns[0].configured = 1;
    t->ns[0].replicas = best;
    t->ns[0].write_quorum = t->ns[0].read_quorum = best / 2 + 1;
    snprintf(t->ns[0].name, sizeof(t->ns[0].name), SKV_NS_DEFAULT);
    t->n_ns = 1;
    return 0;
}

/* Only epoch has live workers in live_epochs? */
static int
only_epoch_live(const json_t *root, uint64_t epoch, char *why, size_t cap)
{
    const json_t *live = json_object_get(root, "live_epochs");
    const char   *k;
    json_t       *v;

    if (!json_is_object(live)) {
        snprintf(why, cap, "no live_epochs on its status page");
        return 0;
    }
    json_object_foreach((json_t *) live, k, v) {
        if (strtoull(k, NULL, 10) != epoch && json_is_integer(v)
            && json_integer_value(v) > 0) {
            snprintf(why, cap, "workers of epoch %s are still running "
                               "(%" JSON_INTEGER_FORMAT ")",
                     k, json_integer_value(v));
            return 0;
        }
    }
    return 1;
}

/* One router's page into t; -1 with why when it cannot be used. */
static int
parse_page(const char *body, size_t len, skv_topo_t *t, char *why,
           size_t cap)
{
    json_t *root = json_loadb(body, len, 0, NULL), *nodes, *jn;
    size_t  i;
    int     rc = -1;

    memset(t, 0, sizeof(*t));
    nodes = json_object_get(root, "nodes");
    if (!json_is_array(nodes) || get_uint(root, "epoch", &t->epoch) != 0) {
        snprintf(why, cap, "no nodes or no epoch on its status page (a "
                           "router without membership support?)");
        goto done;
    }
    t->transition = json_is_true(json_object_get(root, "transition"));
    if (parse_namespaces(root, t, why, cap) != 0) {
        goto done;
    }
    if (json_array_size(nodes) > SKV_TOPO_NODES_MAX) {
        snprintf(why, cap, "too many nodes");
        goto done;
    }
    json_array_foreach(nodes, i, jn) {
        if (parse_node(jn, &t->nodes[t->n++], why, cap) != 0) {
            goto done;
        }
    }
    rc = only_epoch_live(root, t->epoch, why, cap) ? 0 : 1;
done:
    json_decref(root);
    return rc;
}

static int
same_nodes(const skv_topo_t *a, const skv_topo_t *b)
{
    if (a->n != b->n || a->epoch != b->epoch
        || a->transition != b->transition || a->n_ns != b->n_ns) {
        return 0;
    }
    for (size_t i = 0; i < a->n_ns; i++) {
        if (strcmp(a->ns[i].name, b->ns[i].name) != 0
            || a->ns[i].replicas != b->ns[i].replicas
            || a->ns[i].write_quorum != b->ns[i].write_quorum
            || a->ns[i].read_quorum != b->ns[i].read_quorum) {
            return 0;
        }
    }
    for (size_t i = 0; i < a->n; i++) {
        if (strcmp(a->nodes[i].name, b->nodes[i].name) != 0
            || strcmp(a->nodes[i].base, b->nodes[i].base) != 0
            || a->nodes[i].weight != b->nodes[i].weight
            || a->nodes[i].prev_weight != b->nodes[i].prev_weight) {
            return 0;
        }
    }
    return 1;
}

/* GET one status page (at the URL's origin: a --url may name a location
 * such as http://host/tenant-b/) into page; 0, 1 (not at the barrier) or
 * -1. */
static int
read_router(const skv_opts_t *opts, const char *url, skv_topo_t *page,
            char *why, size_t cap)
{
    skv_opts_t o = *opts;
    skv_req_t  req;
    int        rc = -1;

    o.url = skv_url_origin(url);
    o.progress = SKV_PROGRESS_NEVER;
    if (o.url == NULL || skv_req_init(&req, &o, "GET", STATUS_PATH) != 0) {
        free(o.url);
        snprintf(why, cap, "out of memory");
        return -1;
    }
    skv_req_body_max(&req, 16u * 1024 * 1024);
    curl_easy_setopt(req.curl, CURLOPT_TIMEOUT, 10L);
    if (skv_req_perform(&req) != 0 || req.status != 200) {
        if (req.status != 0) {
            snprintf(why, cap, "its status page answered %ld", req.status);
        } else {
            snprintf(why, cap, "%s",
                     req.errbuf[0] ? req.errbuf
                                   : curl_easy_strerror(req.curl_rc));
        }
    } else {
        rc = parse_page(req.body, req.body_len, page, why, cap);
    }
    skv_req_free(&req);
    free(o.url);
    return rc;
}

/* Every router once: 0 at the barrier, 1 not yet, -1 unusable. */
static int
read_all(const skv_opts_t *opts, skv_barrier_t want, skv_topo_t *topo,
         char *why, size_t cap)
{
    const skv_maint_opts_t *m = &opts->maint;
    size_t                  n = m->n_routers ? m->n_routers : 1;
    skv_topo_t             *page = malloc(sizeof(*page));
    int                     rc = 0;
    char                    w[300];

    for (size_t i = 0; page != NULL && i < n && rc == 0; i++) {
        const char *url = m->n_routers ? m->routers[i] : opts->url;
        int         r = read_router(opts, url, i ? page : topo, w,
                                    sizeof(w));

        if (r != 0 && !(r == 1 && want == SKV_BARRIER_NONE)) {
            snprintf(why, cap, "router %s: %s", url, w);
            rc = r;
        } else if (i > 0 && !same_nodes(topo, page)) {
            snprintf(why, cap, "router %s disagrees with %s (epoch %llu "
                               "and %llu, or the node sets or the "
                               "namespaces differ)",
                     url, m->n_routers ? m->routers[0] : opts->url,
                     (unsigned long long) page->epoch,
                     (unsigned long long) topo->epoch);
            rc = 1;
        }
    }
    if (page == NULL) {
        snprintf(why, cap, "out of memory");
        rc = -1;
    }
    free(page);
    if (rc == 0 && want != SKV_BARRIER_NONE
        && topo->transition != (want == SKV_BARRIER_TRANSITION)) {
        snprintf(why, cap, "the routers are on epoch %llu, %s",
                 (unsigned long long) topo->epoch,
                 topo->transition ? "a transition (finish it first: "
                                    "rebalance, the final configuration)"
                                  : "not a transition (write and load "
                                    "the transition configuration first)");
        rc = 1;
    }
    return rc;
}

static int
add_extra(skv_topo_t *topo, const char *spec)
{
    const char  *eq = strchr(spec, '=');
    skv_tnode_t *node;

    if (eq == NULL || eq == spec || eq[1] == '\0'
        || (size_t) (eq - spec) >= SKV_TOPO_NAME_MAX
        || strlen(eq + 1) + 8 >= SKV_TOPO_ADDR_MAX) {
        return skv_usage_error("--extra-node wants NAME=HOST:PORT, not "
                               "\"%s\"", spec);
    }
    for (size_t i = 0; i < topo->n; i++) {
        if (strncmp(topo->nodes[i].name, spec, (size_t) (eq - spec)) == 0
            && topo->nodes[i].name[eq - spec] == '\0') {
            return skv_usage_error("--extra-node %s: that node is in the "
                                   "routers' configuration", spec);
        }
    }
    if (topo->n == SKV_TOPO_NODES_MAX) {
        return skv_usage_error("too many nodes");
    }
    node = &topo->nodes[topo->n++];
    memset(node, 0, sizeof(*node));
    snprintf(node->name, sizeof(node->name), "%.*s", (int) (eq - spec),
             spec);
    snprintf(node->base, sizeof(node->base), "%s%s",
             strncmp(eq + 1, "http://", 7) == 0 ? "" : "http://", eq + 1);
    node->extra = 1;
    return SKV_EXIT_OK;
}

static void
build_placement(skv_topo_t *t)
{
    t->n_cur = t->n_prev = 0;
    for (size_t i = 0; i < t->n; i++) {
        skv_tnode_t *nd = &t->nodes[i];

        if (nd->weight > 0) {
            skv_node_init(&t->cur[t->n_cur], nd->name, strlen(nd->name),
                          nd->weight);
            t->cur_idx[t->n_cur++] = i;
        }
        if (nd->prev_weight > 0) {
            skv_node_init(&t->prev[t->n_prev], nd->name, strlen(nd->name),
                          nd->prev_weight);
            t->prev_idx[t->n_prev++] = i;
        }
    }
}

int
skv_topo_load(const skv_opts_t *opts, skv_barrier_t want, skv_topo_t *topo)
{
    double deadline = skv_now() + (double) opts->maint.wait;
    char   why[512] = "";
    int    rc;

    for (;;) {
        rc = read_all(opts, want, topo, why, sizeof(why));
        if (rc == 0 || skv_now() >= deadline) {
            break;
        }
        usleep(200000);
    }
    if (rc != 0) {
        fprintf(stderr, "skv: %s%s\n", rc > 0 ? "not at the barrier: " : "",
                why);
        return SKV_EXIT_SERVER;
    }
    for (size_t i = 0; i < opts->maint.n_extra; i++) {
        rc = add_extra(topo, opts->maint.extra_nodes[i]);
        if (rc != SKV_EXIT_OK) {
            return rc;
        }
    }
    build_placement(topo);
    return SKV_EXIT_OK;
}

size_t
skv_topo_owners(const skv_topo_t *topo, int prev, size_t replicas,
                const void *key, size_t key_len, size_t *out)
{
    size_t order[SKV_PLACE_MAX];
    size_t n;

    if (replicas > SKV_PLACE_MAX) {
        replicas = SKV_PLACE_MAX;
    }
    if (prev) {
        n = skv_place(topo->prev, topo->n_prev, key, key_len, order,
                      replicas);
    } else {
        n = skv_place(topo->cur, topo->n_cur, key, key_len, order,
                      replicas);
    }
    for (size_t i = 0; i < n; i++) {
        out[i] = prev ? topo->prev_idx[order[i]] : topo->cur_idx[order[i]];
    }
    return n;
}

void
skv_topo_fingerprint(const skv_topo_t *topo, char *buf, size_t cap)
{
    size_t len = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < topo->n && len < cap; i++) {
        len += (size_t) snprintf(buf + len, cap - len, "%s%s:%u:%u",
                                 i ? "," : "", topo->nodes[i].name,
                                 topo->nodes[i].weight,
                                 topo->nodes[i].prev_weight);
    }
    for (size_t i = 0, k = 0; i < topo->n_ns && len < cap; i++) {
        if (topo->ns[i].configured) {
            len += (size_t) snprintf(buf + len, cap - len, "%s%s/%zu",
                                     k++ ? "," : ";ns=", topo->ns[i].name,
                                     topo->ns[i].replicas);
        }
    }
    if (len < cap) {
        snprintf(buf + len, cap - len, ";E=%llu",
                 (unsigned long long) topo->epoch);
    }
}
