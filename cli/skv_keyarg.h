/*
 * skv_keyarg.h - keys on the command line and in skv's output.
 *
 * A key is any 1..SKV_KEY_MAX bytes.  The shell cannot pass a NUL byte and
 * terminals mangle control bytes, so besides the raw form a key can be
 * written in hex (--hex) or percent-encoded (--encoded); `skv ls` prints
 * keys in the same form, so its output feeds straight back into skv.
 */
#ifndef SKV_KEYARG_H
#define SKV_KEYARG_H

#include <stddef.h>
#include <stdio.h>

#include "skv_cli.h"
#include "skv_key.h"

typedef struct {
    unsigned char bytes[SKV_KEY_MAX];
    size_t        len;
    /* The key as it goes into a URL path (skv_key_encode), NUL-ended. */
    char          enc[SKV_KEY_ENCODED_MAX + 1];
} skv_keyarg_t;

/*
 * Parse a key argument written in format fmt.  allow_empty is for `ls`,
 * whose prefix may be empty.  On error prints one line naming the problem
 * and returns SKV_EXIT_USAGE; SKV_EXIT_OK otherwise.
 */
int skv_keyarg_parse(const char *arg, skv_keyfmt_t fmt, int allow_empty,
                     skv_keyarg_t *key);

/*
 * Whether the key can be named in a URL path.  nginx refuses or rewrites
 * some paths before the router sees them: an encoded NUL byte is refused,
 * a "." or ".." segment (nginx decodes %2F, so every '/' in a key makes a
 * segment) is resolved, possibly above "/" (refused) or onto another
 * location, and a key starting with "_simplekv/" lands on the router's own
 * locations.  Such keys go in the query string instead (/?key=...), which
 * nginx leaves alone.
 */
int skv_keyarg_path_safe(const skv_keyarg_t *key);

/* The request target for a key: "/<enc>" or "/?key=<enc>".  cap must be
 * at least SKV_KEYARG_TARGET_MAX. */
#define SKV_KEYARG_TARGET_MAX (SKV_KEY_ENCODED_MAX + 8)
void skv_keyarg_target(const skv_keyarg_t *key, char *buf, size_t cap);

/*
 * Write key bytes to f in format fmt followed by a newline (ls output).
 * Returns 0, or -1 with errno set when the write fails.
 */
int skv_keyarg_print(FILE *f, const unsigned char *key, size_t len,
                     skv_keyfmt_t fmt);

#endif
