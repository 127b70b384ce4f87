/*
 * skv_scan.c - streamed key listings of every node, merged in key order
 * (see skv_scan.h).
 */
#include "skv_scan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skv_bytes.h"

/* Unmerged bytes a listing may hold before its transfer pauses. */
#define STREAM_BUF_MAX (1024 * 1024)
#define STREAM_ATTEMPTS 3

static int
on_data(skv_call_t *call, const char *data, size_t len)
{
    skv_stream_t *s = call->ctx;

    if (s->len - s->off > STREAM_BUF_MAX) {
        return 1; /* pause: the merge is behind */
    }
    if (s->off > 0 && s->off == s->len) {
        s->off = s->len = 0;
    }
    if (s->len + len > s->cap) {
        size_t cap = s->cap ? s->cap : 64 * 1024;
        char  *nb;

        if (s->off > 0) { /* compact first */
            memmove(s->buf, s->buf + s->off, s->len - s->off);
            s->len -= s->off;
            s->off = 0;
        }
        while (cap < s->len + len) {
            cap *= 2;
        }
        if (cap != s->cap) {
            nb = realloc(s->buf, cap);
            if (nb == NULL) {
                return 1;
            }
            s->buf = nb;
            s->cap = cap;
        }
    }
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    s->last_data = skv_now();
    s->attempts = 0; /* progress: count failures in a row only */
    return 0;
}

/* The encoded key of the last complete line in the buffer into s->after,
 * dropping any partial line after it.  0 if there was none. */
static int
keep_complete_lines(skv_stream_t *s)
{
    size_t end = s->len, start;

    while (end > s->off && s->buf[end - 1] != '\n') {
        end--;
    }
    s->len = end;
    if (end == s->off) {
        return 0;
    }
    start = end - 1;
    while (start > s->off && s->buf[start - 1] != '\n') {
        start--;
    }
    /* version \t flag \t key \n */
    if (end - start > SKV_VERSION_TEXT_LEN + 4
        && end - start - SKV_VERSION_TEXT_LEN - 4 <= SKV_KEY_ENCODED_MAX) {
        size_t klen = end - start - SKV_VERSION_TEXT_LEN - 4;

        memcpy(s->after, s->buf + start + SKV_VERSION_TEXT_LEN + 3, klen);
        s->after[klen] = '\0';
    }
    return 1;
}

static void
stream_failed(skv_stream_t *s, const char *why)
{
    snprintf(s->error, sizeof(s->error), "%s", why);
    keep_complete_lines(s);
    s->attempts++;
    s->retries++;
    if (s->attempts >= STREAM_ATTEMPTS) {
        s->failed = 1;
    } else {
        s->retry_at = skv_now() + 0.5 * s->attempts;
    }
}

static void
on_done(skv_call_t *call)
{
    skv_stream_t *s = call->ctx;
    char          why[256];

    s->call = NULL;
    if (call->rc == CURLE_OK && call->status == 200
        && (s->len == s->off || s->buf[s->len - 1] == '\n')) {
        s->eof = 1;
    } else if (call->rc == CURLE_OK && call->status == 200) {
        stream_failed(s, "listing ended inside a line");
    } else {
        skv_call_describe(call, why, sizeof(why));
        stream_failed(s, why);
    }
    skv_call_free(call);
}

static int
stream_request(skv_stream_t *s)
{
    char path[SKV_KEY_ENCODED_MAX + 128];

    snprintf(path, sizeof(path), "%s%s%s", s->path,
             s->after[0] ? "?after=" : "", s->after);
    s->call = skv_call_new(s->loop, "GET", s->base, path);
    if (s->call == NULL) {
        return -1;
    }
    s->call->on_data = on_data;
    s->call->on_done = on_done;
    s->call->ctx = s;
    skv_call_timeout(s->call, 0); /* stalls are caught by skv_stream_tick */
    s->last_data = skv_now();
    if (skv_call_start(s->call) != 0) {
        skv_call_free(s->call);
        s->call = NULL;
        return -1;
    }
    return 0;
}

