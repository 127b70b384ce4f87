/*
 * skv_cmd_status.c - `skv status [--json]`: the router's view of its
 * storage nodes, from GET /_simplekv/status.
 *
 * --json prints the router's JSON unchanged, for machines.  Otherwise the
 * "nodes" member (an array of objects, or an object keyed by node name)
 * becomes a table, one row per node, one column per field, nested objects
 * flattened as "latency.p99"; every other member is printed as
 * "name: value" lines above it.  The columns come from the answer itself,
 * so fields the router adds later show up without a new skv.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "skv_cli.h"
#include "skv_http.h"

#define STATUS_PATH "/_simplekv/status"
#define MAX_COLS    32
#define CELL_MAX    64

typedef struct {
    char   names[MAX_COLS][CELL_MAX];
    size_t width[MAX_COLS];
    size_t ncols;
} columns_t;

static void
format_scalar(const json_t *v, const char *field, char *buf, size_t cap)
{
    double d;

    switch (json_typeof(v)) {
    case JSON_STRING:
        snprintf(buf, cap, "%s", json_string_value(v));
        break;
    case JSON_INTEGER:
        snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        d = json_real_value(v);
        snprintf(buf, cap, fabs(d) >= 100 ? "%.0f" : "%.2f", d);
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        /* The one boolean every node has reads best as a state. */
        if (strcmp(field, "up") == 0) {
            snprintf(buf, cap, "%s", json_is_true(v) ? "up" : "DOWN");
        } else {
            snprintf(buf, cap, "%s", json_is_true(v) ? "yes" : "no");
        }
        break;
    case JSON_NULL:
        snprintf(buf, cap, "-");
        break;
    default:
        snprintf(buf, cap, "?");
        break;
    }
}

/*
 * Call fn for every scalar under v, with its dotted name below prefix.
 * Arrays count as scalars of their own (shown as their length): a table
 * cell cannot hold a list.
 */
typedef void (*visit_fn)(void *ctx, const char *name, const json_t *v);

static void
visit_flat(const json_t *v, const char *prefix, visit_fn fn, void *ctx)
{
    const char *k;
    json_t     *child;
    char        name[CELL_MAX];

    json_object_foreach((json_t *) v, k, child) {
        snprintf(name, sizeof(name), "%s%s%s", prefix, *prefix ? "." : "",
                 k);
        if (json_is_object(child)) {
            visit_flat(child, name, fn, ctx);
        } else if (json_is_array(child)) {
            json_t *n = json_integer((json_int_t) json_array_size(child));

            fn(ctx, name, n);
            json_decref(n);
        } else {
            fn(ctx, name, child);
        }
    }
}

static void
collect_column(void *ctx, const char *name, const json_t *v)
{
    columns_t *cols = ctx;
    char       cell[CELL_MAX];
    size_t     i;

    if (strcmp(name, "name") == 0) {
        return;
    }
    for (i = 0; i < cols->ncols; i++) {
        if (strcmp(cols->names[i], name) == 0) {
            break;
        }
    }
    if (i == cols->ncols) {
        if (cols->ncols == MAX_COLS) {
            return;
        }
        snprintf(cols->names[i], CELL_MAX, "%s", name);
        cols->width[i] = strlen(name);
        cols->ncols++;
    }
    format_scalar(v, name, cell, sizeof(cell));
    if (strlen(cell) > cols->width[i]) {
        cols->width[i] = strlen(cell);
    }
}

static void
print_top(void *ctx, const char *name, const json_t *v)
{
    char cell[CELL_MAX];

    (void) ctx;
    format_scalar(v, name, cell, sizeof(cell));
    printf("%s: %s\n", name, cell);
}

/* The node's value for a dotted column name, or NULL. */
static const json_t *
lookup(const json_t *node, const char *dotted)
{
    char        part[CELL_MAX];
    const char *dot;

    while (node != NULL && json_is_object(node)) {
        dot = strchr(dotted, '.');
        if (dot == NULL) {
            return json_object_get(node, dotted);
        }
        snprintf(part, sizeof(part), "%.*s", (int) (dot - dotted), dotted);
        node = json_object_get(node, part);
        dotted = dot + 1;
    }
    return NULL;
}

