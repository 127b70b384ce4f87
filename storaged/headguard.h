/*
 * headguard.h - a deadline for the request line and headers of a
 * connection's first request, however slowly they trickle in.
 *
 * libmicrohttpd's connection timeout counts seconds without traffic, so a
 * client that sends one header byte every few seconds (slowloris) would
 * keep a connection, and one of --max-connections slots, forever; the
 * token is checked only once the headers are complete.  Every connection
 * is registered when it opens and marked when its first request's headers
 * are complete; a thread shuts down (shutdown(2), both ways) the socket of
 * any connection still without them --first-request-timeout after it
 * opened, and libmicrohttpd then closes it as a connection the peer
 * closed.  A connection that has answered a request is a keep-alive one,
 * of a client that had the token (a 401 closes the connection), and only
 * the idle timeout applies to it.
 *
 * The entry is removed (headguard_close) from libmicrohttpd's
 * "connection closed" notification, which comes before the socket is
 * closed, under the same lock the thread holds while it shuts sockets
 * down: it never touches a socket number that was already reused.
 */

#ifndef STORAGED_HEADGUARD_H
#define STORAGED_HEADGUARD_H

typedef struct headguard headguard_t;
typedef struct headguard_entry headguard_entry_t;

/* Start the thread; NULL (with a message on stderr) on failure. */
headguard_t *headguard_start(unsigned timeout_ms);

/* A connection opened on socket fd: its entry (NULL when out of memory:
 * that connection then has only the inactivity timeout). */
headguard_entry_t *headguard_open(headguard_t *g, int fd);

/* Its first request's line and headers are complete. */
void headguard_done(headguard_entry_t *e);

/* The connection is closing: forget the entry and free it. */
void headguard_close(headguard_t *g, headguard_entry_t *e);

/* How many connections it shut down (for tests and stats). */
unsigned long headguard_shut_count(headguard_t *g);

/* Stop the thread and free g; entries still open are freed too. */
void headguard_stop(headguard_t *g);

#endif
