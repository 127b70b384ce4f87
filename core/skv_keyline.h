/*
 * skv_keyline.h - one line of storaged's GET /v1/keys listing.
 *
 *   <version: 32 hex>\t<tombstone: 0|1>\t<percent-encoded key>\n
 *
 * Shared by storaged (writes lines), the router's listing merge and the CLI's
 * repair/rebalance (read lines), so all agree on one format.
 */
#ifndef SKV_KEYLINE_H
#define SKV_KEYLINE_H

#include <stdbool.h>
#include <stddef.h>

#include "skv_key.h"
#include "skv_status.h"
#include "skv_version.h"

/* Longest line, newline included. */
#define SKV_KEYLINE_MAX (SKV_VERSION_TEXT_LEN + 3 + SKV_KEY_ENCODED_MAX + 1)

typedef struct {
    skv_version_t version;
    bool          tombstone;
    unsigned char key[SKV_KEY_MAX];
    size_t        key_len;
} skv_keyline_t;

/* Format a line (with its newline) into out; returns its length, or 0 if cap
 * < SKV_KEYLINE_MAX would not fit it. */
size_t skv_keyline_format(const skv_keyline_t *line, char *out, size_t cap);

/* Parse one line; the trailing newline is optional. */
skv_status_t skv_keyline_parse(const char *text, size_t len,
                               skv_keyline_t *out);

#endif
