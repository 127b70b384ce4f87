/*
 * skv_admin.c - lease, epoch window, repair watermark and stats requests
 * to every node (see skv_admin.h).
 */
#include "skv_admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "skv_cli.h"

/* Run one request to base + path with an optional JSON body; returns the
 * finished call (the caller frees it) or NULL when out of memory. */
static skv_call_t *
run(skv_loop_t *loop, const char *method, const char *base, const char *path,
    const char *json_body)
{
    skv_call_t *c = skv_call_new(loop, method, base, path);

    if (c == NULL) {
        fprintf(stderr, "skv: out of memory\n");
        return NULL;
    }
    if (json_body != NULL) {
        if (skv_call_header(c, "Content-Type: application/json") != 0) {
            skv_call_free(c);
            return NULL;
        }
        skv_call_body(c, json_body, strlen(json_body));
    }
    if (skv_call_run(c) != 0) {
        skv_call_free(c);
        return NULL;
    }
    return c;
}

static int
no_answer(const skv_call_t *c)
{
    return c->rc != CURLE_OK || c->status == 0;
}

static void
say(const skv_tnode_t *node, const char *what, const skv_call_t *c)
{
    char why[256];

    skv_call_describe(c, why, sizeof(why));
    fprintf(stderr, "skv: node %s (%s): %s: %s\n", node->name, node->base,
            what, why);
}

/* One PUT /v1/lease: 0 taken, 1 held by another (say how long), -1 error,
 * -2 no answer. */
static int
lease_once(skv_loop_t *loop, const skv_tnode_t *node, const char *holder,
           long *expires_ms, char *other, size_t cap)
{
    char        body[256];
    skv_call_t *c;
    int         rc;

    snprintf(body, sizeof(body), "{\"holder\": \"%s\", \"ttl_ms\": %d}",
             holder, SKV_LEASE_TTL_MS);
    c = run(loop, "PUT", node->base, "/v1/lease", body);
    if (c == NULL) {
        return -1;
    }
    if (no_answer(c)) {
        rc = -2;
    } else if (c->status == 200 || c->status == 201 || c->status == 204) {
        rc = 0;
    } else if (c->status == 409) {
        json_t *j = json_loadb(c->body ? c->body : "", c->body_len, 0, NULL);

        *expires_ms = (long) json_integer_value(
            json_object_get(j, "expires_in_ms"));
        snprintf(other, cap, "%s",
                 json_string_value(json_object_get(j, "holder"))
                     ? json_string_value(json_object_get(j, "holder"))
                     : "?");
        json_decref(j);
        rc = 1;
    } else {
        say(node, "taking the lease", c);
        rc = -1;
    }
    skv_call_free(c);
    return rc;
}

int
skv_lease_take(skv_loop_t *loop, const skv_topo_t *topo, const char *holder,
               int *down)
{
    double deadline = skv_now() + SKV_LEASE_TTL_MS / 1000.0 + 5;
    char   other[128];
    long   expires = 0;

    for (size_t i = 0; i < topo->n; i++) {
        int r;

        while ((r = lease_once(loop, &topo->nodes[i], holder, &expires,
                               other, sizeof(other))) == 1
               && skv_now() + (double) expires / 1000.0 < deadline) {
            usleep(250000); /* a killed run's lease runs out */
        }
        if (r == -2) {
            fprintf(stderr, "skv: node %s (%s) is not answering; going on "
                            "without it (its keys will fail)\n",
                    topo->nodes[i].name, topo->nodes[i].base);
            down[i] = 1;
        } else if (r != 0) {
            if (r == 1) {
                fprintf(stderr, "skv: node %s: another rebalance, cleanup "
                                "or repair holds the lease (holder %s, "
                                "%ld ms left)\n",
                        topo->nodes[i].name, other, expires);
            }
            skv_lease_release(loop, topo, holder, down);
            return SKV_EXIT_SERVER;
        }
    }
    return SKV_EXIT_OK;
}

static void
renew_done(skv_call_t *c)
{
    int *lost = c->ctx;

    if (c->rc == CURLE_OK && c->status == 409) {
        *lost = 1;
    }
    skv_call_free(c);
}

void
skv_lease_renew(skv_loop_t *loop, const skv_topo_t *topo, const char *holder,
                const int *down, int *lost)
{
    static char body[256];

    snprintf(body, sizeof(body), "{\"holder\": \"%s\", \"ttl_ms\": %d}",
             holder, SKV_LEASE_TTL_MS);
    for (size_t i = 0; i < topo->n; i++) {
        skv_call_t *c;

        if (down[i]) {
            continue;
        }
        c = skv_call_new(loop, "PUT", topo->nodes[i].base, "/v1/lease");
        if (c == NULL
            || skv_call_header(c, "Content-Type: application/json") != 0) {
            skv_call_free(c);
            continue;
        }
        skv_call_body(c, body, strlen(body));
        c->on_done = renew_done;
        c->ctx = lost;
        if (skv_call_start(c) != 0) {
            skv_call_free(c);
        }
    }
}

