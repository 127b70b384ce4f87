/*
 * skv_cmd_maint.c - `skv rebalance`, `skv cleanup`, `skv repair` and
 * `skv epochs` (docs/cli.md, "Membership changes"; docs/membership.md).
 *
 * Each of the first three: read the routers (the barrier), take the lease
 * on every node, move the epoch window where the step needs it, run the
 * engine (skv_engine.h) with the checkpoint saved every second and the
 * lease renewed, then record what the step's end allows (rebalance: the
 * final configuration's epoch; repair: the watermark) and report.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "skv_admin.h"
#include "skv_ckpt.h"
#include "skv_engine.h"
#include "skv_report.h"
#include "skv_token.h"

/* Margin below the scan's start for the repair watermark, on top of the
 * routers' clock skew: longer than any replica request stays in flight. */
#define WATERMARK_MARGIN_MS 60000

typedef struct {
    skv_topo_t   topo;
    skv_engine_t eng;
    int          down[SKV_TOPO_NODES_MAX];
    char         holder[96];
    char         token[1024];
    int          lease_lost;
    double       last_renew, last_save;
    skv_ckpt_t   ck;
    int          ck_fd;
    uint64_t     started_ms;
    int          ns_unknown;  /* a node's namespaces could not be listed */
} run_t;

/* The token of --token-file into buf ("" without the option). */
static int
read_token(const char *path, char *buf, size_t cap)
{
    char   data[4096];
    size_t len, start, tlen;
    FILE  *f;

    buf[0] = '\0';
    if (path == NULL) {
        return SKV_EXIT_OK;
    }
    f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "skv: %s: %s\n", path, strerror(errno));
        return SKV_EXIT_SERVER;
    }
    len = fread(data, 1, sizeof(data), f);
    fclose(f);
    if (skv_token_parse(data, len, &start, &tlen) != SKV_OK
        || tlen >= cap) {
        fprintf(stderr, "skv: %s: no usable token in its first line\n",
                path);
        return SKV_EXIT_SERVER;
    }
    memcpy(buf, data + start, tlen);
    buf[tlen] = '\0';
    return SKV_EXIT_OK;
}

static void
new_holder(char *buf, size_t cap)
{
    char     host[64] = "host";
    unsigned r = 0;
    int      fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

    if (fd >= 0) {
        if (read(fd, &r, sizeof(r)) != (ssize_t) sizeof(r)) {
            r = (unsigned) getpid();
        }
        close(fd);
    }
    gethostname(host, sizeof(host) - 1);
    for (char *p = host; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.')) {
            *p = '-';
        }
    }
    snprintf(buf, cap, "skv-%s-%ld-%08x", host, (long) getpid(), r);
}

/* The checkpoint, if any: where to start, the lease holder. */
static int
load_checkpoint(run_t *r, const skv_opts_t *opts, const char *command)
{
    char config[4096];
    int  st;

    r->ck_fd = -1;
    skv_topo_fingerprint(&r->topo, config, sizeof(config));
    if (opts->maint.checkpoint == NULL || opts->maint.dry_run) {
        memset(&r->ck, 0, sizeof(r->ck));
        snprintf(r->ck.config, sizeof(r->ck.config), "%s", config);
        return SKV_EXIT_OK;
    }
    r->ck_fd = skv_ckpt_lock(opts->maint.checkpoint);
    if (r->ck_fd < 0) {
        return SKV_EXIT_SERVER;
    }
    st = skv_ckpt_load(opts->maint.checkpoint, command, config, &r->ck);
    if (st < 0) {
        return SKV_EXIT_SERVER;
    }
    if (st == 1) {
        memset(&r->ck, 0, sizeof(r->ck));
        snprintf(r->ck.config, sizeof(r->ck.config), "%s", config);
    } else if (r->ck.after[0] != '\0') {
        fprintf(stderr, "skv: %s: resuming after %s in namespace %s "
                        "(checkpoint %s)\n", command, r->ck.after, r->ck.ns,
                opts->maint.checkpoint);
    } else if (r->ck.ns[0] != '\0') {
        fprintf(stderr, "skv: %s: resuming at the start of namespace %s "
                        "(checkpoint %s)\n", command, r->ck.ns,
                opts->maint.checkpoint);
    }
    if (r->ck.holder[0] != '\0') {
        snprintf(r->holder, sizeof(r->holder), "%s", r->ck.holder);
    }
    return SKV_EXIT_OK;
}

