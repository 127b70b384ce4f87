/*
 * fuzz_quorum.c - the router's quorum decisions (core/skv_quorum.c and
 * core/skv_quorum_sets.c) on random rounds.
 *
 * From the input: N (1..64), W and R with 2W > N and W + R > N (what
 * `nginx -t` allows), the round's flags (expired, tries left, versions
 * known), this router's origin, one or two replica sets (a transition's
 * union of N..2N replies, each in the new set, the old set or both), and
 * each reply: a kind of the phase's vocabulary (what outcome.c produces
 * for a write, a read or version query, or a listing), an HTTP status, a
 * version (small numbers, so that they tie) and a 409's Held answer.
 *
 * Checked, for every set and for the sets combined (the rules are the
 * comments of skv_quorum.c and skv_quorum_sets.h):
 *  - the tally counts what a plain loop over the replies counts; newest
 *    is -1 or the index of a newest read answer; holders hold it;
 *  - a write ANSWERs exactly when W replicas hold its version or a newer
 *    one that counts (own clock's, held before, or any after a version
 *    query); RETRY_WRITE only with nothing pending, a conflict, tries
 *    left and skv_write_never_visible, which itself matches its rule (so
 *    never after an ACK, FAILED or TIMEDOUT unless N-W+1 and N-R+1
 *    replicas never held it); REFUSE only when no replica can have applied
 *    it; it waits while pending replies could still complete it;
 *  - a read ANSWERs only with R answers in every set and, unless nothing
 *    was written, W holders of the newest version agreeing with every
 *    answer in each set; otherwise REPAIR (or WAIT, or FAIL with fewer
 *    than R reachable answers in a set);
 *  - a repair ANSWERs exactly when prior + acks >= W in every set; a
 *    version query and a listing need N-W+1 answers in every set;
 *  - WAIT never once the round expired or nothing is pending (a request
 *    would hang); skv_combine never answers when a set fails and answers
 *    only what every set agrees on; outside a transition the _sets
 *    functions decide as the single-set ones over all replies; indices
 *    returned are in range; no decision writes to the replies.
 */
#include <string.h>

#include "fuzz.h"
#include "skv_quorum.h"
#include "skv_quorum_sets.h"

#define MAX_N        64
#define MAX_REPLIES  (2 * MAX_N)

typedef enum { PHASE_WRITE, PHASE_REPAIR, PHASE_READ, PHASE_QUERY,
               PHASE_LIST, PHASES } phase_t;

