/*
 * skv_quorum.c - the router's quorum decisions (see skv_quorum.h).
 *
 * Writes (PUT, DELETE, read-repair write-backs) need W acknowledgements,
 * reads R answers, listings all but W-1 nodes.  W + R > N and 2W > N are
 * checked at `nginx -t`, so any read quorum meets any write quorum and any
 * two write quorums meet.
 */
#include "skv_quorum.h"

/* Which definite refusal tells the client most: a full disk first, then a
 * value the node will not take, then a token it does not accept, then any
 * other refusal, then "never sent" (status 0). */
static int
refusal_rank(unsigned status)
{
    switch (status) {
    case 507:
        return 5;
    case 413:
        return 4;
    case 401:
    case 403:
        return 3;
    case 0:
        return 1;
    default:
        return 2;
    }
}

bool
skv_status_is_refusal(unsigned node_status)
{
    if (node_status == 507) {
        return true;
    }

    /* 409 is a conflict (a newer version), 408 a node-side timeout */
    return node_status >= 400 && node_status < 500
           && node_status != 409 && node_status != 408;
}

bool
skv_reply_is_read_answer(skv_reply_kind_t kind)
{
    return kind == SKV_REPLY_FOUND || kind == SKV_REPLY_TOMBSTONE
           || kind == SKV_REPLY_MISSING || kind == SKV_REPLY_TOO_LARGE;
}

static void
tally_one(const skv_reply_t *rep, bool expired, uint64_t own_origin,
          skv_tally_t *t)
{
    switch (rep->kind) {
    case SKV_REPLY_NONE:
        return;

    case SKV_REPLY_PENDING:
        if (expired) {
            t->timedout++;
            t->unknown++;
        } else {
            t->pending++;
        }
        break;

    case SKV_REPLY_ACK:
        t->acks++;
        break;

    case SKV_REPLY_CONFLICT:
        t->conflicts++;
        /* a newer version from this router's own clock was issued after
         * this write's, by a write that began after this one did */
        if (rep->version.origin == own_origin) {
            t->superseded++;
        }
        if (rep->held == SKV_HELD_YES) {
            t->held_yes++;
        } else if (rep->held == SKV_HELD_NO) {
            t->held_no++;
        }
        break;

    case SKV_REPLY_FOUND:
    case SKV_REPLY_TOMBSTONE:
    case SKV_REPLY_MISSING:
    case SKV_REPLY_TOO_LARGE:
    case SKV_REPLY_LISTED:
        t->answered++;
        break;

    case SKV_REPLY_REFUSED:
        t->refused++;
        if (t->refused == 1
            || refusal_rank(rep->status) > refusal_rank(t->refusal))
        {
            t->refusal = rep->status;
        }
        break;

    case SKV_REPLY_FAILED:
        t->unknown++;
        break;

    case SKV_REPLY_TIMEDOUT:
        t->timedout++;
        t->unknown++;
        break;
    }

    t->asked++;
}

static bool
in_set(const unsigned char *member, unsigned bit, size_t i)
{
    return member == NULL || (member[i] & bit) != 0;
}

void
skv_tally_set(const skv_reply_t *replies, size_t n,
              const unsigned char *member, unsigned bit, bool expired,
              uint64_t own_origin, skv_tally_t *t)
{
    size_t  i;

    *t = (skv_tally_t) { .newest = -1 };

    for (i = 0; i < n; i++) {
        if (!in_set(member, bit, i)) {
            continue;
        }

        tally_one(&replies[i], expired, own_origin, t);

        if (!skv_reply_is_read_answer(replies[i].kind)) {
            continue;
        }

        if (t->newest < 0
            || skv_version_cmp(&replies[i].version,
                               &replies[t->newest].version) > 0)
        {
            t->newest = (long) i;
        }
    }

    if (t->newest >= 0) {
        t->holders = skv_holders_set(replies, n, member, bit,
                                     &replies[t->newest].version);
    }
}

void
skv_tally(const skv_reply_t *replies, size_t n, bool expired,
          uint64_t own_origin, skv_tally_t *t)
{
    skv_tally_set(replies, n, NULL, 0, expired, own_origin, t);
}

size_t
skv_holders_set(const skv_reply_t *replies, size_t n,
                const unsigned char *member, unsigned bit,
                const skv_version_t *version)
{
    size_t  i, holders;

    holders = 0;

    for (i = 0; i < n; i++) {
        if (in_set(member, bit, i)
            && skv_reply_is_read_answer(replies[i].kind)
            && skv_version_cmp(&replies[i].version, version) == 0)
        {
            holders++;
        }
    }

    return holders;
}

/*
 * A write with version v that met newer versions (409) from other routers
 * (docs/router.md has the full argument):
 *
 *  - Complete if W replicas acknowledged v, or v and newer versions of this
 *    router's own clock (those writes began after this one: it takes
 *    effect just before them).
 *  - Complete if W replicas held v at some time (acknowledged it, or
 *    answered 409 with X-Simplekv-Held: yes).  No write that completed
 *    before this one began can have a version above v: its W replicas held
 *    that version before v existed and could never take v, and two sets of
 *    W replicas meet (2W > N).  So v is ordered after every earlier write,
 *    and before the concurrent newer ones that overwrote it.
 *  - Never visible if the replicas that certainly never held v (409 with
 *    Held: no; each holds a newer version) are at least N-W+1 and N-R+1:
 *    fewer than W replicas can ever have held v, so no read returned it
 *    (a read answers only once W replicas hold its value), and every read
 *    quorum meets one of them, so none ever will.  Such a write had no
 *    effect: it is retried with a version above all seen.  The same holds
 *    when no replica can have applied v at all.
 *  - Anything else is unknown: 503, "may or may not have been applied".
 *
 * A write whose version was chosen above every version a query quorum
 * (N-W+1 replicas) held is above every write that completed before it
 * began; every newer version it meets is from a concurrent write, and it
 * is complete once W replicas hold its version or a newer one.
 */
