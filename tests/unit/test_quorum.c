/*
 * test_quorum.c - the router's quorum decisions (core/skv_quorum.c), with
 * N=3, W=2, R=2 unless a test says otherwise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "skv_quorum.h"
#include "skv_quorum_sets.h"

#define OWN   0x1111
#define OTHER 0x2222

static skv_reply_t
rep(skv_reply_kind_t kind, uint64_t hlc, uint64_t origin, unsigned status)
{
    skv_reply_t  r;

    memset(&r, 0, sizeof(r));
    r.kind = kind;
    r.version.hlc = hlc;
    r.version.origin = origin;
    r.status = status;
    return r;
}

static skv_action_t
write3(skv_reply_t a, skv_reply_t b, skv_reply_t c, bool expired,
       bool tries_left, skv_tally_t *t)
{
    skv_reply_t   r[3] = { a, b, c };
    skv_quorum_t  q = { .n = 3, .w = 2, .r = 2, .expired = expired,
                        .tries_left = tries_left };

    skv_tally(r, 3, expired, OWN, t);
    return skv_decide_write(t, &q);
}

static skv_reply_t pend(void) { return rep(SKV_REPLY_PENDING, 0, 0, 0); }
static skv_reply_t ack(void) { return rep(SKV_REPLY_ACK, 0, 0, 201); }

static void
test_write_answers_at_w(void **state)
{
    skv_tally_t  t;

    (void) state;
    assert_int_equal(write3(ack(), ack(), pend(), false, true, &t),
                     SKV_ANSWER);
    assert_int_equal(write3(ack(), pend(), pend(), false, true, &t),
                     SKV_WAIT);
    /* a conflict with a newer version of our own clock counts as held */
    assert_int_equal(write3(ack(), rep(SKV_REPLY_CONFLICT, 9, OWN, 409),
                            pend(), false, true, &t), SKV_ANSWER);
    /* another router's newer version does not */
    assert_int_equal(write3(ack(), rep(SKV_REPLY_CONFLICT, 9, OTHER, 409),
                            pend(), false, true, &t), SKV_WAIT);
}

static void
test_write_retry_only_when_nothing_applied(void **state)
{
    skv_reply_t  c = rep(SKV_REPLY_CONFLICT, 9, OTHER, 409);
    skv_tally_t  t;

    (void) state;
    /* all refused by a newer version: safe to retry */
    assert_int_equal(write3(c, c, c, false, true, &t), SKV_RETRY_WRITE);
    /* wait for the third before deciding */
    assert_int_equal(write3(c, c, pend(), false, true, &t), SKV_WAIT);
    /* one replica applied it: a retry could apply the value twice */
    assert_int_equal(write3(c, c, ack(), false, true, &t), SKV_FAIL);
    /* one replica may have applied it (timed out) */
    assert_int_equal(write3(c, c, rep(SKV_REPLY_TIMEDOUT, 0, 0, 0), false,
                            true, &t), SKV_FAIL);
    assert_int_equal(t.timedout, 1);
    /* a refused connection applied nothing */
    assert_int_equal(write3(c, c, rep(SKV_REPLY_REFUSED, 0, 0, 0), false,
                            true, &t), SKV_RETRY_WRITE);
    /* no tries left */
    assert_int_equal(write3(c, c, c, false, false, &t), SKV_FAIL);
}

static void
test_write_definite_refusal(void **state)
{
    skv_reply_t  big = rep(SKV_REPLY_REFUSED, 0, 0, 413);
    skv_reply_t  full = rep(SKV_REPLY_REFUSED, 0, 0, 507);
    skv_reply_t  down = rep(SKV_REPLY_REFUSED, 0, 0, 0);
    skv_tally_t  t;

    (void) state;
    assert_int_equal(write3(big, big, big, false, true, &t), SKV_REFUSE);
    assert_int_equal(t.refusal, 413);
    /* a full disk tells more than a node that was down */
    assert_int_equal(write3(down, full, big, false, true, &t), SKV_REFUSE);
    assert_int_equal(t.refusal, 507);
    /* refused twice, the third still running: wait for it */
    assert_int_equal(write3(big, big, pend(), false, true, &t), SKV_WAIT);
    /* ... and once expired, the outcome is unknown */
    assert_int_equal(write3(big, big, pend(), true, true, &t), SKV_FAIL);
    assert_int_equal(t.timedout, 1);
    /* applied on one replica: unknown, not refused */
    assert_int_equal(write3(big, big, ack(), false, true, &t), SKV_FAIL);
    /* an error after sending: unknown */
    assert_int_equal(write3(big, big, rep(SKV_REPLY_FAILED, 0, 0, 502),
                            false, true, &t), SKV_FAIL);
}

