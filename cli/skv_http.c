/*
 * skv_http.c - the libcurl side of skv: set up one request, stream its body
 * in and out, and turn any failure into one line on stderr with the HTTP
 * status and the router's own words (the "error" and "detail" fields of its
 * JSON error body, parsed with jansson).
 */
#include "skv_http.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "skv_digest.h"

/* Error bodies are short JSON; this is plenty and bounds a hostile one. */
#define ERROR_BODY_MAX (64 * 1024)
/* Longest path shown in a message: keys may be 3 KiB once encoded. */
#define PATH_SHOWN_MAX 80

int
skv_http_global_init(void)
{
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);

    if (rc != CURLE_OK) {
        fprintf(stderr, "skv: cannot initialise libcurl: %s\n",
                curl_easy_strerror(rc));
        return SKV_EXIT_SERVER;
    }
    return SKV_EXIT_OK;
}

/* Copy at most cap-1 bytes of s into buf, control bytes made spaces, so
 * that a message from the network stays on one line of the terminal. */
static void
copy_printable(char *buf, size_t cap, const char *s, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len && n + 1 < cap; i++) {
        unsigned char c = (unsigned char) s[i];

        buf[n++] = (c < 0x20 || c == 0x7f) ? ' ' : (char) c;
    }
    buf[n] = '\0';
}

static size_t
header_cb(char *data, size_t size, size_t nmemb, void *userdata)
{
    skv_req_t *req = userdata;
    size_t     len = size * nmemb;
    size_t     end = len;

    while (end > 0 && (data[end - 1] == '\r' || data[end - 1] == '\n')) {
        end--;
    }

    /* Every response (a 100 Continue, then the real one) starts with a
     * status line: keep the last one's reason phrase for messages. */
    if (end > 5 && memcmp(data, "HTTP/", 5) == 0) {
        const char *sp = memchr(data, ' ', end);

        req->reason[0] = '\0';
        req->etag[0] = '\0';
        req->repr_digest[0] = '\0';
        if (sp != NULL) {
            const char *p = sp + 1;
            const char *stop = data + end;

            req->status = strtol(p, NULL, 10);
            while (p < stop && isdigit((unsigned char) *p)) {
                p++;
            }
            while (p < stop && *p == ' ') {
                p++;
            }
            copy_printable(req->reason, sizeof(req->reason), p,
                           (size_t) (stop - p));
        }
    } else if (end > 5 && strncasecmp(data, "ETag:", 5) == 0) {
        const char *p = data + 5;

        while (p < data + end && *p == ' ') {
            p++;
        }
        copy_printable(req->etag, sizeof(req->etag), p,
                       (size_t) (data + end - p));
    } else if (end > 12 && strncasecmp(data, "Repr-Digest:", 12) == 0) {
        const char *p = data + 12;

        while (p < data + end && *p == ' ') {
            p++;
        }
        copy_printable(req->repr_digest, sizeof(req->repr_digest), p,
                       (size_t) (data + end - p));
    }
    return len;
}

static int
body_append(skv_req_t *req, const char *data, size_t len)
{
    if (req->body_len + len > req->body_max) {
        len = req->body_max - req->body_len;
        req->body_truncated = 1;
    }
    if (req->body_len + len + 1 > req->body_cap) {
        size_t cap = req->body_cap ? req->body_cap : 4096;
        char  *nb;

        while (cap < req->body_len + len + 1) {
            cap *= 2;
        }
        nb = realloc(req->body, cap);
        if (nb == NULL) {
            return -1;
        }
        req->body = nb;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, len);
    req->body_len += len;
    req->body[req->body_len] = '\0';
    return 0;
}

