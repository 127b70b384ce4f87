/*
 * skv_quorum_sets.c - quorum decisions over the sets of a transition (see
 * skv_quorum_sets.h and docs/membership.md).
 */
#include "skv_quorum_sets.h"

static size_t
set_count(const skv_sets_t *sets)
{
    return sets->transition ? 2 : 1;
}

static unsigned
set_bit(size_t s)
{
    return s == 0 ? SKV_SET_NEW : SKV_SET_OLD;
}

static const unsigned char *
set_member(const skv_sets_t *sets)
{
    return sets->transition ? sets->member : NULL;
}

skv_action_t
skv_combine(const skv_action_t *each, size_t nsets)
{
    size_t  s;

    for (s = 0; s < nsets; s++) {
        if (each[s] == SKV_FAIL) {
            return SKV_FAIL;
        }
    }

    for (s = 0; s < nsets; s++) {
        if (each[s] == SKV_WAIT) {
            return SKV_WAIT;
        }
    }

    for (s = 1; s < nsets; s++) {
        if (each[s] != each[0]) {
            return SKV_FAIL;
        }
    }

    return each[0];
}

skv_action_t
skv_decide_write_sets(const skv_reply_t *replies, size_t n,
                      const skv_sets_t *sets, const skv_quorum_t *q,
                      uint64_t own_origin, skv_tally_t *all)
{
    size_t        s;
    skv_tally_t   t;
    skv_action_t  each[2];

    for (s = 0; s < set_count(sets); s++) {
        skv_tally_set(replies, n, set_member(sets), set_bit(s), q->expired,
                      own_origin, &t);
        each[s] = skv_decide_write(&t, q);
    }

    skv_tally(replies, n, q->expired, own_origin, all);

    return skv_combine(each, set_count(sets));
}

skv_action_t
skv_decide_query_sets(const skv_reply_t *replies, size_t n,
                      const skv_sets_t *sets, const skv_quorum_t *q,
                      skv_tally_t *all)
{
    size_t        s;
    skv_tally_t   t;
    skv_action_t  each[2];

    for (s = 0; s < set_count(sets); s++) {
        skv_tally_set(replies, n, set_member(sets), set_bit(s), q->expired,
                      0, &t);
        each[s] = skv_decide_query(&t, q);
    }

    skv_tally(replies, n, q->expired, 0, all);

    return skv_combine(each, set_count(sets));
}

skv_action_t
skv_decide_read_sets(const skv_reply_t *replies, size_t n,
                     const skv_sets_t *sets, const skv_quorum_t *q,
                     skv_tally_t *all, long *newest)
{
    size_t        s, holders;
    bool          repair, wait;
    skv_tally_t   t[2];
    skv_action_t  each[2], action;

    skv_tally(replies, n, q->expired, 0, all);
    *newest = all->newest;

    /* R answers in every set */
    for (s = 0; s < set_count(sets); s++) {
        skv_tally_set(replies, n, set_member(sets), set_bit(s), q->expired,
                      0, &t[s]);

        if (t[s].answered >= q->r) {
            each[s] = SKV_ANSWER;
        } else if (!q->expired && t[s].answered + t[s].pending >= q->r) {
            each[s] = SKV_WAIT;
        } else {
            each[s] = SKV_FAIL;
        }
    }

    action = skv_combine(each, set_count(sets));
    if (action != SKV_ANSWER) {
        return action;
    }

    /* nothing was ever written */
    if (skv_version_is_zero(&replies[*newest].version)) {
        return SKV_ANSWER;
    }

    repair = false;
    wait = false;

    for (s = 0; s < set_count(sets); s++) {
        holders = skv_holders_set(replies, n, set_member(sets), set_bit(s),
                                  &replies[*newest].version);

        if (holders == t[s].answered && holders >= q->w) {
            continue;
        }

        /* agreeing so far but short of W holders: the rest may agree */
        if (holders == t[s].answered && t[s].pending && !q->expired) {
            wait = true;
        } else {
            repair = true;
        }
    }

    return repair ? SKV_REPAIR : wait ? SKV_WAIT : SKV_ANSWER;
}

skv_action_t
skv_decide_repair_sets(const skv_reply_t *replies, size_t n,
                       const skv_sets_t *sets, const size_t *prior,
                       const skv_quorum_t *q, skv_tally_t *all)
{
    size_t        s;
    bool          reread;
    skv_tally_t   t;
    skv_quorum_t  qs;
    skv_action_t  each[2];

    reread = false;

    for (s = 0; s < set_count(sets); s++) {
        skv_tally_set(replies, n, set_member(sets), set_bit(s), q->expired,
                      0, &t);
        qs = *q;
        qs.prior = prior[s];
        each[s] = skv_decide_repair(&t, &qs);

        if (each[s] == SKV_REREAD) {
            reread = true;
            each[s] = SKV_ANSWER;
        }
    }

    skv_tally(replies, n, q->expired, 0, all);

    /* a newer write overtook the repair in some set: read again, unless
     * another set still waits or failed */
    if (reread && skv_combine(each, set_count(sets)) == SKV_ANSWER) {
        return SKV_REREAD;
    }

    return skv_combine(each, set_count(sets));
}