static skv_reply_t
conflict(uint64_t origin, skv_held_t held)
{
    skv_reply_t  r = rep(SKV_REPLY_CONFLICT, 9, origin, 409);

    r.held = held;
    return r;
}

/* Writes through different routers (issue 14): what a 409's
 * X-Simplekv-Held says decides between done, retry and unknown. */
static void
test_write_conflicts_across_routers(void **state)
{
    skv_tally_t   t;
    skv_reply_t   no = conflict(OTHER, SKV_HELD_NO);
    skv_reply_t   yes = conflict(OTHER, SKV_HELD_YES);
    skv_reply_t   unk = conflict(OTHER, SKV_HELD_UNKNOWN);
    skv_reply_t   down = rep(SKV_REPLY_REFUSED, 0, 0, 0);
    skv_quorum_t  q = { .n = 3, .w = 2, .r = 2, .tries_left = false };

    (void) state;
    /* applied on one, two others never held it: it can never be read,
     * so it is retried */
    assert_int_equal(write3(ack(), no, no, false, true, &t),
                     SKV_RETRY_WRITE);
    assert_true(skv_write_never_visible(&t, &q));
    /* ... but without tries left it fails, and had no effect */
    assert_int_equal(write3(ack(), no, no, false, false, &t), SKV_FAIL);
    assert_true(skv_write_never_visible(&t, &q));
    /* held by two replicas at some time: complete, overwritten by a
     * concurrent newer write */
    assert_int_equal(write3(ack(), yes, no, false, true, &t), SKV_ANSWER);
    assert_int_equal(write3(yes, yes, no, false, true, &t), SKV_ANSWER);
    /* one replica may have held it: unknown */
    assert_int_equal(write3(ack(), unk, no, false, true, &t), SKV_FAIL);
    assert_false(skv_write_never_visible(&t, &q));
    /* a replica down may still hold an older version: a read of it and
     * the acknowledging one could return this write, so no retry */
    assert_int_equal(write3(ack(), no, down, false, true, &t), SKV_FAIL);
    assert_false(skv_write_never_visible(&t, &q));
    /* a timeout: unknown */
    assert_int_equal(write3(ack(), no, rep(SKV_REPLY_TIMEDOUT, 0, 0, 0),
                            false, true, &t), SKV_FAIL);
    /* wait for the third answer before deciding */
    assert_int_equal(write3(ack(), no, pend(), false, true, &t), SKV_WAIT);
}

/* After a version query (multi-writer ABD) every conflict is concurrent. */
static void
test_write_after_version_query(void **state)
{
    skv_tally_t   t;
    skv_reply_t   r[3] = { ack(), conflict(OTHER, SKV_HELD_UNKNOWN),
                           rep(SKV_REPLY_TIMEDOUT, 0, 0, 0) };
    skv_quorum_t  q = { .n = 3, .w = 2, .r = 2, .versions_known = true };

    (void) state;
    skv_tally(r, 3, false, OWN, &t);
    assert_int_equal(skv_decide_write(&t, &q), SKV_ANSWER);

    q.versions_known = false;
    assert_int_equal(skv_decide_write(&t, &q), SKV_FAIL);

    r[0] = pend();
    q.versions_known = true;
    skv_tally(r, 3, false, OWN, &t);
    assert_int_equal(skv_decide_write(&t, &q), SKV_WAIT);

    /* the query itself: N-W+1 = 2 answers meet every write quorum */
    {
        skv_reply_t v[3] = { rep(SKV_REPLY_FOUND, 5, OTHER, 200),
                             rep(SKV_REPLY_MISSING, 0, 0, 404), pend() };
        skv_tally(v, 3, false, OWN, &t);
        assert_int_equal(skv_decide_query(&t, &q), SKV_ANSWER);
        v[1] = rep(SKV_REPLY_FAILED, 0, 0, 0);
        skv_tally(v, 3, false, OWN, &t);
        assert_int_equal(skv_decide_query(&t, &q), SKV_WAIT);
        skv_tally(v, 3, true, OWN, &t);
        assert_int_equal(skv_decide_query(&t, &q), SKV_FAIL);
    }
}

/*
 * A transition: replies 0..2 are the new owners (0 and 1 also old), 3 is
 * an old owner only.  Quorums must be met in each set.
 */
static const unsigned char  members[4] = {
    SKV_SET_NEW | SKV_SET_OLD, SKV_SET_NEW | SKV_SET_OLD, SKV_SET_NEW,
    SKV_SET_OLD
};

