/*
 * skv_ckpt.h - the --checkpoint file of rebalance, cleanup and repair.
 *
 * JSON, replaced atomically (written beside, fsynced, renamed):
 *
 *   {"format": 2, "command": "rebalance", "config": "<fingerprint>",
 *    "holder": "<lease holder>", "complete": false,
 *    "started_ms": <repair: when the first run's scan began>,
 *    "namespace": "<name>",
 *    "nodes": {"a": {"after": "<encoded key>", "scanned": 1234}, ...}}
 *
 * The namespaces go by in name order: every one before "namespace" is
 * finished, and in it every node's listing resumes after its "after" key.
 * (The engine merges the listings in key order, so every node has the
 * same position: every key up to it is finished, none that failed is
 * passed.)  "scanned" counts every namespace's lines.  A checkpoint of
 * another format (format 1 had no namespace), command or configuration
 * (node set, weights, the namespaces and their N, epoch) is ignored; a
 * complete one starts the next run from the beginning.  A lock file
 * beside it (<file>.lock) keeps two runs off one checkpoint.
 */
#ifndef SKV_CKPT_H
#define SKV_CKPT_H

#include <stdint.h>

#include "skv_key.h"
#include "skv_topo.h"

typedef struct {
    char     config[4096];
    char     holder[96];
    char     ns[SKV_NS_NAME_MAX + 1];
    char     after[SKV_KEY_ENCODED_MAX + 1];
    int      complete;
    uint64_t started_ms;
    char     names[SKV_TOPO_NODES_MAX][SKV_TOPO_NAME_MAX];
    uint64_t scanned[SKV_TOPO_NODES_MAX];
    size_t   n;
} skv_ckpt_t;

/* Lock path + ".lock"; the fd to keep open, or -1 (said why). */
int skv_ckpt_lock(const char *path);

#define SKV_CKPT_FORMAT 2

/* 0 loaded (format, command and config match, not complete), 1 nothing to
 * resume (absent, other format, command or configuration, complete), -1
 * unreadable. */
int skv_ckpt_load(const char *path, const char *command, const char *config,
                  skv_ckpt_t *ck);

int skv_ckpt_save(const char *path, const char *command,
                  const skv_ckpt_t *ck);

#endif
