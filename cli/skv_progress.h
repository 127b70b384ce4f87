/*
 * skv_progress.h - a one-line progress bar on stderr for large transfers,
 * driven by libcurl's CURLOPT_XFERINFOFUNCTION.
 */
#ifndef SKV_PROGRESS_H
#define SKV_PROGRESS_H

#include <curl/curl.h>

#include "skv_cli.h"

/* Values smaller than this finish too fast for a bar to help. */
#define SKV_PROGRESS_THRESHOLD (4 * 1024 * 1024)

typedef struct {
    int        enabled;   /* mode and terminal allow a bar at all */
    int        upload;    /* count the upload side, else the download */
    int        drawn;     /* something is on the line: finish must end it */
    double     started;   /* monotonic seconds */
    double     last_draw;
    curl_off_t now;
    curl_off_t total;     /* 0 when the size is unknown (chunked) */
} skv_progress_t;

void skv_progress_init(skv_progress_t *p, skv_progress_mode_t mode,
                       int upload);

/* Install as CURLOPT_XFERINFOFUNCTION with the skv_progress_t as data. */
int skv_progress_cb(void *data, curl_off_t dltotal, curl_off_t dlnow,
                    curl_off_t ultotal, curl_off_t ulnow);

/* Draw the final state and end the line, if a bar was shown. */
void skv_progress_finish(skv_progress_t *p);

#endif