static void
test_transition_sets(void **state)
{
    long          newest;
    size_t        prior[2];
    skv_tally_t   all;
    skv_sets_t    sets = { members, true };
    skv_quorum_t  q = { .n = 3, .w = 2, .r = 2, .versions_known = true };
    skv_action_t  each[2] = { SKV_ANSWER, SKV_REFUSE };
    skv_reply_t   r[4] = { ack(), pend(), pend(), pend() };

    (void) state;
    assert_int_equal(skv_combine(each, 2), SKV_FAIL);
    each[1] = SKV_WAIT;
    assert_int_equal(skv_combine(each, 2), SKV_WAIT);

    /* one ack counts in both sets; both still need a second */
    assert_int_equal(skv_decide_write_sets(r, 4, &sets, &q, OWN, &all),
                     SKV_WAIT);
    r[2] = ack();   /* new set complete, old set not */
    assert_int_equal(skv_decide_write_sets(r, 4, &sets, &q, OWN, &all),
                     SKV_WAIT);
    r[3] = ack();
    assert_int_equal(skv_decide_write_sets(r, 4, &sets, &q, OWN, &all),
                     SKV_ANSWER);
    /* the old owners fail: the write fails even though the new set has W */
    r[1] = rep(SKV_REPLY_FAILED, 0, 0, 0);
    r[3] = rep(SKV_REPLY_FAILED, 0, 0, 0);
    assert_int_equal(skv_decide_write_sets(r, 4, &sets, &q, OWN, &all),
                     SKV_FAIL);

    /* a read: the new owner 2 is empty, the old ones hold v7 */
    {
        skv_reply_t v7 = rep(SKV_REPLY_FOUND, 7, OTHER, 200);
        skv_reply_t miss = rep(SKV_REPLY_MISSING, 0, 0, 404);
        skv_reply_t rr[4] = { v7, miss, miss, v7 };

        q.versions_known = false;
        assert_int_equal(skv_decide_read_sets(rr, 4, &sets, &q, &all,
                                              &newest), SKV_REPAIR);
        assert_true(newest == 0 || newest == 3);
        prior[0] = skv_holders_set(rr, 4, members, SKV_SET_NEW,
                                   &v7.version);
        prior[1] = skv_holders_set(rr, 4, members, SKV_SET_OLD,
                                   &v7.version);
        assert_int_equal(prior[0], 1);
        assert_int_equal(prior[1], 2);

        /* the repair writes to 1 and 2: the new set reaches W */
        {
            skv_reply_t wr[4] = { rep(SKV_REPLY_NONE, 0, 0, 0), ack(),
                                  pend(), rep(SKV_REPLY_NONE, 0, 0, 0) };
            assert_int_equal(skv_decide_repair_sets(wr, 4, &sets, prior, &q,
                                                    &all), SKV_ANSWER);
        }
    }
}

static void
test_refusal_statuses(void **state)
{
    (void) state;
    assert_true(skv_status_is_refusal(400));
    assert_true(skv_status_is_refusal(401));
    assert_true(skv_status_is_refusal(413));
    assert_true(skv_status_is_refusal(507));
    assert_false(skv_status_is_refusal(409));
    assert_false(skv_status_is_refusal(500));
    assert_false(skv_status_is_refusal(502));
    assert_false(skv_status_is_refusal(201));
}

static skv_action_t
read3(skv_reply_t r[3], bool expired, skv_tally_t *t)
{
    skv_quorum_t  q = { .w = 2, .r = 2, .expired = expired,
                        .tries_left = true };

    skv_tally(r, 3, expired, OWN, t);
    return skv_decide_read(t, r, &q);
}

