/*
 * skv_report.c - progress and summary of rebalance, cleanup and repair
 * (see skv_report.h).
 */
#include "skv_report.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BAR_WIDTH 24

static double last_bar, last_json;
static int    bar_drawn;

static void
totals(const skv_engine_t *eng, uint64_t *scanned, uint64_t *total)
{
    *scanned = *total = 0;
    for (size_t i = 0; i < eng->topo->n; i++) {
        uint64_t s = skv_engine_scanned(eng, i);

        *scanned += s;
        *total += eng->enodes[i].total > s ? eng->enodes[i].total : s;
    }
}

/* Listing lines merged per second, and the seconds left at that rate. */
static void
rates(const skv_engine_t *eng, double *rate, double *eta)
{
    uint64_t scanned, total, now_scanned = 0;
    double   dt = skv_now() - eng->started;

    totals(eng, &scanned, &total);
    for (size_t i = 0; i < eng->topo->n; i++) {
        now_scanned += eng->streams[i].scanned + eng->enodes[i].scanned_ns;
    }
    *rate = dt > 0 ? (double) now_scanned / dt : 0;
    *eta = *rate > 0 ? (double) (total - scanned) / *rate : -1;
}

static void
draw_bar(skv_engine_t *eng, int final)
{
    uint64_t scanned, total;
    double   rate, eta;
    int      filled, pct;

    totals(eng, &scanned, &total);
    rates(eng, &rate, &eta);
    pct = total ? (int) (scanned * 100 / total) : 100;
    filled = pct * BAR_WIDTH / 100;
    fprintf(stderr, "\r%s [%.*s%*s] %3d%%  %llu/%llu  %s %llu  "
                    "%.1f MiB  retries %llu  failures %llu  %.0f keys/s",
            eng->name, filled, "########################",
            BAR_WIDTH - filled, "", pct, (unsigned long long) scanned,
            (unsigned long long) total,
            eng->mode == SKV_MODE_CLEANUP ? "removed" : "copied",
            (unsigned long long) (eng->mode == SKV_MODE_CLEANUP
                                      ? eng->c.removed : eng->c.copied),
            (double) eng->c.bytes / 1048576.0,
            (unsigned long long) eng->c.retries,
            (unsigned long long) eng->c.failures, rate);
    if (eta >= 0 && !final) {
        fprintf(stderr, "  ETA %d:%02d", (int) eta / 60, (int) eta % 60);
    }
    fputs("\033[K", stderr);
    if (final) {
        fputc('\n', stderr);
    }
    fflush(stderr);
    bar_drawn = !final;
}

static void
json_line(skv_engine_t *eng, const char *phase)
{
    json_t *nodes = json_object(), *line;
    double  rate, eta;
    char   *text;

    rates(eng, &rate, &eta);
    for (size_t i = 0; i < eng->topo->n; i++) {
        uint64_t s = skv_engine_scanned(eng, i);

        json_object_set_new(nodes, eng->topo->nodes[i].name,
            json_pack("{s:I,s:I}", "scanned", (json_int_t) s, "total",
                      (json_int_t) (eng->enodes[i].total > s
                                        ? eng->enodes[i].total : s)));
    }
    line = json_pack("{s:s,s:s,s:s,s:o,s:I,s:I,s:I,s:I,s:I,s:f,s:o}",
                     "command", eng->name, "phase", phase, "namespace",
                     eng->ns != NULL ? eng->ns->name : "", "nodes", nodes,
                     "copied", (json_int_t) eng->c.copied,
                     "removed", (json_int_t) eng->c.removed,
                     "bytes", (json_int_t) eng->c.bytes,
                     "retries", (json_int_t) eng->c.retries,
                     "failures", (json_int_t) eng->c.failures,
                     "rate", rate, "eta_s",
                     eta >= 0 ? json_integer((json_int_t) eta) : json_null());
    text = json_dumps(line, JSON_COMPACT);
    if (text != NULL) {
        printf("%s\n", text);
        fflush(stdout);
    }
    free(text);
    json_decref(line);
}

