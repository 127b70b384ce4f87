/*
 * epochs.c - the epoch fence over HTTP, the window and the repair
 * watermark endpoints (see epochs.h; the store side is store_meta.c).
 *
 * An epoch is a decimal number, 0 .. 2^64-1, in the header.  The window's
 * bounds travel as JSON integers, which jansson (and many JSON readers)
 * hold as signed 64-bit numbers: a window bound is at most 2^63-1.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "epochs.h"
#include "kv.h"
#include "reply.h"

#define EPOCH_DIGITS_MAX 20     /* 18446744073709551615 */

/* ---- the header --------------------------------------------------------- */

enum MHD_Result
epoch_header(http_server_t *srv, struct MHD_Connection *c, request_t *req)
{
    const char *v;

    if (req->epoch_headers > 1) {
        return reply_error(srv, c, req, MHD_HTTP_BAD_REQUEST, "bad epoch",
                           "more than one X-Simplekv-Epoch header");
    }
    v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, HDR_EPOCH);
    if (v == NULL) {
        req->has_epoch = false;
        return MHD_YES;
    }
    if (parse_epoch(v, &req->epoch) != 0) {
        return reply_error(srv, c, req, MHD_HTTP_BAD_REQUEST, "bad epoch",
                           "X-Simplekv-Epoch must be a decimal number, 0 "
                           "to 18446744073709551615");
    }
    req->has_epoch = true;
    return MHD_YES;
}

static void
window_text(const store_epochs_t *w, char *out, size_t size)
{
    snprintf(out, size, "%" PRIu64 "-%" PRIu64, w->min, w->max);
}

enum MHD_Result
epoch_refused(http_server_t *srv, struct MHD_Connection *c, request_t *req,
              const store_epochs_t *window)
{
    struct MHD_Response *resp;
    char                 win[48], detail[160];

    window_text(window, win, sizeof(win));
    if (req->has_epoch) {
        snprintf(detail, sizeof(detail), "epoch %" PRIu64 " is outside "
                 "this node's accepted window %s", req->epoch, win);
    } else {
        snprintf(detail, sizeof(detail), "no X-Simplekv-Epoch header; "
                 "this node accepts epochs %s", win);
    }
    resp = reply_json(json_pack("{s:s, s:s}", "error", "epoch refused",
                                "detail", detail));
    if (resp != NULL) {
        MHD_add_response_header(resp, HDR_EPOCHS, win);
    }
    return reply_send(srv, c, req, MHD_HTTP_MISDIRECTED_REQUEST, resp);
}

/* ---- /v1/epochs --------------------------------------------------------- */

json_t *
epochs_json(const store_epochs_t *w)
{
    if (!w->set) {
        return json_pack("{s:n, s:n}", "min", "max");
    }
    return json_pack("{s:I, s:I}", "min", (json_int_t) w->min,
                     "max", (json_int_t) w->max);
}

enum MHD_Result
epochs_get(http_server_t *srv, struct MHD_Connection *c, request_t *req)
{
    store_epochs_t w;

    store_epochs_get(srv->store, &w);
    return reply_send(srv, c, req, MHD_HTTP_OK, reply_json(epochs_json(&w)));
}

/* {"min": A, "max": B}, 0 <= A <= B <= 2^63-1, nothing else: 0 or -1. */
static int
parse_window(json_t *doc, uint64_t *min, uint64_t *max)
{
    json_t *jmin, *jmax;

    if (json_unpack(doc, "{s:o, s:o !}", "min", &jmin, "max", &jmax) != 0
        || !json_is_integer(jmin) || !json_is_integer(jmax)
        || json_integer_value(jmin) < 0
        || json_integer_value(jmin) > json_integer_value(jmax))
    {
        return -1;
    }
    *min = (uint64_t) json_integer_value(jmin);
    *max = (uint64_t) json_integer_value(jmax);
    return 0;
}

