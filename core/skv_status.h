/*
 * skv_status.h - status codes shared by every simplekv program.
 *
 * Core functions return an skv_status_t instead of printing or aborting, so
 * that storaged, the nginx module and the CLI each map a failure to their own
 * reporting (an HTTP status, a log line, an exit code) in one place.
 */
#ifndef SKV_STATUS_H
#define SKV_STATUS_H

typedef enum {
    SKV_OK = 0,
    SKV_ERR_KEY_EMPTY,        /* key decodes to zero bytes */
    SKV_ERR_KEY_TOO_LONG,     /* key decodes to more than SKV_KEY_MAX bytes */
    SKV_ERR_KEY_ENCODING,     /* bad percent-escape in a key */
    SKV_ERR_VERSION_SYNTAX,   /* version text is not 32 lowercase hex digits */
    SKV_ERR_RECORD_TRUNCATED, /* stored record shorter than its header says */
    SKV_ERR_RECORD_CORRUPT,   /* unknown format byte or flags */
    SKV_ERR_CONTENT_TYPE,     /* content type longer than SKV_CONTENT_TYPE_MAX */
    SKV_ERR_NOSPACE,          /* output buffer too small */
    SKV_ERR_LINE_SYNTAX,      /* malformed key-listing line */
    SKV_ERR_TOKEN_EMPTY,      /* token file's first line is blank */
    SKV_ERR_TOKEN_SYNTAX      /* token holds a control byte or inner space */
} skv_status_t;

/* A short, stable, lowercase description ("key too long"). Never NULL. */
const char *skv_strerror(skv_status_t status);

#endif
