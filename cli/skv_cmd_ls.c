/*
 * skv_cmd_ls.c - `skv ls [PREFIX]`: list keys, one per line, following the
 * router's cursors page after page.
 *
 * The router answers GET /<prefix>?list&limit=N[&after=CURSOR] with
 * {"keys": [...], "next": CURSOR-or-null}.  Keys in that JSON are
 * percent-encoded, as in URLs and in storaged's /v1/keys lines, because a
 * JSON string cannot carry arbitrary bytes; skv decodes them with the core
 * and prints them in the form chosen on the command line.  The cursor goes
 * back as the router wrote it when it is already URL-safe (a
 * percent-encoded key, the natural cursor); anything else is escaped, so
 * that in both cases the router gets its cursor by decoding `after` once.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "skv_cli.h"
#include "skv_http.h"
#include "skv_keyarg.h"

/* 10,000 keys of up to 3 KiB encoded, plus JSON punctuation. */
#define PAGE_BODY_MAX (40u * 1024 * 1024)

/* Only RFC 3986 unreserved bytes and well-formed %XX escapes. */
static int
url_safe(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char) *s;

        if (c == '%') {
            if (!isxdigit((unsigned char) s[1])
                || !isxdigit((unsigned char) s[2])) {
                return 0;
            }
            s += 2;
        } else if (!isalnum(c) && c != '-' && c != '.' && c != '_'
                   && c != '~') {
            return 0;
        }
    }
    return 1;
}

/* The cursor as an `after` query value (malloc'd), or NULL. */
static char *
query_value(CURL *esc, const char *cursor)
{
    char *q, *copy;

    if (url_safe(cursor)) {
        return strdup(cursor);
    }
    q = curl_easy_escape(esc, cursor, 0);
    if (q == NULL) {
        return NULL;
    }
    copy = strdup(q);
    curl_free(q);
    return copy;
}

/* Print one page's keys; copy its cursor (or NULL) into *next. */
static int
print_page(const skv_opts_t *opts, const skv_req_t *req, char **next)
{
    json_error_t  jerr;
    json_t       *root, *keys, *cursor, *k;
    unsigned char bytes[SKV_KEY_MAX];
    size_t        len, i;
    skv_status_t  st;
    int           rc = SKV_EXIT_SERVER;

    *next = NULL;

    root = json_loadb(req->body, req->body_len, 0, &jerr);
    if (root == NULL) {
        fprintf(stderr, "skv: GET %s: listing is not valid JSON: %s "
                        "(line %d)\n",
                req->path, jerr.text, jerr.line);
        return SKV_EXIT_SERVER;
    }
    keys = json_object_get(root, "keys");
    cursor = json_object_get(root, "next");
    if (!json_is_array(keys)
        || !(cursor == NULL || json_is_null(cursor)
             || json_is_string(cursor))) {
        fprintf(stderr, "skv: GET %s: listing lacks a \"keys\" array or "
                        "has a bad \"next\"\n",
                req->path);
        goto done;
    }

    json_array_foreach(keys, i, k) {
        if (!json_is_string(k)) {
            fprintf(stderr, "skv: GET %s: listing entry %zu is not a "
                            "string\n",
                    req->path, i);
            goto done;
        }
        st = skv_key_decode(json_string_value(k), json_string_length(k),
                            bytes, &len);
        if (st != SKV_OK) {
            fprintf(stderr, "skv: GET %s: listing entry %zu: %s\n",
                    req->path, i, skv_strerror(st));
            goto done;
        }
        if (skv_keyarg_print(stdout, bytes, len, opts->keyfmt) != 0) {
            perror("skv: writing the output");
            goto done;
        }
    }

    if (json_is_string(cursor)) {
        *next = strdup(json_string_value(cursor));
        if (*next == NULL) {
            fprintf(stderr, "skv: out of memory\n");
            goto done;
        }
    }
    rc = SKV_EXIT_OK;

done:
    json_decref(root);
    return rc;
}

int
skv_cmd_ls(const skv_opts_t *opts, int argc, char **argv)
{
    skv_keyarg_t prefix;
    skv_req_t    req;
    CURL        *esc;
    char        *path = NULL, *after = NULL, *next = NULL, *cursor_q;
    size_t       cap;
    int          rc;

    if (argc > 1) {
        return skv_usage_error("ls takes at most one PREFIX");
    }
    rc = skv_keyarg_parse(argc == 1 ? argv[0] : "", opts->keyfmt, 1,
                          &prefix);
    if (rc != SKV_EXIT_OK) {
        return rc;
    }

    /* curl_easy_escape needs a handle only for historical reasons. */
    esc = curl_easy_init();
    if (esc == NULL) {
        fprintf(stderr, "skv: out of memory\n");
        return SKV_EXIT_SERVER;
    }

    for (;;) {
        cursor_q = NULL;
        if (after != NULL) {
            cursor_q = query_value(esc, after);
            if (cursor_q == NULL) {
                fprintf(stderr, "skv: out of memory\n");
                rc = SKV_EXIT_SERVER;
                break;
            }
        }
        cap = strlen(prefix.enc) + (cursor_q ? strlen(cursor_q) : 0) + 64;
        free(path);
        path = malloc(cap);
        if (path == NULL) {
            free(cursor_q);
            fprintf(stderr, "skv: out of memory\n");
            rc = SKV_EXIT_SERVER;
            break;
        }
        if (skv_keyarg_path_safe(&prefix)) {
            snprintf(path, cap, "/%s?list&limit=%ld%s%s", prefix.enc,
                     opts->page_size, cursor_q ? "&after=" : "",
                     cursor_q ? cursor_q : "");
        } else {
            snprintf(path, cap, "/?list&prefix=%s&limit=%ld%s%s",
                     prefix.enc, opts->page_size, cursor_q ? "&after=" : "",
                     cursor_q ? cursor_q : "");
        }
        free(cursor_q);

        rc = skv_req_init(&req, opts, "GET", path);
        if (rc == SKV_EXIT_OK) {
            skv_req_body_max(&req, PAGE_BODY_MAX);
            if (skv_req_perform(&req) != 0 || req.status != 200) {
                rc = skv_req_fail(&req);
            } else {
                rc = print_page(opts, &req, &next);
            }
        }
        skv_req_free(&req);
        if (rc != SKV_EXIT_OK || next == NULL) {
            break;
        }

        /* A router that hands back the cursor it was given would keep us
         * here forever. */
        if (after != NULL && strcmp(after, next) == 0) {
            fprintf(stderr, "skv: GET %s: the router repeated cursor "
                            "\"%s\"; stopping\n",
                    path, next);
            rc = SKV_EXIT_SERVER;
            break;
        }
        free(after);
        after = next;
        next = NULL;
    }

    if (rc == SKV_EXIT_OK && fflush(stdout) != 0) {
        perror("skv: writing the output");
        rc = SKV_EXIT_SERVER;
    }
    free(path);
    free(after);
    free(next);
    curl_easy_cleanup(esc);
    return rc;
}