/* Replicas that hold this write's version, or a newer one that counts. */
static size_t
write_holders(const skv_tally_t *t, const skv_quorum_t *q)
{
    size_t  newer;

    /*
     * After a version query every newer version comes from a concurrent
     * write (multi-writer ABD): each one counts.  Without it, only newer
     * versions of this router's own clock count, or replicas that held
     * this version before a newer one replaced it.
     */
    newer = q->versions_known ? t->conflicts
            : (t->superseded > t->held_yes ? t->superseded : t->held_yes);

    return t->acks + newer;
}

bool
skv_write_never_visible(const skv_tally_t *t, const skv_quorum_t *q)
{
    size_t  need;

    /* nothing applied it: every answer a refusal or a conflict, none of
     * them from a replica that held it (which would have had it from an
     * acknowledgement or an unknown outcome in the first place) */
    if (t->acks == 0 && t->unknown == 0 && t->pending == 0
        && t->held_yes == 0)
    {
        return true;
    }

    need = q->n - q->w + 1;
    if (q->n - q->r + 1 > need) {
        need = q->n - q->r + 1;
    }

    return q->n >= q->w && q->n >= q->r && t->held_no >= need;
}

skv_action_t
skv_decide_write(const skv_tally_t *t, const skv_quorum_t *q)
{
    if (write_holders(t, q) >= q->w) {
        return SKV_ANSWER;
    }

    if (!q->expired && t->pending) {
        if (write_holders(t, q) + t->pending >= q->w) {
            return SKV_WAIT;
        }

        /* wait to learn whether a retry is safe, or whether the write
         * was refused everywhere (a definite answer for the client) */
        if (t->conflicts || t->refused) {
            return SKV_WAIT;
        }
    }

    if (t->pending) {
        return SKV_FAIL;
    }

    if (t->conflicts && q->tries_left && skv_write_never_visible(t, q)) {
        return SKV_RETRY_WRITE;
    }

    if (t->acks == 0 && t->unknown == 0 && t->held_yes == 0 && t->refused) {
        return SKV_REFUSE;
    }

    return SKV_FAIL;
}

/*
 * A read waits for R answers and takes the newest version.  If fewer than
 * W replicas are known to hold it, it is written back (read repair) before
 * the client sees it: once returned, a value must survive any W-1 failures.
 */
skv_action_t
skv_decide_read(const skv_tally_t *t, const skv_reply_t *replies,
                const skv_quorum_t *q)
{
    if (t->answered < q->r) {
        if (!q->expired && t->answered + t->pending >= q->r) {
            return SKV_WAIT;
        }

        return SKV_FAIL;
    }

    /* nothing was ever written */
    if (skv_version_is_zero(&replies[t->newest].version)) {
        return SKV_ANSWER;
    }

    if (t->holders == t->answered) {
        if (t->holders >= q->w) {
            return SKV_ANSWER;
        }

        /* agreeing so far but short of W holders: the rest may agree */
        if (t->pending && !q->expired) {
            return SKV_WAIT;
        }
    }

    return SKV_REPAIR;
}

skv_action_t
skv_decide_repair(const skv_tally_t *t, const skv_quorum_t *q)
{
    size_t  holders;

    holders = q->prior + t->acks;

    if (holders >= q->w) {
        return SKV_ANSWER;
    }

    if (!q->expired && holders + t->pending >= q->w) {
        return SKV_WAIT;
    }

    /* a newer write overtook the value being repaired: read again */
    if (t->conflicts && q->tries_left) {
        return SKV_REREAD;
    }

    return SKV_FAIL;
}

skv_action_t
skv_decide_query(const skv_tally_t *t, const skv_quorum_t *q)
{
    size_t  need;

    need = skv_list_needed(q->n, q->w);

    if (t->answered >= need) {
        return SKV_ANSWER;
    }

    if (!q->expired && t->answered + t->pending >= need) {
        return SKV_WAIT;
    }

    return SKV_FAIL;
}

size_t
skv_list_needed(size_t nodes, size_t w)
{
    return nodes >= w ? nodes - w + 1 : 1;
}

skv_action_t
skv_decide_list(const skv_tally_t *t, size_t nodes, const skv_quorum_t *q)
{
    if (t->pending && !q->expired) {
        return SKV_WAIT;
    }

    return t->answered >= skv_list_needed(nodes, q->w) ? SKV_ANSWER
                                                       : SKV_FAIL;
}

/*
 * A replica that answered a read after the client was answered, with an
 * older version than the one returned: the quorum did not need it, but a
 * replica that is always the slowest (just restarted, cold cache) would
 * otherwise never be repaired by reads.
 */
bool
skv_needs_late_repair(const skv_reply_t *reply, const skv_reply_t *newest)
{
    return newest != NULL
           && !skv_version_is_zero(&newest->version)
           && (newest->kind == SKV_REPLY_FOUND
               || newest->kind == SKV_REPLY_TOMBSTONE)
           && skv_reply_is_read_answer(reply->kind)
           && reply->kind != SKV_REPLY_TOO_LARGE
           && skv_version_cmp(&reply->version, &newest->version) < 0;
}