static size_t
write_cb(char *data, size_t size, size_t nmemb, void *userdata)
{
    skv_req_t *req = userdata;
    size_t     len = size * nmemb;
    long       status = 0;
    int        ok;

    curl_easy_getinfo(req->curl, CURLINFO_RESPONSE_CODE, &status);
    ok = status >= 200 && status < 300;

    if (ok && req->sink != NULL) {
        if (req->hash != NULL
            && EVP_DigestUpdate(req->hash, data, len) != 1)
        {
            req->sink_errno = ENOMEM;
            return 0;
        }
        errno = 0;
        if (fwrite(data, 1, len, req->sink) != len) {
            req->sink_errno = errno ? errno : EIO;
            return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
        }
        return len;
    }

    if (body_append(req, data, len) != 0) {
        req->sink_errno = ENOMEM;
        return 0;
    }
    /* A cut error body still says enough; a cut answer we must parse
     * would be wrong, so that one stops the transfer. */
    if (req->body_truncated && ok) {
        return 0;
    }
    return len;
}

static size_t
read_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
    skv_req_t *req = userdata;
    size_t     n;

    errno = 0;
    n = fread(buf, size, nitems, req->source);

    /* libcurl's default reader cannot tell a read error from the end of
     * the file: a chunked upload would then store a truncated value. */
    if (n == 0 && ferror(req->source)) {
        req->source_errno = errno ? errno : EIO;
        return CURL_READFUNC_ABORT;
    }
    if (n > 0 && req->hash != NULL
        && EVP_DigestUpdate(req->hash, buf, n * size) != 1)
    {
        req->source_errno = ENOMEM;
        return CURL_READFUNC_ABORT;
    }
    return n;
}

