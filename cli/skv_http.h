/*
 * skv_http.h - one HTTP request from skv to the router, through libcurl.
 *
 * The request streams: an upload is read from a FILE as libcurl sends it,
 * and a successful (2xx) answer can be written to a FILE as it arrives, so
 * values of any size pass through in constant memory.  Answers that are
 * not streamed (errors, JSON for ls and status) are kept in memory, within
 * a bound.  skv_req_fail() turns a failed request into the one-line error
 * message and the exit code every command uses.
 */
#ifndef SKV_HTTP_H
#define SKV_HTTP_H

#include <stdio.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "skv_cli.h"
#include "skv_progress.h"

typedef struct {
    CURL               *curl;
    struct curl_slist  *headers;
    const char         *method;
    char               *url;
    const char         *path;       /* url past the base, for messages */

    long                status;     /* 0 until a status line arrived */
    char                reason[64]; /* reason phrase of the last status */
    char                etag[80];
    char                repr_digest[512]; /* the answer's, if any */

    FILE               *sink;       /* 2xx bodies go here when set */
    int                 sink_errno; /* a write to sink failed */
    FILE               *source;     /* upload body */
    int                 source_errno; /* a read from source failed */
    char               *body;       /* other bodies, NUL-ended */
    size_t              body_len;
    size_t              body_cap;
    size_t              body_max;
    int                 body_truncated;

    EVP_MD_CTX         *hash;       /* SHA-256 of the body sent or
                                       streamed to the sink, if asked */
    skv_progress_t      progress;
    int                 curl_rc;    /* CURLcode of the transfer */
    char                errbuf[CURL_ERROR_SIZE];
} skv_req_t;

/* Once per process, before any request. */
int skv_http_global_init(void);

/*
 * Prepare method on opts->url + path (path starts with '/' and is already
 * percent-encoded).  Returns SKV_EXIT_OK or, after printing why,
 * SKV_EXIT_SERVER.
 */
int skv_req_init(skv_req_t *req, const skv_opts_t *opts, const char *method,
                 const char *path);

/* Upload f as the request body; size -1 when unknown (sent chunked). */
void skv_req_upload(skv_req_t *req, FILE *f, curl_off_t size);

/* Stream a 2xx answer's body to f instead of keeping it in memory. */
void skv_req_sink(skv_req_t *req, FILE *f);

/* Hash the body as it passes: the upload, or a 2xx body streamed to the
 * sink.  0, or -1 when out of memory. */
int skv_req_hash(skv_req_t *req);

/*
 * After a successful request with skv_req_hash: compare the hash with the
 * answer's Repr-Digest (RFC 9530, sha-256).  SKV_EXIT_OK when they match
 * or the answer has none (*checked says which); otherwise print why (a
 * mismatch: the value was damaged on the way) and return SKV_EXIT_SERVER.
 */
int skv_req_check_digest(skv_req_t *req, int *checked);

/* Keep at most max bytes of a body in memory (a bigger 2xx body fails). */
void skv_req_body_max(skv_req_t *req, size_t max);

/* Add a request header ("Name: value"); 0 or -1 when out of memory. */
int skv_req_header(skv_req_t *req, const char *header);

/*
 * Run the request.  Returns 0 when an HTTP answer arrived (whatever its
 * status; see req->status) and the body was stored, -1 otherwise (network
 * error, local write error): then skv_req_fail() explains.
 */
int skv_req_perform(skv_req_t *req);

/*
 * Print the one-line error for a failed request, e.g.
 *   skv: PUT /big: 413 Request Entity Too Large: value too large (...)
 * and return the exit code: SKV_EXIT_NOT_FOUND for a 404 answer,
 * SKV_EXIT_SERVER for everything else.
 */
int skv_req_fail(skv_req_t *req);

void skv_req_free(skv_req_t *req);

/* scheme://host[:port] of url, without its path: the router's status
 * page is at its root whatever location --url names.  malloc'd, or NULL. */
char *skv_url_origin(const char *url);

#endif
