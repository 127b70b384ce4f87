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
        uint64_t s = eng->streams[i].scanned + eng->enodes[i].scanned_before;

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
        now_scanned += eng->streams[i].scanned;
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
        uint64_t s = eng->streams[i].scanned + eng->enodes[i].scanned_before;

        json_object_set_new(nodes, eng->topo->nodes[i].name,
            json_pack("{s:I,s:I}", "scanned", (json_int_t) s, "total",
                      (json_int_t) (eng->enodes[i].total > s
                                        ? eng->enodes[i].total : s)));
    }
    line = json_pack("{s:s,s:s,s:o,s:I,s:I,s:I,s:I,s:I,s:f,s:o}",
                     "command", eng->name, "phase", phase, "nodes", nodes,
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
    if (!complete && c->failures > 0) {
        printf("%s incomplete: %llu keys failed; run it again (with the "
               "same --checkpoint it resumes)\n", eng->name,
               (unsigned long long) c->failures);
    } else if (!complete) {
        printf("%s incomplete: see the errors above; run it again\n",
               eng->name);
    }
}

void
skv_report_summary(skv_engine_t *eng, int complete, json_t *extra)
{
    for (size_t i = 0; i < eng->n_failures; i++) {
        fprintf(stderr, "skv: %s: failed: %s: %s\n", eng->name,
                eng->failures[i].key, eng->failures[i].reason);
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
            json_array_append_new(failed, json_pack("{s:s,s:s}", "key",
                eng->failures[i].key, "reason", eng->failures[i].reason));
        }
        json_object_set_new(line, "failed", failed);
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