void
skv_lease_release(skv_loop_t *loop, const skv_topo_t *topo,
                  const char *holder, const int *down)
{
    char path[256];

    snprintf(path, sizeof(path), "/v1/lease?holder=%s", holder);
    for (size_t i = 0; i < topo->n; i++) {
        if (!down[i]) {
            skv_call_free(run(loop, "DELETE", topo->nodes[i].base, path,
                              NULL));
        }
    }
}

/* GET /v1/epochs: 1 set (min, max), 0 never set, -1 error, -2 no answer */
static int
epochs_get(skv_loop_t *loop, const skv_tnode_t *node, uint64_t *min,
           uint64_t *max)
{
    skv_call_t *c = run(loop, "GET", node->base, "/v1/epochs", NULL);
    json_t     *j, *jmin, *jmax;
    int         rc = -1;

    if (c == NULL) {
        return -1;
    }
    if (no_answer(c)) {
        skv_call_free(c);
        return -2;
    }
    j = c->status == 200 ? json_loadb(c->body, c->body_len, 0, NULL) : NULL;
    jmin = json_object_get(j, "min");
    jmax = json_object_get(j, "max");
    if (json_is_null(jmin) && json_is_null(jmax)) {
        rc = 0;
    } else if (json_is_integer(jmin) && json_is_integer(jmax)) {
        *min = (uint64_t) json_integer_value(jmin);
        *max = (uint64_t) json_integer_value(jmax);
        rc = 1;
    } else {
        say(node, "reading its epoch window", c);
    }
    json_decref(j);
    skv_call_free(c);
    return rc;
}

static int
epochs_put(skv_loop_t *loop, const skv_tnode_t *node, uint64_t min,
           uint64_t max)
{
    char        body[128];
    skv_call_t *c;
    int         rc = -1;

    snprintf(body, sizeof(body), "{\"min\": %llu, \"max\": %llu}",
             (unsigned long long) min, (unsigned long long) max);
    c = run(loop, "PUT", node->base, "/v1/epochs", body);
    if (c != NULL && c->status >= 200 && c->status < 300) {
        rc = 0;
    } else if (c != NULL) {
        say(node, "setting its epoch window", c);
    }
    skv_call_free(c);
    return rc;
}

int
skv_epochs_raise(skv_loop_t *loop, const skv_topo_t *topo, uint64_t lo,
                 uint64_t hi, int *down, int strict)
{
    int rc = SKV_EXIT_OK;

    for (size_t i = 0; i < topo->n; i++) {
        uint64_t min = 0, max = 0, top;
        int      r;

        if (down[i]) {
            continue;
        }
        r = epochs_get(loop, &topo->nodes[i], &min, &max);
        if (r == -2 && strict) {
            fprintf(stderr, "skv: node %s is not answering: its epoch "
                            "window could not be moved to %llu-%llu\n",
                    topo->nodes[i].name, (unsigned long long) lo,
                    (unsigned long long) hi);
            rc = SKV_EXIT_INCOMPLETE;
            continue;
        }
        if (r == -2) {
            down[i] = 1;
            continue;
        }
        if (r < 0) {
            return SKV_EXIT_SERVER;
        }
        if (r == 1 && min > lo) {
            fprintf(stderr, "skv: node %s already refuses epoch %llu (its "
                            "window is %llu-%llu): the cluster has moved "
                            "on\n", topo->nodes[i].name,
                    (unsigned long long) lo, (unsigned long long) min,
                    (unsigned long long) max);
            return SKV_EXIT_SERVER;
        }
        top = r == 1 && max > hi ? max : hi;
        if ((r == 0 || min != lo || max != top)
            && epochs_put(loop, &topo->nodes[i], lo, top) != 0) {
            return SKV_EXIT_SERVER;
        }
    }
    return rc;
}

static void
show_window(const skv_tnode_t *node, int r, uint64_t min, uint64_t max,
            int json)
{
    if (json) {
        printf("{\"node\": \"%s\", ", node->name);
        if (r == 1) {
            printf("\"min\": %llu, \"max\": %llu}\n",
                   (unsigned long long) min, (unsigned long long) max);
        } else {
            printf("\"min\": null, \"max\": null%s}\n",
                   r == -2 ? ", \"error\": \"not answering\"" : "");
        }
    } else if (r == 1) {
        printf("%s  %llu-%llu\n", node->name, (unsigned long long) min,
               (unsigned long long) max);
    } else {
        printf("%s  %s\n", node->name,
               r == 0 ? "no window (accepts every epoch)" : "not answering");
    }
}

