/*
 * query.h - arguments of a request's raw query string.
 *
 * libmicrohttpd's own argument parsing would turn '+' into a space, but in
 * a key (and a lease holder) '+' is itself; so http.c keeps the raw query
 * text and it is split here.  An argument without '=' has an empty value.
 */
#ifndef STORAGED_QUERY_H
#define STORAGED_QUERY_H

#include <stdbool.h>
#include <stddef.h>

/* The first occurrence of name (query may be NULL: no arguments); *val
 * points into query and is not NUL-terminated. */
bool query_get(const char *query, const char *name, const char **val,
               size_t *val_len);

/* How many times name occurs. */
unsigned query_count(const char *query, const char *name);

#endif