static const skv_reply_kind_t write_kinds[] = {
    SKV_REPLY_NONE, SKV_REPLY_PENDING, SKV_REPLY_ACK, SKV_REPLY_CONFLICT,
    SKV_REPLY_REFUSED, SKV_REPLY_FAILED, SKV_REPLY_TIMEDOUT
};
static const skv_reply_kind_t read_kinds[] = {
    SKV_REPLY_NONE, SKV_REPLY_PENDING, SKV_REPLY_FOUND,
    SKV_REPLY_TOMBSTONE, SKV_REPLY_MISSING, SKV_REPLY_TOO_LARGE,
    SKV_REPLY_REFUSED, SKV_REPLY_FAILED, SKV_REPLY_TIMEDOUT
};
static const skv_reply_kind_t list_kinds[] = {
    SKV_REPLY_NONE, SKV_REPLY_PENDING, SKV_REPLY_LISTED, SKV_REPLY_REFUSED,
    SKV_REPLY_FAILED, SKV_REPLY_TIMEDOUT
};
static const unsigned statuses[] = {
    0, 200, 201, 204, 400, 401, 403, 404, 408, 409, 413, 421, 500, 502,
    503, 504, 507
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

typedef struct {
    skv_reply_t    replies[MAX_REPLIES];
    unsigned char  member[MAX_REPLIES];
    size_t         n;           /* replies */
    skv_sets_t     sets;
    skv_quorum_t   q;
    uint64_t       own;
    size_t         prior[2];
    phase_t        phase;
} round_t;

static bool
in_set(const unsigned char *member, unsigned bit, size_t i)
{
    return member == NULL || (member[i] & bit) != 0;
}

static size_t
set_count(const round_t *rd)
{
    return rd->sets.transition ? 2 : 1;
}

static const unsigned char *
set_member(const round_t *rd)
{
    return rd->sets.transition ? rd->member : NULL;
}

static unsigned
set_bit(size_t s)
{
    return s == 0 ? SKV_SET_NEW : SKV_SET_OLD;
}

static size_t
max_size(size_t a, size_t b)
{
    return a > b ? a : b;
}

/* skv_tally_set's counts, by a plain loop, compared field by field. */
static void
check_tally(const round_t *rd, const unsigned char *member, unsigned bit,
            uint64_t own, const skv_tally_t *t)
{
    skv_tally_t  e;
    bool         any_507 = false, refusal_seen = false;

    memset(&e, 0, sizeof(e));
    e.newest = -1;
    for (size_t i = 0; i < rd->n; i++) {
        const skv_reply_t *r = &rd->replies[i];

        if (!in_set(member, bit, i) || r->kind == SKV_REPLY_NONE) {
            continue;
        }
        e.asked++;
        switch (r->kind) {
        case SKV_REPLY_PENDING:
            if (rd->q.expired) {
                e.unknown++;
                e.timedout++;
            } else {
                e.pending++;
            }
            break;
        case SKV_REPLY_ACK:
            e.acks++;
            break;
        case SKV_REPLY_CONFLICT:
            e.conflicts++;
            e.superseded += r->version.origin == own;
            e.held_yes += r->held == SKV_HELD_YES;
            e.held_no += r->held == SKV_HELD_NO;
            break;
        case SKV_REPLY_FOUND:
        case SKV_REPLY_TOMBSTONE:
        case SKV_REPLY_MISSING:
        case SKV_REPLY_TOO_LARGE:
            e.answered++;
            if (e.newest < 0
                || skv_version_cmp(&r->version,
                                   &rd->replies[e.newest].version) > 0) {
                e.newest = (long) i;
            }
            break;
        case SKV_REPLY_LISTED:
            e.answered++;
            break;
        case SKV_REPLY_REFUSED:
            e.refused++;
            any_507 |= r->status == 507;
            refusal_seen |= r->status == t->refusal;
            break;
        case SKV_REPLY_FAILED:
            e.unknown++;
            break;
        case SKV_REPLY_TIMEDOUT:
            e.unknown++;
            e.timedout++;
            break;
        default:
            FUZZ_CHECK(!"a kind outside the enum");
        }
    }
    if (e.newest >= 0) {
        for (size_t i = 0; i < rd->n; i++) {
            if (in_set(member, bit, i)
                && skv_reply_is_read_answer(rd->replies[i].kind)
                && skv_version_cmp(&rd->replies[i].version,
                                   &rd->replies[e.newest].version) == 0) {
                e.holders++;
            }
        }
    }

    FUZZ_CHECK(t->asked == e.asked);
    FUZZ_CHECK(t->pending == e.pending);
    FUZZ_CHECK(t->acks == e.acks);
    FUZZ_CHECK(t->superseded == e.superseded);
    FUZZ_CHECK(t->conflicts == e.conflicts);
    FUZZ_CHECK(t->held_yes == e.held_yes);
    FUZZ_CHECK(t->held_no == e.held_no);
    FUZZ_CHECK(t->answered == e.answered);
    FUZZ_CHECK(t->holders == e.holders);
    FUZZ_CHECK(t->refused == e.refused);
    FUZZ_CHECK(t->unknown == e.unknown);
    FUZZ_CHECK(t->timedout == e.timedout);
    FUZZ_CHECK(t->newest >= -1 && t->newest < (long) rd->n);
    FUZZ_CHECK(t->newest == e.newest);
    FUZZ_CHECK(t->holders <= t->answered);
    FUZZ_CHECK(t->timedout <= t->unknown);
    FUZZ_CHECK(t->pending == 0 || !rd->q.expired);
    if (e.refused == 0) {
        FUZZ_CHECK(t->refusal == 0);
    } else {
        FUZZ_CHECK(refusal_seen);
        FUZZ_CHECK(!any_507 || t->refusal == 507);
    }
    if (e.newest >= 0) {
        FUZZ_CHECK(skv_holders_set(rd->replies, rd->n, member, bit,
                                   &rd->replies[e.newest].version)
                   == e.holders);
    }
}

static void
tally_set(const round_t *rd, size_t s, uint64_t own, skv_tally_t *t)
{
    skv_tally_set(rd->replies, rd->n, set_member(rd), set_bit(s),
                  rd->q.expired, own, t);
    check_tally(rd, set_member(rd), set_bit(s), own, t);
}

static void
check_all(const round_t *rd, uint64_t own, const skv_tally_t *all)
{
    skv_tally_t  t;

    check_tally(rd, NULL, 0, own, all);
    skv_tally(rd->replies, rd->n, rd->q.expired, own, &t);
    check_tally(rd, NULL, 0, own, &t);
}

/* Never wait once nothing can wake the request, or the round is over. */
static void
check_wait(skv_action_t a, const skv_tally_t *t, const skv_quorum_t *q)
{
    if (a == SKV_WAIT) {
        FUZZ_CHECK(!q->expired);
        FUZZ_CHECK(t->pending > 0);
    }
}

/* ---- writes ---- */

static size_t
write_holders(const skv_tally_t *t, const skv_quorum_t *q)
{
    size_t own = t->acks + t->superseded, held = t->acks + t->held_yes;

    return q->versions_known ? t->acks + t->conflicts : max_size(own, held);
}

static bool
never_visible(const skv_tally_t *t, const skv_quorum_t *q)
{
    return (t->acks == 0 && t->unknown == 0 && t->pending == 0
            && t->held_yes == 0)
           || t->held_no >= max_size(q->n - q->w + 1, q->n - q->r + 1);
}

static skv_action_t
check_write_one(const skv_tally_t *t, const skv_quorum_t *q)
{
    skv_action_t  a = skv_decide_write(t, q);
    size_t        holders = write_holders(t, q);

    FUZZ_CHECK(a == SKV_WAIT || a == SKV_ANSWER || a == SKV_RETRY_WRITE
               || a == SKV_REFUSE || a == SKV_FAIL);
    FUZZ_CHECK(skv_write_never_visible(t, q) == never_visible(t, q));
    FUZZ_CHECK((a == SKV_ANSWER) == (holders >= q->w));
    check_wait(a, t, q);
    /* pending replies could still complete it: no verdict yet */
    if (!q->expired && t->pending > 0 && holders + t->pending >= q->w) {
        FUZZ_CHECK(a == SKV_WAIT || a == SKV_ANSWER);
    }
    if (a == SKV_RETRY_WRITE) {
        FUZZ_CHECK(t->pending == 0);
        FUZZ_CHECK(t->conflicts > 0);
        FUZZ_CHECK(q->tries_left);
        FUZZ_CHECK(never_visible(t, q));
        /* a replica that applied it, or may have: only when fewer than
         * W can ever hold it and every read quorum meets one that won't */
        if (t->acks > 0 || t->unknown > 0) {
            FUZZ_CHECK(t->held_no >= q->n - q->w + 1);
            FUZZ_CHECK(t->held_no >= q->n - q->r + 1);
        }
    }
    if (a == SKV_REFUSE) {
        FUZZ_CHECK(t->pending == 0 && t->acks == 0 && t->unknown == 0
                   && t->held_yes == 0);
        FUZZ_CHECK(t->refused > 0);
    }
    return a;
}

/* skv_combine, by its definition in skv_quorum_sets.h */
static skv_action_t
expected_combine(const skv_action_t *each, size_t nsets)
{
    for (size_t s = 0; s < nsets; s++) {
        if (each[s] == SKV_FAIL) {
            return SKV_FAIL;
        }
    }
    for (size_t s = 0; s < nsets; s++) {
        if (each[s] == SKV_WAIT) {
            return SKV_WAIT;
        }
    }
    for (size_t s = 1; s < nsets; s++) {
        if (each[s] != each[0]) {
            return SKV_FAIL;
        }
    }
    return each[0];
}

static void
check_write(const round_t *rd)
{
    skv_tally_t   t, all;
    skv_action_t  each[2], a;

    for (size_t s = 0; s < set_count(rd); s++) {
        tally_set(rd, s, rd->own, &t);
        each[s] = check_write_one(&t, &rd->q);
    }
    a = skv_decide_write_sets(rd->replies, rd->n, &rd->sets, &rd->q,
                              rd->own, &all);
    check_all(rd, rd->own, &all);
    FUZZ_CHECK(a == expected_combine(each, set_count(rd)));
    check_wait(a, &all, &rd->q);
    if (!rd->sets.transition) {
        FUZZ_CHECK(a == skv_decide_write(&all, &rd->q));
    }
}

/* ---- reads ---- */

static skv_action_t
check_read_one(const round_t *rd, const skv_tally_t *t)
{
    const skv_quorum_t *q = &rd->q;
    skv_action_t        a = skv_decide_read(t, rd->replies, q);
    bool                zero, agreed;

    FUZZ_CHECK(a == SKV_WAIT || a == SKV_ANSWER || a == SKV_REPAIR
               || a == SKV_FAIL);
    check_wait(a, t, q);
    if (t->answered < q->r) {
        FUZZ_CHECK((a == SKV_WAIT)
                   == (!q->expired && t->answered + t->pending >= q->r));
        FUZZ_CHECK(a == SKV_WAIT || a == SKV_FAIL);
        return a;
    }
    FUZZ_CHECK(a != SKV_FAIL);
    FUZZ_CHECK(t->newest >= 0 && t->newest < (long) rd->n);
    zero = skv_version_is_zero(&rd->replies[t->newest].version);
    agreed = t->holders == t->answered && t->holders >= q->w;
    FUZZ_CHECK((a == SKV_ANSWER) == (zero || agreed));
    if (a == SKV_WAIT) {
        FUZZ_CHECK(t->holders == t->answered);
    }
    return a;
}

static void
check_read(const round_t *rd)
{
    skv_tally_t    t, all;
    skv_action_t   a;
    long           newest = -2;
    bool           reach_all = true, hopeless = false, zero, agreed_all;

    agreed_all = true;
    a = skv_decide_read_sets(rd->replies, rd->n, &rd->sets, &rd->q, &all,
                             &newest);
    check_all(rd, 0, &all);
    FUZZ_CHECK(newest == all.newest);
    FUZZ_CHECK(newest >= -1 && newest < (long) rd->n);
    FUZZ_CHECK(a == SKV_WAIT || a == SKV_ANSWER || a == SKV_REPAIR
               || a == SKV_FAIL);
    check_wait(a, &all, &rd->q);

    for (size_t s = 0; s < set_count(rd); s++) {
        tally_set(rd, s, 0, &t);
        check_read_one(rd, &t);
        if (t.answered < rd->q.r) {
            reach_all = false;
            if (rd->q.expired || t.answered + t.pending < rd->q.r) {
                hopeless = true;
            }
        } else if (newest >= 0) {
            size_t holders = skv_holders_set(rd->replies, rd->n,
                                             set_member(rd), set_bit(s),
                                             &rd->replies[newest].version);

            FUZZ_CHECK(holders <= t.answered);
            agreed_all &= holders == t.answered && holders >= rd->q.w;
        }
    }

    if (hopeless) {
        FUZZ_CHECK(a == SKV_FAIL);
    }
    if (a == SKV_FAIL) {
        FUZZ_CHECK(hopeless);
    }
    if (a == SKV_ANSWER || a == SKV_REPAIR) {
        FUZZ_CHECK(reach_all);
        FUZZ_CHECK(newest >= 0);
    }
    if (reach_all) {
        FUZZ_CHECK(newest >= 0);
        zero = skv_version_is_zero(&rd->replies[newest].version);
        FUZZ_CHECK((a == SKV_ANSWER) == (zero || agreed_all));
    }
    if (!rd->sets.transition) {
        FUZZ_CHECK(a == skv_decide_read(&all, rd->replies, &rd->q));
    }
}

/* ---- repairs ---- */

static skv_action_t
check_repair_one(const skv_tally_t *t, const skv_quorum_t *q)
{
    skv_action_t  a = skv_decide_repair(t, q);
    size_t        holders = q->prior + t->acks;

    FUZZ_CHECK(a == SKV_WAIT || a == SKV_ANSWER || a == SKV_REREAD
               || a == SKV_FAIL);
    FUZZ_CHECK((a == SKV_ANSWER) == (holders >= q->w));
    check_wait(a, t, q);
    if (!q->expired && holders < q->w && holders + t->pending >= q->w) {
        FUZZ_CHECK(a == SKV_WAIT);
    }
    if (a == SKV_REREAD) {
        FUZZ_CHECK(t->conflicts > 0 && q->tries_left);
    }
    return a;
}

static void
check_repair(const round_t *rd)
{
    skv_tally_t   t, all;
    skv_quorum_t  qs = rd->q;
    skv_action_t  a, each[2];
    bool          reread_cause = false, blocked = false;

    for (size_t s = 0; s < set_count(rd); s++) {
        tally_set(rd, s, 0, &t);
        qs.prior = rd->prior[s];
        each[s] = check_repair_one(&t, &qs);
        blocked |= each[s] == SKV_FAIL || each[s] == SKV_WAIT;
        reread_cause |= each[s] == SKV_REREAD;
    }
    a = skv_decide_repair_sets(rd->replies, rd->n, &rd->sets, rd->prior,
                               &rd->q, &all);
    check_all(rd, 0, &all);
    check_wait(a, &all, &rd->q);
    FUZZ_CHECK(a == SKV_WAIT || a == SKV_ANSWER || a == SKV_REREAD
               || a == SKV_FAIL);
    for (size_t s = 0; s < set_count(rd); s++) {
        if (each[s] == SKV_FAIL) {
            FUZZ_CHECK(a == SKV_FAIL);
        }
        if (a == SKV_ANSWER) {
            FUZZ_CHECK(each[s] == SKV_ANSWER);
        }
    }
    if (a == SKV_REREAD) {
        FUZZ_CHECK(reread_cause && !blocked);
    }
    if (!blocked && reread_cause) {
        FUZZ_CHECK(a == SKV_REREAD);
    }
    if (!rd->sets.transition) {
        qs.prior = rd->prior[0];
        FUZZ_CHECK(a == skv_decide_repair(&all, &qs));
    }
}

/* ---- version queries and listings ---- */

static void
check_query(const round_t *rd)
{
    skv_tally_t   t, all;
    skv_action_t  a, each[2];
    size_t        need = skv_list_needed(rd->q.n, rd->q.w);

    FUZZ_CHECK(need == rd->q.n - rd->q.w + 1);
    for (size_t s = 0; s < set_count(rd); s++) {
        tally_set(rd, s, 0, &t);
        each[s] = skv_decide_query(&t, &rd->q);
        FUZZ_CHECK((each[s] == SKV_ANSWER) == (t.answered >= need));
        FUZZ_CHECK((each[s] == SKV_WAIT)
                   == (t.answered < need && !rd->q.expired
                       && t.answered + t.pending >= need));
        FUZZ_CHECK(each[s] == SKV_ANSWER || each[s] == SKV_WAIT
                   || each[s] == SKV_FAIL);
        check_wait(each[s], &t, &rd->q);
    }
    a = skv_decide_query_sets(rd->replies, rd->n, &rd->sets, &rd->q, &all);
    check_all(rd, 0, &all);
    FUZZ_CHECK(a == expected_combine(each, set_count(rd)));
    check_wait(a, &all, &rd->q);
}

static void
check_list(const round_t *rd)
{
    skv_tally_t   t;
    skv_action_t  a;
    size_t        need = skv_list_needed(rd->n, rd->q.w);

    skv_tally(rd->replies, rd->n, rd->q.expired, 0, &t);
    check_tally(rd, NULL, 0, 0, &t);
    a = skv_decide_list(&t, rd->n, &rd->q);
    FUZZ_CHECK(a == SKV_WAIT || a == SKV_ANSWER || a == SKV_FAIL);
    FUZZ_CHECK((a == SKV_WAIT) == (t.pending > 0 && !rd->q.expired));
    if (a != SKV_WAIT) {
        FUZZ_CHECK((a == SKV_ANSWER) == (t.answered >= need));
    }
    /* every W nodes and every `need` nodes share one */
    FUZZ_CHECK(need >= 1);
    if (rd->n >= rd->q.w) {
        FUZZ_CHECK(need + rd->q.w == rd->n + 1);
    }
}

/* ---- small functions on their own ---- */

static void
check_misc(fuzz_in_t *in, const round_t *rd)
{
    skv_action_t  each[4];
    size_t        nsets = fuzz_range(in, 1, 4);
    skv_action_t  a;
    unsigned      status;
    const skv_reply_t *reply, *newest;

    for (size_t s = 0; s < nsets; s++) {
        each[s] = (skv_action_t) fuzz_range(in, SKV_WAIT, SKV_FAIL);
    }
    a = skv_combine(each, nsets);
    FUZZ_CHECK(a == expected_combine(each, nsets));
    for (size_t s = 0; s < nsets; s++) {
        /* never an answer when a set fails; only what all agree on */
        if (each[s] == SKV_FAIL) {
            FUZZ_CHECK(a == SKV_FAIL);
        }
        if (a != SKV_FAIL && a != SKV_WAIT) {
            FUZZ_CHECK(each[s] == a);
        }
    }

    status = (unsigned) fuzz_u8(in) << 8 | fuzz_u8(in);
    status %= 1000;
    FUZZ_CHECK(skv_status_is_refusal(status)
               == (status == 507
                   || (status >= 400 && status < 500 && status != 408
                       && status != 409)));

    reply = &rd->replies[fuzz_u8(in) % rd->n];
    newest = &rd->replies[fuzz_u8(in) % rd->n];
    FUZZ_CHECK(!skv_needs_late_repair(reply, NULL));
    if (skv_needs_late_repair(reply, newest)) {
        FUZZ_CHECK(newest->kind == SKV_REPLY_FOUND
                   || newest->kind == SKV_REPLY_TOMBSTONE);
        FUZZ_CHECK(!skv_version_is_zero(&newest->version));
        FUZZ_CHECK(skv_reply_is_read_answer(reply->kind)
                   && reply->kind != SKV_REPLY_TOO_LARGE);
        FUZZ_CHECK(skv_version_cmp(&reply->version, &newest->version) < 0);
    }
    FUZZ_CHECK(!skv_needs_late_repair(newest, newest));
}

static void
read_round(fuzz_in_t *in, round_t *rd)
{
    size_t  n, w, r;
    uint8_t b;

    memset(rd, 0, sizeof(*rd));
    rd->phase = (phase_t) (fuzz_u8(in) % PHASES);

    /* mostly small clusters, sometimes up to SKV_PLACE_MAX */
    b = fuzz_u8(in);
    n = (b & 0x80) ? 1 + (b & 0x7f) % MAX_N : 1 + (b & 0x7f) % 7;
    w = fuzz_range(in, n / 2 + 1, n);      /* 2W > N */
    r = fuzz_range(in, n - w + 1, n);      /* W + R > N */
    rd->q.n = n;
    rd->q.w = w;
    rd->q.r = r;

    b = fuzz_u8(in);
    rd->q.expired = b & 1;
    rd->q.tries_left = b & 2;
    rd->q.versions_known = b & 4;
    rd->sets.transition = b & 8;
    rd->own = 1 + fuzz_u8(in) % 3;
    rd->q.prior = fuzz_range(in, 0, n);
    rd->prior[0] = fuzz_range(in, 0, n);
    rd->prior[1] = fuzz_range(in, 0, n);

    rd->n = rd->sets.transition ? fuzz_range(in, n, 2 * n) : n;
    rd->sets.member = rd->member;

    for (size_t i = 0; i < rd->n; i++) {
        skv_reply_t *rep = &rd->replies[i];
        uint8_t      k = fuzz_u8(in);

        switch (rd->phase) {
        case PHASE_WRITE:
        case PHASE_REPAIR:
            rep->kind = write_kinds[k % COUNT(write_kinds)];
            break;
        case PHASE_LIST:
            rep->kind = list_kinds[k % COUNT(list_kinds)];
            break;
        default:
            rep->kind = read_kinds[k % COUNT(read_kinds)];
            break;
        }
        rep->status = statuses[fuzz_u8(in) % COUNT(statuses)];
        b = fuzz_u8(in);
        if (b == 0xff) {
            rep->version.hlc = fuzz_u64(in);
            rep->version.origin = fuzz_u64(in);
        } else {
            rep->version.hlc = b & 3;
            rep->version.origin = (b >> 2) & 3;
        }
        rep->held = (skv_held_t) ((b >> 4) % 3);
        /* outside a transition the bits must not matter */
        rd->member[i] = (unsigned char) (1 + fuzz_u8(in) % 3);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_t    in = { data, size };
    round_t      rd;
    skv_reply_t  before[MAX_REPLIES];

    read_round(&in, &rd);
    memcpy(before, rd.replies, sizeof(before));

    switch (rd.phase) {
    case PHASE_WRITE:
        check_write(&rd);
        break;
    case PHASE_REPAIR:
        check_repair(&rd);
        break;
    case PHASE_READ:
        check_read(&rd);
        break;
    case PHASE_QUERY:
        check_query(&rd);
        break;
    default:
        check_list(&rd);
        break;
    }
    check_misc(&in, &rd);

    /* the decisions only read the replies */
    FUZZ_CHECK(memcmp(before, rd.replies, sizeof(before)) == 0);
    return 0;
}