static void
save_checkpoint(run_t *r, int complete)
{
    const skv_opts_t *opts = r->eng.opts;
    const char       *ns = "", *after = "";

    if (opts->maint.checkpoint == NULL || r->eng.dry_run) {
        return;
    }
    if (!complete) {
        after = skv_engine_position(&r->eng, &ns);
    }
    snprintf(r->ck.holder, sizeof(r->ck.holder), "%s", r->holder);
    snprintf(r->ck.ns, sizeof(r->ck.ns), "%s", ns);
    snprintf(r->ck.after, sizeof(r->ck.after), "%s", after);
    r->ck.complete = complete;
    r->ck.started_ms = r->started_ms;
    r->ck.n = r->topo.n;
    for (size_t i = 0; i < r->topo.n; i++) {
        snprintf(r->ck.names[i], SKV_TOPO_NAME_MAX, "%s",
                 r->topo.nodes[i].name);
        r->ck.scanned[i] = skv_engine_scanned(&r->eng, i);
    }
    skv_ckpt_save(opts->maint.checkpoint, r->eng.name, &r->ck);
}

static void
tick(skv_engine_t *eng, double now)
{
    run_t *r = eng->ctx;

    if (!eng->dry_run && now - r->last_renew >= SKV_LEASE_TTL_MS / 4000.0) {
        r->last_renew = now;
        skv_lease_renew(&eng->loop, &r->topo, r->holder, r->down,
                        &r->lease_lost);
    }
    if (r->lease_lost && !eng->aborted) {
        fprintf(stderr, "skv: %s: another run took the lease; stopping\n",
                eng->name);
        eng->aborted = 1;
    }
    if (now - r->last_save >= 1.0) {
        r->last_save = now;
        save_checkpoint(r, 0);
    }
    skv_report_progress(eng, eng->scan_done ? "finish" : "scan", 0);
}

/* Every node's namespaces (GET /v1/namespaces): those no router
 * configures join the topology when a node holds keys or tombstones in
 * them (which cannot be placed), and the progress totals are the sums of
 * the configured ones' keys and tombstones.  A node that answers but
 * cannot list them makes the run incomplete (one of its namespaces could
 * go unseen); one that does not answer at all is left out as everywhere
 * else. */
static void
survey_nodes(run_t *r)
{
    static skv_nscount_t held[SKV_TOPO_NS_MAX];

    for (size_t i = 0; i < r->topo.n; i++) {
        size_t n = 0;
        char   why[256];
        int    st;

        for (size_t j = 0; j < r->ck.n; j++) {
            if (strcmp(r->ck.names[j], r->topo.nodes[i].name) == 0) {
                r->eng.enodes[i].scanned_before = r->ck.scanned[j];
            }
        }
        if (r->down[i]) {
            continue;
        }
        st = skv_node_namespaces(&r->eng.loop, r->topo.nodes[i].base, held,
                                 SKV_TOPO_NS_MAX, &n, why, sizeof(why));
        if (st == -1) {
            fprintf(stderr, "skv: node %s: its namespaces could not be "
                            "listed (%s); the run will be incomplete\n",
                    r->topo.nodes[i].name, why);
            r->ns_unknown = 1;
        }
        for (size_t j = 0; j < n; j++) {
            skv_tns_t *ns;

            /* storaged never removes a namespace: one left empty where
             * no router has it any more holds nothing to place */
            if (held[j].count == 0
                && skv_topo_ns_find(&r->topo, held[j].name) == NULL) {
                continue;
            }
            ns = skv_topo_ns_add(&r->topo, held[j].name);
            if (ns == NULL) {
                fprintf(stderr, "skv: node %s: too many namespaces (%s "
                                "and more); the run will be incomplete\n",
                        r->topo.nodes[i].name, held[j].name);
                r->ns_unknown = 1;
                continue;
            }
            ns->held += held[j].count;
            if (ns->configured) {
                r->eng.enodes[i].total += held[j].count;
            }
        }
    }
}

/* Everything before the engine runs; the run is set up on success. */
static int
start(run_t *r, const skv_opts_t *opts, skv_mode_t mode, int argc)
{
    static const char *names[] = {"rebalance", "cleanup", "repair"};
    int                rc;

    if (argc != 0) {
        return skv_usage_error("%s takes no operands", names[mode]);
    }
    rc = skv_topo_load(opts, mode == SKV_MODE_REBALANCE
                                 ? SKV_BARRIER_TRANSITION
                                 : SKV_BARRIER_STABLE, &r->topo);
    if (rc == SKV_EXIT_OK) {
        rc = read_token(opts->maint.token_file, r->token, sizeof(r->token));
    }
    new_holder(r->holder, sizeof(r->holder));
    if (rc == SKV_EXIT_OK) {
        rc = load_checkpoint(r, opts, names[mode]);
    }
    if (rc != SKV_EXIT_OK) {
        return rc;
    }
    if (skv_engine_init(&r->eng, mode, opts, &r->topo, r->ck.ns,
                        r->ck.after, r->token[0] ? r->token : NULL) != 0) {
        return SKV_EXIT_SERVER;
    }
    r->eng.ctx = r;
    r->eng.tick = tick;
    if (!opts->maint.dry_run) {
        rc = skv_lease_take(&r->eng.loop, &r->topo, r->holder, r->down);
    }
    if (rc == SKV_EXIT_OK) {
        survey_nodes(r);
    }
    return rc;
}