void
skv_report_progress(skv_engine_t *eng, const char *phase, int final)
{
    double now = skv_now();
    int    bar = eng->opts->progress == SKV_PROGRESS_ALWAYS
                 || (eng->opts->progress == SKV_PROGRESS_AUTO
                     && isatty(STDERR_FILENO));

    if (bar && (final ? bar_drawn : now - last_bar >= 0.2)) {
        last_bar = now;
        draw_bar(eng, final);
    }
    if (eng->opts->json && !final && now - last_json >= 1.0) {
        last_json = now;
        json_line(eng, phase);
    }
}

static json_t *
counters_json(const skv_engine_t *eng, int complete)
{
    const skv_counters_t *c = &eng->c;

    return json_pack("{s:s,s:s,s:s,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,"
                     "s:I,s:{s:I,s:I,s:I,s:I,s:I}}",
                     "command", eng->name, "phase", "done", "result",
                     complete ? "complete" : "incomplete", "dry_run",
                     eng->dry_run, "keys", (json_int_t) c->keys, "copied",
                     (json_int_t) c->copied, "moved", (json_int_t) c->moved,
                     "tombstones", (json_int_t) c->tombstones, "bytes",
                     (json_int_t) c->bytes, "removed",
                     (json_int_t) c->removed, "planned",
                     (json_int_t) c->planned, "retries",
                     (json_int_t) c->retries, "failures",
                     (json_int_t) c->failures, "differences", "keys",
                     (json_int_t) c->differ_keys, "missing",
                     (json_int_t) c->missing, "stale", (json_int_t) c->stale,
                     "tombstone_vs_value", (json_int_t) c->kind,
                     "not_on_owners", (json_int_t) c->extra);
}

/* Per namespace: its N and what was done in it, or that it could not be
 * placed. */
static json_t *
namespaces_json(const skv_engine_t *eng)
{
    json_t *list = json_array();

    for (size_t i = 0; i < eng->topo->n_ns; i++) {
        const skv_tns_t      *ns = &eng->topo->ns[i];
        const skv_counters_t *c = &eng->ns_c[i];

        json_array_append_new(list, json_pack(
            "{s:s,s:b,s:o,s:I,s:b,s:I,s:I,s:I,s:I,s:I}", "name", ns->name,
            "configured", ns->configured, "replicas",
            ns->configured ? json_integer((json_int_t) ns->replicas)
                           : json_null(),
            "held", (json_int_t) ns->held, "scanned", eng->ns_ran[i],
            "keys", (json_int_t) c->keys, "copied", (json_int_t) c->copied,
            "removed", (json_int_t) c->removed, "planned",
            (json_int_t) c->planned, "failures", (json_int_t) c->failures));
    }
    return list;
}

static void
namespaces_text(const skv_engine_t *eng)
{
    if (eng->topo->n_ns == 1 && eng->topo->ns[0].configured) {
        return; /* one namespace: the summary says it all */
    }
    for (size_t i = 0; i < eng->topo->n_ns; i++) {
        const skv_tns_t      *ns = &eng->topo->ns[i];
        const skv_counters_t *c = &eng->ns_c[i];

        if (!ns->configured) {
            printf("namespace %s: not in the routers' configuration: %llu "
                   "keys and tombstones left unplaced\n", ns->name,
                   (unsigned long long) ns->held);
        } else if (!eng->ns_ran[i]) {
            printf("namespace %s (N=%zu): finished by an earlier run\n",
                   ns->name, ns->replicas);
        } else {
            printf("namespace %s (N=%zu): %llu keys, %llu %s, %llu failed "
                   "keys\n", ns->name, ns->replicas,
                   (unsigned long long) c->keys,
                   (unsigned long long) (eng->dry_run ? c->planned
                                         : eng->mode == SKV_MODE_CLEANUP
                                             ? c->removed : c->copied),
                   eng->dry_run ? "planned"
                   : eng->mode == SKV_MODE_CLEANUP ? "copies removed"
                                                   : "copies written",
                   (unsigned long long) c->failures);
        }
    }
}

