/*
 * skv_async.c - concurrent requests to storaged over one libcurl multi
 * handle (see skv_async.h).
 */
#include "skv_async.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "skv_cli.h"

#define BODY_MAX_DEFAULT (64 * 1024)

double
skv_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

int
skv_loop_init(skv_loop_t *loop, const char *token, long timeout_ms,
              long connect_timeout_ms)
{
    memset(loop, 0, sizeof(*loop));
    loop->timeout_ms = timeout_ms;
    loop->connect_timeout_ms = connect_timeout_ms;
    loop->multi = curl_multi_init();
    if (loop->multi == NULL) {
        return -1;
    }
    /* Keep connections to every node open between requests. */
    curl_multi_setopt(loop->multi, CURLMOPT_MAXCONNECTS, 512L);
    if (token != NULL) {
        size_t n = strlen(token) + 32;

        loop->auth = malloc(n);
        if (loop->auth == NULL) {
            return -1;
        }
        snprintf(loop->auth, n, "Authorization: Bearer %s", token);
    }
    return 0;
}

void
skv_loop_free(skv_loop_t *loop)
{
    if (loop->multi != NULL) {
        curl_multi_cleanup(loop->multi);
    }
    free(loop->auth);
    memset(loop, 0, sizeof(*loop));
}

/* Copy a header's value (after "Name:"), trimmed, control bytes dropped. */
static void
header_value(char *out, size_t cap, const char *v, size_t len)
{
    size_t n = 0;

    while (len > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        len--;
    }
    while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n'
                       || v[len - 1] == ' ')) {
        len--;
    }
    for (size_t i = 0; i < len && n + 1 < cap; i++) {
        if ((unsigned char) v[i] >= 0x20 && v[i] != 0x7f) {
            out[n++] = v[i];
        }
    }
    out[n] = '\0';
}

static int
has_name(const char *data, size_t len, const char *name)
{
    size_t n = strlen(name);

    return len > n && strncasecmp(data, name, n) == 0 && data[n] == ':';
}

static size_t
header_cb(char *data, size_t size, size_t nmemb, void *userdata)
{
    skv_call_t *c = userdata;
    size_t      len = size * nmemb;
    char        tmp[8];

    if (len > 5 && memcmp(data, "HTTP/", 5) == 0) {
        c->version[0] = '\0';
        c->ctype[0] = '\0';
        c->tombstone = 0;
    } else if (has_name(data, len, "X-Simplekv-Version")) {
        header_value(c->version, sizeof(c->version), data + 19, len - 19);
    } else if (has_name(data, len, "X-Simplekv-Tombstone")) {
        header_value(tmp, sizeof(tmp), data + 21, len - 21);
        c->tombstone = strcmp(tmp, "1") == 0;
    } else if (has_name(data, len, "Content-Type")) {
        header_value(c->ctype, sizeof(c->ctype), data + 13, len - 13);
    }
    return len;
}

static int
body_append(skv_call_t *c, const char *data, size_t len)
{
    if (c->body_len + len > c->body_max) {
        c->too_big = 1;
        return -1;
    }
    if (c->body_len + len + 1 > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap : 1024;
        char  *nb;

        while (cap < c->body_len + len + 1) {
            cap *= 2;
        }
        nb = realloc(c->body, cap);
        if (nb == NULL) {
            return -1;
        }
        c->body = nb;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, data, len);
    c->body_len += len;
    c->body[c->body_len] = '\0';
    return 0;
}

static size_t
write_cb(char *data, size_t size, size_t nmemb, void *userdata)
{
    skv_call_t *c = userdata;
    size_t      len = size * nmemb;
    long        status = 0;

    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
    if (c->on_data != NULL && status == 200) {
        if (c->on_data(c, data, len) != 0) {
            c->paused = 1;
            return CURL_WRITEFUNC_PAUSE;
        }
        return len;
    }
    return body_append(c, data, len) == 0 ? len : 0;
}

skv_call_t *
skv_call_new(skv_loop_t *loop, const char *method, const char *base,
             const char *path)
{
    skv_call_t *c = calloc(1, sizeof(*c));
    size_t      n = strlen(base) + strlen(path) + 1;

    if (c == NULL) {
        return NULL;
    }
    c->loop = loop;
    c->body_max = BODY_MAX_DEFAULT;
    snprintf(c->method, sizeof(c->method), "%s", method);
    c->url = malloc(n);
    c->easy = curl_easy_init();
    if (c->url == NULL || c->easy == NULL
        || (loop->auth != NULL && skv_call_header(c, loop->auth) != 0)
        || skv_call_header(c, "Expect:") != 0) {
        skv_call_free(c);
        return NULL;
    }
    snprintf(c->url, n, "%s%s", base, path);

    curl_easy_setopt(c->easy, CURLOPT_URL, c->url);
    curl_easy_setopt(c->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c->easy, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c->easy, CURLOPT_USERAGENT, "skv/" SKV_CLI_VERSION);
    curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->easy, CURLOPT_ERRORBUFFER, c->err);
    curl_easy_setopt(c->easy, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(c->easy, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);
    curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT_MS,
                     loop->connect_timeout_ms);
    curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, loop->timeout_ms);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c->easy, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c->easy, CURLOPT_CUSTOMREQUEST, c->method);
    }
    return c;
}

