/*
 * skv_async.h - many HTTP requests at once from skv to storaged nodes,
 * through one libcurl multi handle (rebalance, cleanup, repair).
 *
 * A call is one request: method, URL, headers, an optional body from
 * memory.  Its answer is kept in memory (status, the simplekv headers, a
 * bounded body) or handed to an on_data callback as it streams (key
 * listings).  skv_loop_wait() drives every call and runs each finished
 * call's on_done; the callback owns the call from then on (frees it, or
 * keeps it to read the answer).  Every request carries the storaged token
 * when there is one.
 */
#ifndef SKV_ASYNC_H
#define SKV_ASYNC_H

#include <stddef.h>

#include <curl/curl.h>

#include "skv_version.h"

typedef struct {
    CURLM *multi;
    char  *auth;            /* "Authorization: Bearer ..." or NULL */
    long   timeout_ms;      /* whole request, unless a call says more */
    long   connect_timeout_ms;
    int    active;          /* calls started and not yet finished */
} skv_loop_t;

typedef struct skv_call skv_call_t;

typedef void (*skv_done_fn)(skv_call_t *call);
/* Streamed body data: return 0 to go on, 1 to pause the transfer (the
 * same data comes again after skv_call_resume). */
typedef int (*skv_data_fn)(skv_call_t *call, const char *data, size_t len);

struct skv_call {
    skv_loop_t         *loop;
    CURL               *easy;
    struct curl_slist  *hdrs;
    char               *url;
    char                method[8];
    int                 started, finished, paused;

    long                status;          /* 0: no answer */
    CURLcode            rc;
    char                err[CURL_ERROR_SIZE];
    char                version[SKV_VERSION_TEXT_LEN + 1]; /* "" if none */
    int                 tombstone;       /* X-Simplekv-Tombstone: 1 */
    char                ctype[256];      /* Content-Type, "" if none */

    char               *body;            /* NUL-ended */
    size_t              body_len, body_cap, body_max;
    int                 too_big;

    skv_data_fn         on_data;
    skv_done_fn         on_done;
    void               *ctx;             /* the caller's */
    int                 tag;             /* the caller's */
    double              started_at;      /* monotonic seconds */
};

int skv_loop_init(skv_loop_t *loop, const char *token, long timeout_ms,
                  long connect_timeout_ms);
void skv_loop_free(skv_loop_t *loop);

/* Monotonic seconds. */
double skv_now(void);

/* A call of method on base + path (path percent-encoded, from "/"); NULL
 * when out of memory. */
skv_call_t *skv_call_new(skv_loop_t *loop, const char *method,
                         const char *base, const char *path);
int skv_call_header(skv_call_t *call, const char *header);
/* Send len bytes of data as the body (not copied: keep it until done). */
void skv_call_body(skv_call_t *call, const void *data, size_t len);
/* Override the loop's timeout for this call (0: none). */
void skv_call_timeout(skv_call_t *call, long ms);
int skv_call_start(skv_call_t *call);
void skv_call_resume(skv_call_t *call);
/* Stop a call without running on_done, and free it. */
void skv_call_free(skv_call_t *call);

/* Run transfers for up to max_ms (less when something finishes); runs
 * on_done of every finished call.  -1 on a libcurl error. */
int skv_loop_wait(skv_loop_t *loop, int max_ms);

/* Start the call and drive the loop until it is finished (other calls'
 * callbacks run meanwhile); on_done is not used. */
int skv_call_run(skv_call_t *call);

/* A 2xx/3xx/4xx answer arrived (the transfer itself worked). */
int skv_call_answered(const skv_call_t *call);

/* One line for messages: "connection refused", "500 ...: detail". */
void skv_call_describe(const skv_call_t *call, char *buf, size_t cap);

#endif