int
skv_stream_start(skv_stream_t *s, skv_loop_t *loop, const char *base,
                 const char *path, const char *after, double stall_s)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->base = base;
    s->path = path;
    s->stall_s = stall_s;
    snprintf(s->after, sizeof(s->after), "%s", after ? after : "");
    return stream_request(s);
}

void
skv_stream_free(skv_stream_t *s)
{
    skv_call_free(s->call);
    free(s->buf);
    memset(s, 0, sizeof(*s));
}

void
skv_stream_tick(skv_stream_t *s, double now)
{
    if (s->eof || s->failed) {
        return;
    }
    if (s->call == NULL) {
        if (now >= s->retry_at && stream_request(s) != 0) {
            stream_failed(s, "out of memory");
        }
        return;
    }
    if (s->call->paused) {
        if (s->len - s->off < STREAM_BUF_MAX / 2) {
            s->last_data = now;
            skv_call_resume(s->call);
        }
        return;
    }
    if (now - s->last_data > s->stall_s) {
        char why[64];

        snprintf(why, sizeof(why), "no data for %.0f s", s->stall_s);
        skv_call_free(s->call);
        s->call = NULL;
        stream_failed(s, why);
    }
}

/* 1: s->head holds the next line; 0: not arrived yet; -1: no more. */
static int
stream_head(skv_stream_t *s)
{
    const char *nl;

    if (s->have_head) {
        return 1;
    }
    nl = s->off < s->len ? memchr(s->buf + s->off, '\n', s->len - s->off)
                         : NULL;
    if (nl == NULL) {
        return s->eof || s->failed ? -1 : 0;
    }
    if (skv_keyline_parse(s->buf + s->off, (size_t) (nl - s->buf) - s->off,
                          &s->head) != SKV_OK) {
        snprintf(s->error, sizeof(s->error), "malformed listing line");
        s->failed = 1;
        s->off = s->len;
        skv_call_free(s->call);
        s->call = NULL;
        return -1;
    }
    s->have_head = 1;
    return 1;
}

static void
stream_pop(skv_stream_t *s)
{
    const char *nl = memchr(s->buf + s->off, '\n', s->len - s->off);
    size_t      line = (size_t) (nl - s->buf) - s->off + 1;
    size_t      klen = line - SKV_VERSION_TEXT_LEN - 4;

    memcpy(s->after, s->buf + s->off + SKV_VERSION_TEXT_LEN + 3, klen);
    s->after[klen] = '\0';
    s->off += line;
    s->have_head = 0;
    s->scanned++;
}

int
skv_merge_next(skv_stream_t *s, size_t n, unsigned char *key,
               size_t *key_len, skv_view_t *view)
{
    const skv_keyline_t *min = NULL;
    int                  st;

    for (size_t i = 0; i < n; i++) {
        st = stream_head(&s[i]);
        if (st == 0) {
            return 0;
        }
        if (st == 1 && (min == NULL
                        || skv_bytes_cmp(s[i].head.key, s[i].head.key_len,
                                       min->key, min->key_len) < 0)) {
            min = &s[i].head;
        }
    }
    if (min == NULL) {
        return -1;
    }
    *key_len = min->key_len;
    memcpy(key, min->key, min->key_len);
    for (size_t i = 0; i < n; i++) {
        memset(&view[i], 0, sizeof(view[i]));
        if (s[i].have_head && skv_bytes_cmp(s[i].head.key, s[i].head.key_len,
                                          key, *key_len) == 0) {
            view[i].state = SKV_COPY_PRESENT;
            view[i].version = s[i].head.version;
            view[i].tombstone = s[i].head.tombstone;
            stream_pop(&s[i]);
        } else if (s[i].have_head || s[i].eof) {
            view[i].state = SKV_COPY_ABSENT;
        } else {
            view[i].state = SKV_COPY_UNKNOWN;
        }
    }
    return 1;
}