/* Pad every column but the last, so that lines carry no trailing blanks. */
static void
print_padded(const char *text, size_t width, int last)
{
    if (last) {
        printf("  %s", text);
    } else {
        printf("  %-*s", (int) width, text);
    }
}

static void
print_cell(const json_t *node, const columns_t *cols, size_t i)
{
    const json_t *v = lookup(node, cols->names[i]);
    char          cell[CELL_MAX];

    if (v == NULL) {
        snprintf(cell, sizeof(cell), "-");
    } else if (json_is_array(v)) {
        snprintf(cell, sizeof(cell), "%zu", json_array_size(v));
    } else {
        format_scalar(v, cols->names[i], cell, sizeof(cell));
    }
    print_padded(cell, cols->width[i], i + 1 == cols->ncols);
}

/* Rows come from an array of {"name": ...} objects or an object by name;
 * title heads the name column. */
static void
print_table(const json_t *nodes, const char *title)
{
    columns_t   cols;
    const char *k;
    json_t     *node;
    size_t      i, idx, name_w = 4;
    char        name[CELL_MAX];

    memset(&cols, 0, sizeof(cols));

    if (json_is_array(nodes)) {
        json_array_foreach((json_t *) nodes, idx, node) {
            if (json_is_object(node)) {
                visit_flat(node, "", collect_column, &cols);
                format_scalar(json_object_get(node, "name")
                                  ? json_object_get(node, "name")
                                  : json_null(),
                              "name", name, sizeof(name));
                name_w = strlen(name) > name_w ? strlen(name) : name_w;
            }
        }
    } else {
        json_object_foreach((json_t *) nodes, k, node) {
            if (json_is_object(node)) {
                visit_flat(node, "", collect_column, &cols);
                name_w = strlen(k) > name_w ? strlen(k) : name_w;
            }
        }
    }
    if (name_w >= CELL_MAX) {
        name_w = CELL_MAX - 1;
    }

    if (strlen(title) > name_w) {
        name_w = strlen(title);
    }
    printf("%-*s", (int) name_w, title);
    for (i = 0; i < cols.ncols; i++) {
        print_padded(cols.names[i], cols.width[i], i + 1 == cols.ncols);
    }
    putchar('\n');

    if (json_is_array(nodes)) {
        json_array_foreach((json_t *) nodes, idx, node) {
            if (!json_is_object(node)) {
                continue;
            }
            format_scalar(json_object_get(node, "name")
                              ? json_object_get(node, "name")
                              : json_null(),
                          "name", name, sizeof(name));
            printf("%-*s", (int) name_w, name);
            for (i = 0; i < cols.ncols; i++) {
                print_cell(node, &cols, i);
            }
            putchar('\n');
        }
    } else {
        json_object_foreach((json_t *) nodes, k, node) {
            if (!json_is_object(node)) {
                continue;
            }
            printf("%-*.*s", (int) name_w, (int) name_w, k);
            for (i = 0; i < cols.ncols; i++) {
                print_cell(node, &cols, i);
            }
            putchar('\n');
        }
    }
}

/*
 * The router counts latency as a sum and a count ("latency_ms_sum",
 * "latency_count") so that it can add them up across workers; people want
 * the mean.  Replace every "<p>_ms_sum" that has a "<p>_count" beside it
 * by "<p>_avg_ms" (the count stays: it is the number of requests).
 */
static void
derive_averages(json_t *node)
{
    const char *k;
    json_t     *v, *count;
    void       *tmp;
    char        base[CELL_MAX], name[CELL_MAX + 16];
    size_t      len;

    json_object_foreach_safe(node, tmp, k, v) {
        len = strlen(k);
        if (len <= 7 || len >= sizeof(base) || !json_is_number(v)
            || strcmp(k + len - 7, "_ms_sum") != 0) {
            continue;
        }
        snprintf(base, sizeof(base), "%.*s", (int) (len - 7), k);
        snprintf(name, sizeof(name), "%s_count", base);
        count = json_object_get(node, name);
        if (!json_is_number(count)) {
            continue;
        }
        snprintf(name, sizeof(name), "%s_avg_ms", base);
        if (json_number_value(count) > 0) {
            json_object_set_new(node, name,
                                json_real(json_number_value(v)
                                          / json_number_value(count)));
        } else {
            json_object_set_new(node, name, json_null());
        }
        json_object_del(node, k);
    }
}

