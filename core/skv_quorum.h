/*
 * skv_quorum.h - the router's quorum decisions, as plain functions over the
 * replies of one round.
 *
 * The nginx module records what each replica answered (skv_reply_t), asks
 * these functions what to do next (skv_action_t) and does it: wait, answer,
 * retry the write with a newer version, write the newest value back (read
 * repair), read again, or fail.  Nothing here knows about nginx, so every
 * rule of the consistency protocol is unit-tested on its own
 * (tests/unit/test_quorum.c).  docs/router.md explains the rules.
 */
#ifndef SKV_QUORUM_H
#define SKV_QUORUM_H

#include <stdbool.h>
#include <stddef.h>

#include "skv_version.h"

/* What one replica answered.  "Refused" and "failed" differ in what they
 * say about a write: a refused write was certainly not applied (the node
 * said no, or the request never reached it); a failed one may have been. */
typedef enum {
    SKV_REPLY_NONE = 0,     /* not asked in this round */
    SKV_REPLY_PENDING,      /* asked, no answer yet */
    SKV_REPLY_ACK,          /* write applied, or the node already had it */
    SKV_REPLY_CONFLICT,     /* 409: the node holds a newer version */
    SKV_REPLY_FOUND,        /* read: a value */
    SKV_REPLY_TOMBSTONE,    /* read: deleted, with the delete's version */
    SKV_REPLY_MISSING,      /* read: never written */
    SKV_REPLY_TOO_LARGE,    /* read: a value too large to hold in memory */
    SKV_REPLY_LISTED,       /* listing: a page of key lines */
    SKV_REPLY_REFUSED,      /* not applied: 4xx, 507, or never sent */
    SKV_REPLY_FAILED,       /* unknown: an error after the request was sent */
    SKV_REPLY_TIMEDOUT      /* unknown: no answer in time */
} skv_reply_kind_t;

/* A conflict's answer to "did you ever hold this write's version?"
 * (storaged's X-Simplekv-Held): "no" is certain, "unknown" is not. */
typedef enum {
    SKV_HELD_UNKNOWN = 0,
    SKV_HELD_YES,
    SKV_HELD_NO
} skv_held_t;

typedef struct {
    skv_reply_kind_t  kind;
    unsigned          status;   /* the node's HTTP status, 0 if none */
    skv_version_t     version;  /* zero when the answer carried none */
    skv_held_t        held;     /* CONFLICT: did it ever hold ours? */
} skv_reply_t;

/* The replies of one round, counted.  A reply still pending when the
 * round expired counts as timed out. */
typedef struct {
    size_t     asked;
    size_t     pending;
    size_t     acks;        /* writes: ACK */
    size_t     superseded;  /* writes: CONFLICT with a newer version of
                               this router's own clock */
    size_t     conflicts;   /* writes: CONFLICT */
    size_t     held_yes;    /* writes: CONFLICT, but held ours before */
    size_t     held_no;     /* writes: CONFLICT, never held ours */
    size_t     answered;    /* reads: FOUND, TOMBSTONE, MISSING, TOO_LARGE;
                               listings: LISTED */
    size_t     holders;     /* reads: answers that hold the newest version */
    size_t     refused;     /* definitely not applied */
    size_t     unknown;     /* FAILED or TIMEDOUT (or pending, expired) */
    size_t     timedout;
    long       newest;      /* reads: index of the newest answer, or -1 */
    unsigned   refusal;     /* the most telling refusal status (see .c) */
} skv_tally_t;

void skv_tally(const skv_reply_t *replies, size_t n, bool expired,
               uint64_t own_origin, skv_tally_t *t);

/* The same over the replies i with (member[i] & bit), all when member is
 * NULL (the sets of a transition: skv_quorum_sets.h). */
void skv_tally_set(const skv_reply_t *replies, size_t n,
                   const unsigned char *member, unsigned bit, bool expired,
                   uint64_t own_origin, skv_tally_t *t);

/* How many read answers among those replies hold exactly this version. */
size_t skv_holders_set(const skv_reply_t *replies, size_t n,
                       const unsigned char *member, unsigned bit,
                       const skv_version_t *version);

typedef enum {
    SKV_WAIT = 0,       /* the replicas still running decide */
    SKV_ANSWER,         /* success: answer the client */
    SKV_RETRY_WRITE,    /* write again with a version newer than all seen */
    SKV_REPAIR,         /* write the newest value back where it is missing */
    SKV_REREAD,         /* a newer write overtook the repair: read again */
    SKV_REFUSE,         /* definitely not applied: answer the refusal */
    SKV_FAIL            /* quorum not reached: 503, or 504 if timed out */
} skv_action_t;

typedef struct {
    size_t    n;            /* replicas of the key */
    size_t    w;            /* write quorum */
    size_t    r;            /* read quorum */
    size_t    prior;        /* repair: replicas already known to hold it */
    bool      versions_known; /* writes: the version was chosen above
                                 every version a query quorum held */
    bool      expired;      /* the round's deadline has passed */
    bool      tries_left;   /* another write or read round is allowed */
} skv_quorum_t;

skv_action_t skv_decide_write(const skv_tally_t *t, const skv_quorum_t *q);

/* Can no read ever return this write's value (so that it has had no
 * effect and never will)?  See skv_quorum.c. */
bool skv_write_never_visible(const skv_tally_t *t, const skv_quorum_t *q);
skv_action_t skv_decide_read(const skv_tally_t *t,
                             const skv_reply_t *replies,
                             const skv_quorum_t *q);
skv_action_t skv_decide_repair(const skv_tally_t *t, const skv_quorum_t *q);
skv_action_t skv_decide_list(const skv_tally_t *t, size_t nodes,
                             const skv_quorum_t *q);

/* A write's version query: done once N-W+1 replicas answered (then it
 * has met every write quorum). */
skv_action_t skv_decide_query(const skv_tally_t *t, const skv_quorum_t *q);

/* Listing needs this many nodes: with fewer, W or more nodes are missing
 * and an acknowledged write could be missed. */
size_t skv_list_needed(size_t nodes, size_t w);

/* Should a read reply that came after the client was answered get the
 * newest version written back? */
bool skv_needs_late_repair(const skv_reply_t *reply,
                           const skv_reply_t *newest);

bool skv_reply_is_read_answer(skv_reply_kind_t kind);

/* A definite refusal by a node (an HTTP status) and what it tells the
 * client: the client status and a JSON error word. */
bool skv_status_is_refusal(unsigned node_status);

#endif