/* 409: the window would go back; the body carries the current one. */
static enum MHD_Result
epochs_conflict(http_server_t *srv, struct MHD_Connection *c, request_t *req,
                const store_epochs_t *cur)
{
    struct MHD_Response *resp;
    json_t              *doc;
    char                 win[48];

    window_text(cur, win, sizeof(win));
    doc = epochs_json(cur);
    if (doc != NULL) {
        json_object_set_new(doc, "error", json_string("epochs go forward"));
        json_object_set_new(doc, "detail",
                            json_string("neither bound of the window may "
                                        "decrease; min and max are the "
                                        "current window"));
    }
    resp = reply_json(doc);
    if (resp != NULL) {
        MHD_add_response_header(resp, HDR_EPOCHS, win);
    }
    return reply_send(srv, c, req, MHD_HTTP_CONFLICT, resp);
}

enum MHD_Result
epochs_put(http_server_t *srv, struct MHD_Connection *c, request_t *req,
           json_t *doc)
{
    store_epochs_t cur;
    uint64_t       min, max;
    store_rc_t     rc;
    char           err[STORE_ERR_MAX];

    if (parse_window(doc, &min, &max) != 0) {
        return reply_error(srv, c, req, MHD_HTTP_BAD_REQUEST, "bad epochs",
                           "the body must be {\"min\": A, \"max\": B} with "
                           "integers 0 <= A <= B <= 9223372036854775807");
    }
    rc = store_epochs_set(srv->store, min, max, &cur, err);
    if (rc == STORE_CONFLICT) {
        return epochs_conflict(srv, c, req, &cur);
    }
    if (rc != STORE_APPLIED && rc != STORE_UNCHANGED) {
        return reply_store_error(srv, c, req, "setting the epoch window", rc,
                                 err);
    }
    return reply_send(srv, c, req, MHD_HTTP_OK, reply_json(epochs_json(&cur)));
}

/* ---- /v1/repair-watermark ----------------------------------------------- */

static json_t *
repair_json(bool set, const skv_version_t *v)
{
    char text[SKV_VERSION_TEXT_LEN + 1];

    if (!set) {
        return json_pack("{s:n}", "version");
    }
    skv_version_format(v, text);
    return json_pack("{s:s}", "version", text);
}

enum MHD_Result
repair_get(http_server_t *srv, struct MHD_Connection *c, request_t *req)
{
    skv_version_t v;
    bool          set = store_repair_get(srv->store, &v);

    return reply_send(srv, c, req, MHD_HTTP_OK,
                      reply_json(repair_json(set, &v)));
}

static enum MHD_Result
repair_conflict(http_server_t *srv, struct MHD_Connection *c, request_t *req,
                const skv_version_t *cur)
{
    json_t *doc = repair_json(true, cur);

    if (doc != NULL) {
        json_object_set_new(doc, "error",
                            json_string("the repair watermark goes forward"));
        json_object_set_new(doc, "detail",
                            json_string("it may not decrease; version is "
                                        "the current one"));
    }
    return reply_send(srv, c, req, MHD_HTTP_CONFLICT, reply_json(doc));
}

enum MHD_Result
repair_put(http_server_t *srv, struct MHD_Connection *c, request_t *req,
           json_t *doc)
{
    const char      *text;
    size_t           len;
    skv_version_t    v, cur;
    store_rc_t       rc;
    enum MHD_Result  ret;
    char             err[STORE_ERR_MAX];

    if (json_unpack(doc, "{s:s% !}", "version", &text, &len) != 0
        || skv_version_parse(text, len, &v) != SKV_OK)
    {
        return reply_error(srv, c, req, MHD_HTTP_BAD_REQUEST, "bad version",
                           "the body must be {\"version\": V} with V 32 "
                           "lowercase hex digits, not all zero");
    }
    ret = kv_check_future(srv, c, req, &v);
    if (ret != MHD_YES || req->answered) {
        return ret;
    }
    rc = store_repair_set(srv->store, &v, &cur, err);
    if (rc == STORE_CONFLICT) {
        return repair_conflict(srv, c, req, &cur);
    }
    if (rc != STORE_APPLIED && rc != STORE_UNCHANGED) {
        return reply_store_error(srv, c, req, "setting the repair watermark",
                                 rc, err);
    }
    return reply_send(srv, c, req, MHD_HTTP_OK,
                      reply_json(repair_json(true, &cur)));
}
