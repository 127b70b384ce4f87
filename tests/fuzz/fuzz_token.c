/*
 * fuzz_token.c - the token file's first line (skv_token_parse), read the
 * same way by the router and storaged.
 *
 * The input is a token file's contents (a heap copy of exactly its size).
 * Checked against the rule of skv_token.h written out again: the first
 * line (up to the first LF), space/tab/CR trimmed at both ends; empty is
 * SKV_ERR_TOKEN_EMPTY, a control byte, DEL or space left inside is
 * SKV_ERR_TOKEN_SYNTAX, else the token's place; outputs untouched on
 * failure.  A token found is found again in a file holding only it, with
 * or without a newline and surrounding white space.
 */
#include <string.h>

#include "fuzz.h"
#include "skv_token.h"

static bool
trimmed(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static skv_status_t
reference(const uint8_t *p, size_t len, size_t *start, size_t *tlen)
{
    size_t e = 0, b = 0;

    while (e < len && p[e] != '\n') {
        e++;
    }
    while (b < e && trimmed(p[b])) {
        b++;
    }
    while (e > b && trimmed(p[e - 1])) {
        e--;
    }
    if (b == e) {
        return SKV_ERR_TOKEN_EMPTY;
    }
    for (size_t i = b; i < e; i++) {
        if (p[i] < 0x21 || p[i] == 0x7f) {
            return SKV_ERR_TOKEN_SYNTAX;
        }
    }
    *start = b;
    *tlen = e - b;
    return SKV_OK;
}

static void
check_again(const uint8_t *token, size_t tlen, const char *before,
            const char *after)
{
    size_t  nb = strlen(before), na = strlen(after), start, len;
    char   *file;

    file = malloc(nb + tlen + na);
    FUZZ_CHECK(file != NULL);
    memcpy(file, before, nb);
    memcpy(file + nb, token, tlen);
    memcpy(file + nb + tlen, after, na);
    FUZZ_CHECK(skv_token_parse(file, nb + tlen + na, &start, &len)
               == SKV_OK);
    FUZZ_CHECK(start == nb && len == tlen);
    free(file);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char          *text;
    size_t         start = 777, tlen = 777, rstart = 0, rlen = 0;
    skv_status_t   rc, want;

    text = malloc(size > 0 ? size : 1);
    FUZZ_CHECK(text != NULL);
    if (size > 0) {
        memcpy(text, data, size);
    }

    rc = skv_token_parse(text, size, &start, &tlen);
    want = reference(data, size, &rstart, &rlen);
    FUZZ_CHECK(rc == want);
    if (rc != SKV_OK) {
        FUZZ_CHECK(start == 777 && tlen == 777);
    } else {
        FUZZ_CHECK(start == rstart && tlen == rlen);
        FUZZ_CHECK(tlen >= 1 && start + tlen <= size);
        FUZZ_CHECK(memchr(text, '\n', start + tlen) == NULL);
        check_again(data + start, tlen, "", "");
        check_again(data + start, tlen, "", "\n");
        check_again(data + start, tlen, " \t", "\r\nrest\n");
    }

    free(text);
    return 0;
}