static void
test_read(void **state)
{
    skv_tally_t  t;
    skv_reply_t  v5 = rep(SKV_REPLY_FOUND, 5, OTHER, 200);
    skv_reply_t  v7 = rep(SKV_REPLY_FOUND, 7, OTHER, 200);
    skv_reply_t  d8 = rep(SKV_REPLY_TOMBSTONE, 8, OTHER, 404);
    skv_reply_t  miss = rep(SKV_REPLY_MISSING, 0, 0, 404);
    skv_reply_t  to = rep(SKV_REPLY_TIMEDOUT, 0, 0, 0);

    (void) state;
    {
        skv_reply_t r[3] = { v5, v5, pend() };
        assert_int_equal(read3(r, false, &t), SKV_ANSWER);
        assert_int_equal(t.newest, 0);
        assert_int_equal(t.holders, 2);
    }
    {
        /* disagreement: the newest goes back before the answer */
        skv_reply_t r[3] = { v5, v7, pend() };
        assert_int_equal(read3(r, false, &t), SKV_REPAIR);
        assert_int_equal(t.newest, 1);
        assert_int_equal(t.holders, 1);
    }
    {
        skv_reply_t r[3] = { v7, pend(), pend() };
        assert_int_equal(read3(r, false, &t), SKV_WAIT);
    }
    {
        skv_reply_t r[3] = { v7, to, to };
        assert_int_equal(read3(r, false, &t), SKV_FAIL);
        assert_int_equal(t.timedout, 2);
    }
    {
        /* one holder, the rest expired: repair to reach W */
        skv_reply_t r[3] = { v7, miss, pend() };
        assert_int_equal(read3(r, true, &t), SKV_REPAIR);
    }
    {
        skv_reply_t r[3] = { miss, miss, pend() };
        assert_int_equal(read3(r, false, &t), SKV_ANSWER);
    }
    {
        /* a tombstone is a version like any other; the stale replica
         * gets it too (the repair answers as soon as W hold it) */
        skv_reply_t r[3] = { v7, d8, d8 };
        assert_int_equal(read3(r, false, &t), SKV_REPAIR);
        assert_int_equal(t.newest, 1);
        assert_int_equal(t.holders, 2);
    }
}

static void
test_repair(void **state)
{
    skv_tally_t   t;
    skv_quorum_t  q = { .w = 2, .r = 2, .prior = 1, .tries_left = true };
    skv_reply_t   r[3] = { rep(SKV_REPLY_NONE, 0, 0, 0), pend(), pend() };

    (void) state;
    skv_tally(r, 3, false, OWN, &t);
    assert_int_equal(skv_decide_repair(&t, &q), SKV_WAIT);

    r[1] = ack();
    skv_tally(r, 3, false, OWN, &t);
    assert_int_equal(skv_decide_repair(&t, &q), SKV_ANSWER);

    r[1] = rep(SKV_REPLY_CONFLICT, 9, OTHER, 409);
    r[2] = rep(SKV_REPLY_FAILED, 0, 0, 502);
    skv_tally(r, 3, false, OWN, &t);
    assert_int_equal(skv_decide_repair(&t, &q), SKV_REREAD);

    q.tries_left = false;
    assert_int_equal(skv_decide_repair(&t, &q), SKV_FAIL);
}

static void
test_list(void **state)
{
    skv_tally_t   t;
    skv_quorum_t  q = { .w = 2 };
    skv_reply_t   ok = rep(SKV_REPLY_LISTED, 0, 0, 200);
    skv_reply_t   bad = rep(SKV_REPLY_FAILED, 0, 0, 0);
    skv_reply_t   r[4] = { ok, ok, ok, bad };

    (void) state;
    assert_int_equal(skv_list_needed(4, 2), 3);
    skv_tally(r, 4, false, OWN, &t);
    assert_int_equal(skv_decide_list(&t, 4, &q), SKV_ANSWER);

    r[2] = bad;
    skv_tally(r, 4, false, OWN, &t);
    assert_int_equal(skv_decide_list(&t, 4, &q), SKV_FAIL);

    r[2] = pend();
    skv_tally(r, 4, false, OWN, &t);
    assert_int_equal(skv_decide_list(&t, 4, &q), SKV_WAIT);
}

static void
test_late_repair(void **state)
{
    skv_reply_t  newest = rep(SKV_REPLY_FOUND, 7, OTHER, 200);
    skv_reply_t  old = rep(SKV_REPLY_FOUND, 5, OTHER, 200);
    skv_reply_t  miss = rep(SKV_REPLY_MISSING, 0, 0, 404);
    skv_reply_t  fail = rep(SKV_REPLY_FAILED, 0, 0, 0);
    skv_reply_t  none = rep(SKV_REPLY_MISSING, 0, 0, 404);

    (void) state;
    assert_true(skv_needs_late_repair(&old, &newest));
    assert_true(skv_needs_late_repair(&miss, &newest));
    assert_false(skv_needs_late_repair(&newest, &newest));
    assert_false(skv_needs_late_repair(&fail, &newest));
    assert_false(skv_needs_late_repair(&miss, &none));
    assert_false(skv_needs_late_repair(&miss, NULL));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_answers_at_w),
        cmocka_unit_test(test_write_retry_only_when_nothing_applied),
        cmocka_unit_test(test_write_definite_refusal),
        cmocka_unit_test(test_write_conflicts_across_routers),
        cmocka_unit_test(test_write_after_version_query),
        cmocka_unit_test(test_transition_sets),
        cmocka_unit_test(test_refusal_statuses),
        cmocka_unit_test(test_read),
        cmocka_unit_test(test_repair),
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_late_repair),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