/* Run the engine; SKV_EXIT_OK complete, _INCOMPLETE, or _SERVER. */
static int
run_engine(run_t *r)
{
    int complete;

    for (size_t i = 0; i < r->topo.n; i++) {
        r->eng.enodes[i].down = r->down[i];
    }
    if (skv_engine_run(&r->eng) != 0) {
        return SKV_EXIT_SERVER;
    }
    complete = r->eng.scan_done && !r->eng.aborted && r->eng.c.failures == 0
               && r->eng.unplaced == 0 && !r->ns_unknown;
    save_checkpoint(r, complete);
    skv_report_progress(&r->eng, "done", 1);
    return complete ? SKV_EXIT_OK : SKV_EXIT_INCOMPLETE;
}

static int
finish(run_t *r, int rc, json_t *extra)
{
    if (r->eng.tasks != NULL) {
        if (rc == SKV_EXIT_OK || rc == SKV_EXIT_INCOMPLETE) {
            skv_report_summary(&r->eng, rc == SKV_EXIT_OK, extra);
            extra = NULL;
        }
        if (!r->eng.dry_run) {
            skv_lease_release(&r->eng.loop, &r->topo, r->holder, r->down);
        }
        skv_engine_free(&r->eng);
    }
    json_decref(extra);
    if (r->ck_fd >= 0) {
        close(r->ck_fd);
    }
    free(r);
    return rc;
}

static run_t *
new_run(void)
{
    run_t *r = calloc(1, sizeof(*r));

    if (r == NULL) {
        fprintf(stderr, "skv: out of memory\n");
    } else {
        r->ck_fd = -1;
    }
    return r;
}

int
skv_cmd_rebalance(const skv_opts_t *opts, int argc, char **argv)
{
    run_t   *r = new_run();
    uint64_t e;
    int      rc;

    (void) argv;
    if (r == NULL) {
        return SKV_EXIT_SERVER;
    }
    rc = start(r, opts, SKV_MODE_REBALANCE, argc);
    e = r->topo.epoch;
    /* The fence: no router of the old configuration, nor of the final one
     * before this run has finished, can reach a node any more. */
    if (rc == SKV_EXIT_OK && !opts->maint.dry_run) {
        rc = skv_epochs_raise(&r->eng.loop, &r->topo, e, e, r->down, 0);
    }
    if (rc == SKV_EXIT_OK) {
        rc = run_engine(r);
    }
    /* Complete: the final configuration's routers may come. */
    if (rc == SKV_EXIT_OK && !opts->maint.dry_run) {
        rc = skv_epochs_raise(&r->eng.loop, &r->topo, e, e + 1, r->down,
                              1);
        if (rc == SKV_EXIT_OK && !opts->json) {
            printf("every new owner holds its keys' newest versions; the "
                   "nodes accept epoch %llu: load the final "
                   "configuration, then run skv cleanup\n",
                   (unsigned long long) (e + 1));
        }
    }
    return finish(r, rc, NULL);
}

/* Cleanup's per node report: copies left that the node does not own, and
 * for a node that owns nothing, whether it is empty (safe to stop). */
static json_t *
cleanup_report(run_t *r, int *unsafe)
{
    json_t *nodes = json_object();

    for (size_t i = 0; i < r->topo.n; i++) {
        const skv_tnode_t *nd = &r->topo.nodes[i];
        skv_enode_t       *en = &r->eng.enodes[i];
        uint64_t           held = 0, left = en->not_owned - en->removed;
        int                counted, owns_nothing = nd->weight == 0, safe;

        counted = skv_node_count(&r->eng.loop, nd->base, &held) == 0;
        safe = owns_nothing && counted && held == 0;
        *unsafe |= owns_nothing && !safe;
        json_object_set_new(nodes, nd->name,
            json_pack("{s:I,s:I,s:o,s:b}", "not_owned_left",
                      (json_int_t) left, "removed", (json_int_t) en->removed,
                      "keys", counted ? json_integer((json_int_t) held)
                                      : json_null(),
                      "safe_to_stop", safe));
        if (r->eng.opts->json) {
            continue;
        }
        printf("node %s: %llu copies it does not own left", nd->name,
               (unsigned long long) left);
        if (owns_nothing && counted) {
            printf("; holds %llu keys: %s\n", (unsigned long long) held,
                   safe ? "safe to stop" : "NOT safe to stop");
        } else if (owns_nothing) {
            printf("; its key count is unknown: NOT safe to stop\n");
        } else {
            putchar('\n');
        }
    }
    return json_pack("{s:o}", "nodes_report", nodes);
}

