/*
 * skv_report.h - what rebalance, cleanup and repair tell the operator:
 * a progress bar on stderr when it is a terminal (or --progress), JSON
 * progress lines on stdout with --json (about one a second: phase,
 * scanned/total per node, copied, bytes, retries, failures, rate, ETA),
 * and a summary at the end, with the failed keys.
 */
#ifndef SKV_REPORT_H
#define SKV_REPORT_H

#include <jansson.h>

#include "skv_engine.h"

/* Draw or print progress if it is time (final: now, whatever the time). */
void skv_report_progress(skv_engine_t *eng, const char *phase, int final);

/*
 * The summary: text on stdout, or one JSON line with --json ("phase":
 * "done", "result": "complete" / "incomplete", the counters, "failed":
 * [{"key", "reason"}], plus the members of extra, which it takes).
 * Failed keys also go to stderr, one line each (the first 100).
 */
void skv_report_summary(skv_engine_t *eng, int complete, json_t *extra);

#endif