int
skv_epochs_show(skv_loop_t *loop, const skv_topo_t *topo, long long allow,
                int json)
{
    int rc = SKV_EXIT_OK;

    for (size_t i = 0; i < topo->n; i++) {
        uint64_t min = 0, max = 0;
        int      r = epochs_get(loop, &topo->nodes[i], &min, &max);

        if (r == 1 && allow >= 0 && (uint64_t) allow < min) {
            fprintf(stderr, "skv: node %s: epoch %lld is below its window "
                            "%llu-%llu, which only moves forward\n",
                    topo->nodes[i].name, allow, (unsigned long long) min,
                    (unsigned long long) max);
            rc = SKV_EXIT_SERVER;
        } else if (r == 1 && allow >= 0 && (uint64_t) allow > max) {
            if (epochs_put(loop, &topo->nodes[i], min, (uint64_t) allow)
                != 0) {
                rc = SKV_EXIT_SERVER;
            } else {
                max = (uint64_t) allow;
            }
        } else if (r < 0) {
            rc = SKV_EXIT_SERVER;
        }
        show_window(&topo->nodes[i], r, min, max, json);
    }
    return rc;
}

int
skv_watermark_put(skv_loop_t *loop, const skv_topo_t *topo,
                  const char *version)
{
    char body[96];
    int  rc = SKV_EXIT_OK;

    snprintf(body, sizeof(body), "{\"version\": \"%s\"}", version);
    for (size_t i = 0; i < topo->n; i++) {
        skv_call_t *c = run(loop, "PUT", topo->nodes[i].base,
                            "/v1/repair-watermark", body);

        /* 409: the node has a later watermark already, which stands */
        if (c == NULL || no_answer(c)
            || !((c->status >= 200 && c->status < 300)
                 || c->status == 409)) {
            if (c != NULL) {
                say(&topo->nodes[i], "recording the repair watermark", c);
            }
            rc = SKV_EXIT_SERVER;
        }
        skv_call_free(c);
    }
    return rc;
}

/* keys + tombstones from /v1/stats; -1 when it cannot be read. */
static int
stats_count(skv_loop_t *loop, const char *base, uint64_t *count)
{
    skv_call_t *c = run(loop, "GET", base, "/v1/stats", NULL);
    json_t     *j = NULL, *k, *t;
    int         rc = -1;

    if (c != NULL && c->rc == CURLE_OK && c->status == 200) {
        j = json_loadb(c->body, c->body_len, 0, NULL);
        k = json_object_get(j, "keys");
        t = json_object_get(j, "tombstones");
        if (json_is_integer(k) && json_is_integer(t)) {
            *count = (uint64_t) (json_integer_value(k)
                                 + json_integer_value(t));
            rc = 0;
        }
    }
    json_decref(j);
    skv_call_free(c);
    return rc;
}

int
skv_node_namespaces(skv_loop_t *loop, const char *base, skv_nscount_t *out,
                    size_t max, size_t *n, char *why, size_t cap)
{
    skv_call_t *c = run(loop, "GET", base, "/v1/namespaces", NULL);
    json_t     *j = NULL, *list, *v;
    size_t      i;
    int         rc = -1;

    *n = 0;
    if (c == NULL) {
        snprintf(why, cap, "out of memory");
        return -1;
    }
    if (no_answer(c)) {
        skv_call_describe(c, why, cap);
        skv_call_free(c);
        return -2;
    }
    if (c->status == 404) {
        /* a storaged from before namespaces: "default" only */
        skv_call_free(c);
        snprintf(out[0].name, sizeof(out[0].name), SKV_NS_DEFAULT);
        if (max > 0 && stats_count(loop, base, &out[0].count) == 0) {
            *n = 1;
        }
        return 0;
    }
    if (c->status == 200) {
        j = json_loadb(c->body ? c->body : "", c->body_len, 0, NULL);
    }
    list = json_object_get(j, "namespaces");
    if (!json_is_array(list)) {
        if (c->status == 200) {
            snprintf(why, cap, "GET /v1/namespaces: not a namespace list");
        } else {
            skv_call_describe(c, why, cap);
        }
        goto done;
    }
    json_array_foreach(list, i, v) {
        const char *name = json_string_value(json_object_get(v, "name"));
        json_t     *k = json_object_get(v, "keys");
        json_t     *t = json_object_get(v, "tombstones");

        if (name == NULL || !skv_ns_name_ok(name, strlen(name))
            || !json_is_integer(k) || !json_is_integer(t)) {
            snprintf(why, cap, "GET /v1/namespaces: a bad entry");
            goto done;
        }
        if (*n == max) {
            snprintf(why, cap, "more than %zu namespaces", max);
            goto done;
        }
        snprintf(out[*n].name, sizeof(out[*n].name), "%s", name);
        out[(*n)++].count = (uint64_t) (json_integer_value(k)
                                        + json_integer_value(t));
    }
    rc = 1;
done:
    json_decref(j);
    skv_call_free(c);
    return rc;
}

int
skv_node_count(skv_loop_t *loop, const char *base, uint64_t *count)
{
    static skv_nscount_t ns[SKV_TOPO_NS_MAX];
    size_t               n = 0;
    char                 why[160];
    int                  r = skv_node_namespaces(loop, base, ns,
                                                 SKV_TOPO_NS_MAX, &n, why,
                                                 sizeof(why));

    if (r < 0 || (r == 0 && n == 0)) {
        return -1;
    }
    *count = 0;
    for (size_t i = 0; i < n; i++) {
        *count += ns[i].count;
    }
    return 0;
}
