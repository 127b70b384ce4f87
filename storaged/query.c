/*
 * query.c - arguments of a raw query string (see query.h).
 */
#include <string.h>

#include "query.h"

/* Visit the arguments named name; stop at the first when first is set. */
static unsigned
query_find(const char *query, const char *name, bool first, const char **val,
           size_t *val_len)
{
    size_t      name_len = strlen(name);
    const char *p = query, *end, *eq;
    unsigned    n = 0;

    while (p != NULL && *p != '\0') {
        end = strchr(p, '&');
        if (end == NULL) {
            end = p + strlen(p);
        }
        eq = memchr(p, '=', (size_t) (end - p));
        if ((size_t) ((eq != NULL ? eq : end) - p) == name_len
            && memcmp(p, name, name_len) == 0)
        {
            if (n++ == 0 && val != NULL) {
                *val = eq != NULL ? eq + 1 : end;
                *val_len = (size_t) (end - *val);
            }
            if (first) {
                break;
            }
        }
        p = *end == '&' ? end + 1 : end;
    }
    return n;
}

bool
query_get(const char *query, const char *name, const char **val,
          size_t *val_len)
{
    return query_find(query, name, true, val, val_len) > 0;
}

unsigned
query_count(const char *query, const char *name)
{
    return query_find(query, name, false, NULL, NULL);
}