int
skv_call_header(skv_call_t *call, const char *header)
{
    struct curl_slist *l = curl_slist_append(call->hdrs, header);

    if (l == NULL) {
        return -1;
    }
    call->hdrs = l;
    return 0;
}

void
skv_call_body(skv_call_t *call, const void *data, size_t len)
{
    /* POSTFIELDS with the custom method: the body goes from memory, with
     * a Content-Length, and libcurl adds no Content-Type of its own once
     * the caller's headers name one ("Content-Type:" removes it). */
    curl_easy_setopt(call->easy, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t) len);
    curl_easy_setopt(call->easy, CURLOPT_POSTFIELDS, len ? data : "");
}

void
skv_call_timeout(skv_call_t *call, long ms)
{
    curl_easy_setopt(call->easy, CURLOPT_TIMEOUT_MS, ms);
}

int
skv_call_start(skv_call_t *call)
{
    curl_easy_setopt(call->easy, CURLOPT_HTTPHEADER, call->hdrs);
    if (curl_multi_add_handle(call->loop->multi, call->easy) != CURLM_OK) {
        return -1;
    }
    call->started = 1;
    call->started_at = skv_now();
    call->loop->active++;
    return 0;
}

void
skv_call_resume(skv_call_t *call)
{
    if (call->paused && call->started && !call->finished) {
        call->paused = 0;
        curl_easy_pause(call->easy, CURLPAUSE_CONT);
    }
}

void
skv_call_free(skv_call_t *call)
{
    if (call == NULL) {
        return;
    }
    if (call->started && !call->finished) {
        curl_multi_remove_handle(call->loop->multi, call->easy);
        call->loop->active--;
    }
    if (call->easy != NULL) {
        curl_easy_cleanup(call->easy);
    }
    curl_slist_free_all(call->hdrs);
    free(call->url);
    free(call->body);
    free(call);
}

int
skv_loop_wait(skv_loop_t *loop, int max_ms)
{
    CURLMsg *msg;
    int      running, left;

    if (curl_multi_perform(loop->multi, &running) != CURLM_OK) {
        return -1;
    }
    if (max_ms > 0 && curl_multi_poll(loop->multi, NULL, 0, max_ms, NULL)
                          != CURLM_OK) {
        return -1;
    }
    if (curl_multi_perform(loop->multi, &running) != CURLM_OK) {
        return -1;
    }
    while ((msg = curl_multi_info_read(loop->multi, &left)) != NULL) {
        skv_call_t *c = NULL;

        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &c);
        c->rc = msg->data.result;
        curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &c->status);
        curl_multi_remove_handle(loop->multi, c->easy);
        c->finished = 1;
        loop->active--;
        if (c->on_done != NULL) {
            c->on_done(c);
        }
    }
    return 0;
}

int
skv_call_run(skv_call_t *call)
{
    call->on_done = NULL;
    if (skv_call_start(call) != 0) {
        return -1;
    }
    while (!call->finished) {
        if (skv_loop_wait(call->loop, 100) != 0) {
            return -1;
        }
    }
    return 0;
}

int
skv_call_answered(const skv_call_t *call)
{
    return call->finished && call->rc == CURLE_OK && call->status >= 200
           && call->status < 500;
}

void
skv_call_describe(const skv_call_t *call, char *buf, size_t cap)
{
    json_t     *root = NULL;
    const char *e = NULL, *d = NULL;

    if (call->rc != CURLE_OK && (call->status == 0 || call->status < 300)) {
        snprintf(buf, cap, "%s",
                 call->err[0] ? call->err : curl_easy_strerror(call->rc));
        return;
    }
    if (call->body_len > 0) {
        root = json_loadb(call->body, call->body_len, 0, NULL);
        e = json_string_value(json_object_get(root, "error"));
        d = json_string_value(json_object_get(root, "detail"));
    }
    snprintf(buf, cap, "HTTP %ld%s%s%s%s", call->status, e ? ": " : "",
             e ? e : "", d ? ": " : "", d ? d : "");
    for (char *p = buf; *p != '\0'; p++) {
        if ((unsigned char) *p < 0x20) {
            *p = ' ';
        }
    }
    json_decref(root);
}
