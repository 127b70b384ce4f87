/*
 * skv_token.h - the shared-secret token file, read the same way by the
 * router (simplekv_token_file) and storaged (--token-file).
 *
 * The token is the file's first line (up to the first LF, or the whole
 * file without one) with leading and trailing white space - space, tab,
 * CR - removed.  It is sent as "Authorization: Bearer <token>", so it must
 * be one HTTP header word: an empty token, or one that still holds a
 * control byte (0x00-0x1f, 0x7f) or a space after trimming, is refused.
 * Bytes from 0x80 up are kept as they are.
 */
#ifndef SKV_TOKEN_H
#define SKV_TOKEN_H

#include <stddef.h>

#include "skv_status.h"

/*
 * Find the token in the len bytes of a token file's contents.  On SKV_OK,
 * the token is data[*start .. *start + *token_len) (not NUL-terminated);
 * otherwise SKV_ERR_TOKEN_EMPTY or SKV_ERR_TOKEN_SYNTAX and the outputs are
 * left alone.
 */
skv_status_t skv_token_parse(const char *data, size_t len, size_t *start,
                             size_t *token_len);

#endif