/* The namespaces and their quorums, a table of their own (their request
 * counts are in --json). */
static int
print_namespaces(const json_t *namespaces)
{
    size_t  i;
    json_t *shown, *ns;

    if (!json_is_array(namespaces) || json_array_size(namespaces) == 0) {
        return 0;
    }
    shown = json_deep_copy(namespaces);
    if (shown == NULL) {
        return -1;
    }
    json_array_foreach(shown, i, ns) {
        if (json_is_object(ns)) {
            json_object_del(ns, "requests");
        }
    }
    putchar('\n');
    print_table(shown, "NAMESPACE");
    json_decref(shown);
    return 0;
}

static int
print_human(const skv_req_t *req)
{
    json_error_t jerr;
    json_t      *root, *nodes, *rest;

    root = json_loadb(req->body, req->body_len, 0, &jerr);
    if (root == NULL || !json_is_object(root)) {
        fprintf(stderr, "skv: GET %s: status is not a JSON object%s%s\n",
                STATUS_PATH, root ? "" : ": ", root ? "" : jerr.text);
        json_decref(root);
        return SKV_EXIT_SERVER;
    }

    nodes = json_object_get(root, "nodes");
    rest = json_copy(root);
    if (rest == NULL) {
        json_decref(root);
        fprintf(stderr, "skv: out of memory\n");
        return SKV_EXIT_SERVER;
    }
    json_object_del(rest, "nodes");
    json_object_del(rest, "namespaces");
    visit_flat(rest, "", print_top, NULL);
    json_decref(rest);
    if (print_namespaces(json_object_get(root, "namespaces")) != 0) {
        json_decref(root);
        fprintf(stderr, "skv: out of memory\n");
        return SKV_EXIT_SERVER;
    }

    if (json_is_array(nodes) || json_is_object(nodes)) {
        size_t      i;
        const char *k;
        json_t     *node, *shown = json_deep_copy(nodes);

        if (shown == NULL) {
            json_decref(root);
            fprintf(stderr, "skv: out of memory\n");
            return SKV_EXIT_SERVER;
        }
        if (json_is_array(shown)) {
            json_array_foreach(shown, i, node) {
                if (json_is_object(node)) {
                    derive_averages(node);
                }
            }
        } else {
            json_object_foreach(shown, k, node) {
                if (json_is_object(node)) {
                    derive_averages(node);
                }
            }
        }
        if (json_object_size(root) > 1) {
            putchar('\n');
        }
        print_table(shown, "NODE");
        json_decref(shown);
    }
    json_decref(root);
    return SKV_EXIT_OK;
}

int
skv_cmd_status(const skv_opts_t *opts, int argc, char **argv)
{
    skv_opts_t o = *opts;
    skv_req_t  req;
    int        rc;

    (void) argv;
    if (argc != 0) {
        return skv_usage_error("status takes no operands");
    }

    /* The status page is at the router's root, whatever location the URL
     * names (--url http://host/tenant-b/ for a namespace's keys). */
    o.url = skv_url_origin(opts->url);
    if (o.url == NULL) {
        fprintf(stderr, "skv: out of memory\n");
        return SKV_EXIT_SERVER;
    }
    rc = skv_req_init(&req, &o, "GET", STATUS_PATH);
    if (rc == SKV_EXIT_OK) {
        skv_req_body_max(&req, 16u * 1024 * 1024);
        if (skv_req_perform(&req) != 0 || req.status != 200) {
            rc = skv_req_fail(&req);
        } else if (opts->json) {
            fwrite(req.body, 1, req.body_len, stdout);
            if (req.body_len > 0 && req.body[req.body_len - 1] != '\n') {
                putchar('\n');
            }
        } else {
            rc = print_human(&req);
        }
    }
    skv_req_free(&req);
    free(o.url);

    if (rc == SKV_EXIT_OK && fflush(stdout) != 0) {
        perror("skv: writing the output");
        rc = SKV_EXIT_SERVER;
    }
    return rc;
}
