/*
 * skv_progress.c - the progress bar: "[#####     ]  45%  12.0 MiB / 26.7
 * MiB  5.1 MiB/s", redrawn in place with '\r' at most ten times a second.
 *
 * It only ever writes to stderr, so it never mixes with a value streamed to
 * stdout, and it stays silent for small values and when stderr is not a
 * terminal (logs and pipes should not fill up with carriage returns).
 */
#include "skv_progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define BAR_WIDTH 30

static double
monotonic_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Human size with a binary unit: "812 B", "12.0 MiB". */
static void
format_size(char *buf, size_t cap, double bytes)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    size_t             u = 0;

    while (bytes >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
        bytes /= 1024.0;
        u++;
    }
    if (u == 0) {
        snprintf(buf, cap, "%.0f %s", bytes, units[u]);
    } else {
        snprintf(buf, cap, "%.1f %s", bytes, units[u]);
    }
}

static void
draw(skv_progress_t *p, double now)
{
    char   done[32], total[32], rate[32];
    double elapsed = now - p->started;

    format_size(done, sizeof(done), (double) p->now);
    format_size(rate, sizeof(rate),
                elapsed > 0 ? (double) p->now / elapsed : 0.0);

    if (p->total > 0) {
        int filled = (int) ((double) p->now * BAR_WIDTH / (double) p->total);
        int pct = (int) ((double) p->now * 100.0 / (double) p->total);

        if (filled > BAR_WIDTH) {
            filled = BAR_WIDTH;
        }
        format_size(total, sizeof(total), (double) p->total);
        fprintf(stderr, "\r[%.*s%*s] %3d%%  %s / %s  %s/s\033[K", filled,
                "##############################", BAR_WIDTH - filled, "", pct,
                done, total, rate);
    } else {
        /* Unknown size (a pipe on stdin): no bar, just the count. */
        fprintf(stderr, "\r%s  %s/s\033[K", done, rate);
    }
    fflush(stderr);
    p->drawn = 1;
    p->last_draw = now;
}

void
skv_progress_init(skv_progress_t *p, skv_progress_mode_t mode, int upload)
{
    p->enabled = mode == SKV_PROGRESS_ALWAYS
                 || (mode == SKV_PROGRESS_AUTO && isatty(STDERR_FILENO));
    p->upload = upload;
    p->drawn = 0;
    p->started = monotonic_seconds();
    p->last_draw = 0.0;
    p->now = 0;
    p->total = 0;
}

int
skv_progress_cb(void *data, curl_off_t dltotal, curl_off_t dlnow,
                curl_off_t ultotal, curl_off_t ulnow)
{
    skv_progress_t *p = data;
    double          now;

    if (!p->enabled) {
        return 0;
    }

    p->now = p->upload ? ulnow : dlnow;
    p->total = p->upload ? ultotal : dltotal;

    /* Decide on the size when it is known, else on what has moved so far,
     * so that a small value never flashes a bar. */
    if ((p->total > 0 ? p->total : p->now) < SKV_PROGRESS_THRESHOLD) {
        return 0;
    }

    now = monotonic_seconds();
    if (!p->drawn || now - p->last_draw >= 0.1) {
        draw(p, now);
    }
    return 0; /* non-zero would abort the transfer */
}

void
skv_progress_finish(skv_progress_t *p)
{
    if (p->drawn) {
        draw(p, monotonic_seconds());
        fputc('\n', stderr);
        fflush(stderr);
        p->drawn = 0;
    }
}