static void
summary_text(const skv_engine_t *eng, int complete)
{
    const skv_counters_t *c = &eng->c;

    printf("%s %s%s: %llu keys", eng->name,
           complete ? "complete" : "incomplete",
           eng->dry_run ? " (dry run, nothing written)" : "",
           (unsigned long long) c->keys);
    if (eng->dry_run) {
        printf(", %llu %s", (unsigned long long) c->planned,
               eng->mode == SKV_MODE_CLEANUP ? "copies to remove"
                                             : "copies to write");
    } else if (eng->mode == SKV_MODE_CLEANUP) {
        printf(", %llu copies removed", (unsigned long long) c->removed);
    } else {
        printf(", %llu copies written (%llu to new owners, %llu "
               "tombstones), %llu bytes", (unsigned long long) c->copied,
               (unsigned long long) c->moved,
               (unsigned long long) c->tombstones,
               (unsigned long long) c->bytes);
    }
    printf(", %llu retries, %llu failed keys\n",
           (unsigned long long) c->retries, (unsigned long long) c->failures);
    if (eng->mode == SKV_MODE_REPAIR) {
        printf("differences: %llu keys: %llu copies missing, %llu stale, "
               "%llu tombstone-vs-value; %llu copies on nodes that do not "
               "own them\n", (unsigned long long) c->differ_keys,
               (unsigned long long) c->missing,
               (unsigned long long) c->stale, (unsigned long long) c->kind,
               (unsigned long long) c->extra);
    }
    namespaces_text(eng);
    if (eng->unplaced > 0) {
        printf("%s incomplete: %llu namespaces on the nodes are not in the "
               "routers' configuration; their keys were left alone\n",
               eng->name, (unsigned long long) eng->unplaced);
    }
    if (!complete && c->failures > 0) {
        printf("%s incomplete: %llu keys failed; run it again (with the "
               "same --checkpoint it resumes)\n", eng->name,
               (unsigned long long) c->failures);
    } else if (!complete && eng->unplaced == 0) {
        printf("%s incomplete: see the errors above; run it again\n",
               eng->name);
    }
}

void
skv_report_summary(skv_engine_t *eng, int complete, json_t *extra)
{
    for (size_t i = 0; i < eng->n_failures; i++) {
        fprintf(stderr, "skv: %s: failed: %s/%s: %s\n", eng->name,
                eng->failures[i].ns, eng->failures[i].key,
                eng->failures[i].reason);
    }
    if (eng->c.failures > eng->n_failures) {
        fprintf(stderr, "skv: %s: ... and %llu more failed keys\n",
                eng->name,
                (unsigned long long) (eng->c.failures - eng->n_failures));
    }
    if (eng->opts->json) {
        json_t *line = counters_json(eng, complete), *failed = json_array();
        char   *text;

        for (size_t i = 0; i < eng->n_failures; i++) {
            json_array_append_new(failed, json_pack("{s:s,s:s,s:s}",
                "namespace", eng->failures[i].ns, "key",
                eng->failures[i].key, "reason", eng->failures[i].reason));
        }
        json_object_set_new(line, "failed", failed);
        json_object_set_new(line, "namespaces", namespaces_json(eng));
        json_object_set_new(line, "unplaced_namespaces",
                            json_integer((json_int_t) eng->unplaced));
        if (extra != NULL) {
            json_object_update(line, extra);
        }
        text = json_dumps(line, JSON_COMPACT);
        if (text != NULL) {
            printf("%s\n", text);
        }
        free(text);
        json_decref(line);
    } else {
        summary_text(eng, complete);
    }
    json_decref(extra);
    fflush(stdout);
}
