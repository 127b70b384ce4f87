/*
 * skv_status.c - human-readable text for skv_status_t.
 */
#include "skv_status.h"

const char *
skv_strerror(skv_status_t status)
{
    switch (status) {
    case SKV_OK:
        return "ok";
    case SKV_ERR_KEY_EMPTY:
        return "empty key";
    case SKV_ERR_KEY_TOO_LONG:
        return "key too long";
    case SKV_ERR_KEY_ENCODING:
        return "bad percent-encoding in key";
    case SKV_ERR_VERSION_SYNTAX:
        return "malformed version";
    case SKV_ERR_RECORD_TRUNCATED:
        return "truncated record";
    case SKV_ERR_RECORD_CORRUPT:
        return "corrupt record";
    case SKV_ERR_CONTENT_TYPE:
        return "content type too long";
    case SKV_ERR_NOSPACE:
        return "buffer too small";
    case SKV_ERR_LINE_SYNTAX:
        return "malformed key listing line";
    case SKV_ERR_TOKEN_EMPTY:
        return "the token (first line of the token file) is empty";
    case SKV_ERR_TOKEN_SYNTAX:
        return "the token holds a control character or an inner space";
    }
    return "unknown error";
}