int
skv_cmd_cleanup(const skv_opts_t *opts, int argc, char **argv)
{
    run_t  *r = new_run();
    json_t *extra = NULL;
    int     rc, unsafe = 0;

    (void) argv;
    if (r == NULL) {
        return SKV_EXIT_SERVER;
    }
    rc = start(r, opts, SKV_MODE_CLEANUP, argc);
    if (rc == SKV_EXIT_OK && !opts->maint.dry_run) {
        rc = skv_epochs_raise(&r->eng.loop, &r->topo, r->topo.epoch,
                              r->topo.epoch, r->down, 0);
    }
    if (rc == SKV_EXIT_OK) {
        rc = run_engine(r);
    }
    if (rc == SKV_EXIT_OK || rc == SKV_EXIT_INCOMPLETE) {
        extra = cleanup_report(r, &unsafe);
        if (unsafe && rc == SKV_EXIT_OK && !opts->maint.dry_run) {
            rc = SKV_EXIT_INCOMPLETE;
        }
    }
    return finish(r, rc, extra);
}

/* After a complete repair: versions older than the first run's start, by
 * more than the routers' clock skew and the margin, are on every owner. */
static int
record_watermark(run_t *r, const skv_opts_t *opts)
{
    skv_topo_t *now = malloc(sizeof(*now));
    char        a[4096], b[4096], vt[SKV_VERSION_TEXT_LEN + 1];
    uint64_t    back = (uint64_t) opts->maint.max_skew * 1000
                       + WATERMARK_MARGIN_MS;
    skv_version_t v = {0, 0};
    int         rc = SKV_EXIT_SERVER;

    if (now != NULL && skv_topo_load(opts, SKV_BARRIER_STABLE, now) == 0) {
        skv_topo_fingerprint(&r->topo, a, sizeof(a));
        skv_topo_fingerprint(now, b, sizeof(b));
        if (strcmp(a, b) != 0) {
            fprintf(stderr, "skv: repair: the configuration changed during "
                            "the run; no watermark recorded\n");
        } else if (r->started_ms > back) {
            v.hlc = (r->started_ms - back) << SKV_HLC_LOGICAL_BITS;
            skv_version_format(&v, vt);
            rc = skv_watermark_put(&r->eng.loop, &r->topo, vt);
            if (rc == SKV_EXIT_OK && !opts->json) {
                printf("repair watermark %s recorded on every node\n", vt);
            }
        } else {
            rc = SKV_EXIT_OK;
        }
    }
    free(now);
    return rc;
}

int
skv_cmd_repair(const skv_opts_t *opts, int argc, char **argv)
{
    run_t *r = new_run();
    int    rc;

    (void) argv;
    if (r == NULL) {
        return SKV_EXIT_SERVER;
    }
    rc = start(r, opts, SKV_MODE_REPAIR, argc);
    /* Resumed: the first run's scan began earlier, and covered the keys
     * before the checkpoint then. */
    r->started_ms = r->ck.started_ms ? r->ck.started_ms
                                     : skv_clock_now_ms();
    if (rc == SKV_EXIT_OK) {
        rc = run_engine(r);
    }
    if (rc == SKV_EXIT_OK && !opts->maint.dry_run) {
        rc = record_watermark(r, opts);
    }
    return finish(r, rc, NULL);
}

int
skv_cmd_epochs(const skv_opts_t *opts, int argc, char **argv)
{
    skv_topo_t *topo = malloc(sizeof(*topo));
    skv_loop_t  loop;
    char        token[1024];
    int         rc;

    (void) argv;
    if (argc != 0) {
        free(topo);
        return skv_usage_error("epochs takes no operands");
    }
    if (topo == NULL) {
        return SKV_EXIT_SERVER;
    }
    rc = skv_topo_load(opts, SKV_BARRIER_NONE, topo);
    if (rc == SKV_EXIT_OK) {
        rc = read_token(opts->maint.token_file, token, sizeof(token));
    }
    if (rc == SKV_EXIT_OK) {
        if (skv_loop_init(&loop, token[0] ? token : NULL, 5000,
                          opts->connect_timeout * 1000) != 0) {
            rc = SKV_EXIT_SERVER;
        } else {
            rc = skv_epochs_show(&loop, topo, opts->maint.allow_epoch,
                                 opts->json);
        }
        skv_loop_free(&loop);
    }
    free(topo);
    return rc;
}