int
skv_req_init(skv_req_t *req, const skv_opts_t *opts, const char *method,
             const char *path)
{
    size_t base_len = strlen(opts->url);
    size_t path_len = strlen(path);
    char   ua[64];

    memset(req, 0, sizeof(*req));
    req->method = method;
    req->body_max = ERROR_BODY_MAX;

    req->url = malloc(base_len + path_len + 1);
    req->curl = curl_easy_init();
    if (req->url == NULL || req->curl == NULL) {
        fprintf(stderr, "skv: out of memory\n");
        return SKV_EXIT_SERVER;
    }
    memcpy(req->url, opts->url, base_len);
    memcpy(req->url + base_len, path, path_len + 1);
    req->path = req->url + base_len;

    snprintf(ua, sizeof(ua), "skv/%s", SKV_CLI_VERSION);

    curl_easy_setopt(req->curl, CURLOPT_URL, req->url);
    curl_easy_setopt(req->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    /* The key "." is "/." in the URL: a path, not a dot-segment to squash. */
    curl_easy_setopt(req->curl, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(req->curl, CURLOPT_USERAGENT, ua);
    curl_easy_setopt(req->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(req->curl, CURLOPT_ERRORBUFFER, req->errbuf);
    curl_easy_setopt(req->curl, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(req->curl, CURLOPT_HEADERDATA, req);
    curl_easy_setopt(req->curl, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(req->curl, CURLOPT_WRITEDATA, req);
    curl_easy_setopt(req->curl, CURLOPT_CONNECTTIMEOUT, opts->connect_timeout);
    curl_easy_setopt(req->curl, CURLOPT_TIMEOUT, opts->timeout);
    /* No overall limit by default (values may be huge), but a transfer
     * that stalls completely for a minute is dead, not slow. */
    curl_easy_setopt(req->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(req->curl, CURLOPT_LOW_SPEED_TIME, 60L);

    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(req->curl, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") != 0 && strcmp(method, "PUT") != 0) {
        curl_easy_setopt(req->curl, CURLOPT_CUSTOMREQUEST, method);
    }

    skv_progress_init(&req->progress, opts->progress,
                      strcmp(method, "PUT") == 0);
    if (req->progress.enabled) {
        curl_easy_setopt(req->curl, CURLOPT_XFERINFOFUNCTION,
                         skv_progress_cb);
        curl_easy_setopt(req->curl, CURLOPT_XFERINFODATA, &req->progress);
        curl_easy_setopt(req->curl, CURLOPT_NOPROGRESS, 0L);
    }

    if (opts->verbose > 1) {
        curl_easy_setopt(req->curl, CURLOPT_VERBOSE, 1L);
    }
    return SKV_EXIT_OK;
}

void
skv_req_upload(skv_req_t *req, FILE *f, curl_off_t size)
{
    req->source = f;
    curl_easy_setopt(req->curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(req->curl, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(req->curl, CURLOPT_READDATA, req);
    if (size >= 0) {
        curl_easy_setopt(req->curl, CURLOPT_INFILESIZE_LARGE, size);
    }
}

void
skv_req_sink(skv_req_t *req, FILE *f)
{
    req->sink = f;
}

int
skv_req_hash(skv_req_t *req)
{
    req->hash = EVP_MD_CTX_new();
    if (req->hash == NULL
        || EVP_DigestInit_ex(req->hash, EVP_sha256(), NULL) != 1)
    {
        EVP_MD_CTX_free(req->hash);
        req->hash = NULL;
        return -1;
    }
    return 0;
}

int
skv_req_check_digest(skv_req_t *req, int *checked)
{
    unsigned char got[EVP_MAX_MD_SIZE];
    unsigned char want[SKV_SHA256_LEN];
    unsigned int  n = 0;
    const char   *what = req->sink != NULL ? "received" : "sent";

    *checked = 0;
    if (req->hash == NULL || req->repr_digest[0] == '\0') {
        return SKV_EXIT_OK;
    }
    if (skv_digest_parse(req->repr_digest, strlen(req->repr_digest), want)
        != 0)
    {
        fprintf(stderr, "skv: %s %s: the answer's Repr-Digest has no "
                "sha-256 or a malformed one: %.100s\n", req->method,
                req->path, req->repr_digest);
        return SKV_EXIT_SERVER;
    }
    if (EVP_DigestFinal_ex(req->hash, got, &n) != 1
        || n != SKV_SHA256_LEN)
    {
        fprintf(stderr, "skv: %s %s: cannot compute SHA-256\n",
                req->method, req->path);
        return SKV_EXIT_SERVER;
    }
    if (memcmp(got, want, SKV_SHA256_LEN) != 0) {
        fprintf(stderr, "skv: %s %s: digest mismatch: the SHA-256 of the "
                "value %s is not the one the router's Repr-Digest names "
                "(damaged on the way)\n", req->method, req->path, what);
        return SKV_EXIT_SERVER;
    }
    *checked = 1;
    return SKV_EXIT_OK;
}

void
skv_req_body_max(skv_req_t *req, size_t max)
{
    req->body_max = max;
}

int
skv_req_header(skv_req_t *req, const char *header)
{
    struct curl_slist *l = curl_slist_append(req->headers, header);

    if (l == NULL) {
        return -1;
    }
    req->headers = l;
    return 0;
}

int
skv_req_perform(skv_req_t *req)
{
    if (req->headers != NULL) {
        curl_easy_setopt(req->curl, CURLOPT_HTTPHEADER, req->headers);
    }
    req->curl_rc = curl_easy_perform(req->curl);
    skv_progress_finish(&req->progress);
    curl_easy_getinfo(req->curl, CURLINFO_RESPONSE_CODE, &req->status);

    if (req->curl_rc != CURLE_OK) {
        return -1;
    }
    if (req->sink != NULL && fflush(req->sink) != 0) {
        req->sink_errno = errno ? errno : EIO;
        return -1;
    }
    return 0;
}

/* "<error>: <detail>" from a JSON error body, else its first line. */
static void
server_message(const skv_req_t *req, char *buf, size_t cap)
{
    json_t     *root;
    const char *err = NULL, *detail = NULL;
    size_t      n;

    buf[0] = '\0';
    if (req->body_len == 0) {
        return;
    }

    root = json_loadb(req->body, req->body_len, 0, NULL);
    if (root != NULL && json_is_object(root)) {
        err = json_string_value(json_object_get(root, "error"));
        detail = json_string_value(json_object_get(root, "detail"));
    }
    if (err != NULL || detail != NULL) {
        char tmp[1024];

        snprintf(tmp, sizeof(tmp), "%s%s%s", err ? err : "",
                 err && detail && *detail ? ": " : "",
                 detail ? detail : "");
        copy_printable(buf, cap, tmp, strlen(tmp));
    } else {
        /* Not ours (a proxy's HTML page, plain text): show its first
         * non-blank line, which is usually the title or the message. */
        const char *p = req->body;

        while (*p == '\n' || *p == '\r' || *p == ' ' || *p == '\t') {
            p++;
        }
        /* An HTML page (nginx's own error pages) says nothing the
         * status line does not. */
        if (*p != '<') {
            n = strcspn(p, "\r\n");
            copy_printable(buf, cap, p, n);
        }
    }
    json_decref(root);
}

int
skv_req_fail(skv_req_t *req)
{
    char path[PATH_SHOWN_MAX + 4];
    char msg[512];

    copy_printable(path, PATH_SHOWN_MAX + 1, req->path, strlen(req->path));
    if (strlen(req->path) > PATH_SHOWN_MAX) {
        memcpy(path + PATH_SHOWN_MAX, "...", sizeof("..."));
    }

    if (req->source_errno != 0) {
        fprintf(stderr, "skv: %s %s: reading the value: %s\n", req->method,
                path, strerror(req->source_errno));
        return SKV_EXIT_SERVER;
    }
    if (req->sink_errno != 0) {
        fprintf(stderr, "skv: %s %s: writing the output: %s\n", req->method,
                path, strerror(req->sink_errno));
        return SKV_EXIT_SERVER;
    }
    if (req->body_truncated && req->status >= 200 && req->status < 300) {
        fprintf(stderr,
                "skv: %s %s: answer larger than %zu bytes, not accepted\n",
                req->method, path, req->body_max);
        return SKV_EXIT_SERVER;
    }
    if (req->curl_rc != CURLE_OK && req->status == 0) {
        /* Nothing answered: the router is down, unreachable or timed out. */
        fprintf(stderr, "skv: %s %s: %s (router %.*s)\n", req->method, path,
                req->errbuf[0] ? req->errbuf
                               : curl_easy_strerror(req->curl_rc),
                (int) (req->path - req->url), req->url);
        return SKV_EXIT_SERVER;
    }

    if (req->curl_rc != CURLE_OK && req->status < 300) {
        /* A good answer began, then the transfer broke. */
        fprintf(stderr, "skv: %s %s: %ld %s: transfer failed: %s\n",
                req->method, path, req->status, req->reason,
                req->errbuf[0] ? req->errbuf
                               : curl_easy_strerror(req->curl_rc));
        return SKV_EXIT_SERVER;
    }

    /* An error answer, complete or not: a router refusing an upload (413)
     * may close the connection before libcurl has sent it all, and its
     * message is still the one that explains the failure. */
    server_message(req, msg, sizeof(msg));
    fprintf(stderr, "skv: %s %s: %ld%s%s%s%s\n", req->method, path,
            req->status, req->reason[0] ? " " : "", req->reason,
            msg[0] ? ": " : "", msg);
    return req->status == 404 ? SKV_EXIT_NOT_FOUND : SKV_EXIT_SERVER;
}

void
skv_req_free(skv_req_t *req)
{
    if (req->curl != NULL) {
        curl_easy_cleanup(req->curl);
    }
    curl_slist_free_all(req->headers);
    EVP_MD_CTX_free(req->hash);
    free(req->url);
    free(req->body);
    memset(req, 0, sizeof(*req));
}

char *
skv_url_origin(const char *url)
{
    const char *p = strstr(url, "://");
    size_t      n;

    p = p != NULL ? p + 3 : url;
    n = (size_t) (p - url) + strcspn(p, "/?#");
    return strndup(url, n);
}
