"""Linearizability checker for simplekv histories (one register per key).

The cluster consistency tests record what concurrent clients did and saw;
this module decides whether some sequential order of those operations,
consistent with real time, explains every result.  It is the project's own
checker so that the tests need nothing outside Debian.

Method
------
* P-compositionality: linearizability is local (Herlihy & Wing), so every
  key is checked on its own; a history is linearizable iff each key's
  sub-history is.  This keeps the search small.
* Wing & Gong's search over the call/return events of one key, kept in a
  doubly linked list so that a tentatively linearized operation can be
  lifted out and put back in O(1), with Lowe's memoization (also used by
  Horn & Kroening's P-compositionality checker): the pair (set of
  linearized operations, register state) is remembered and never explored
  twice.  Two orders of the same operations that end in the same state
  have the same future, which turns the factorial search into one bounded
  by the number of distinct (set, state) pairs.

Model: a register per key that holds a value or is absent (the initial
state).  put(v) -> ok sets it, delete -> ok makes it absent, get returns
the value or absent and is legal only when it matches the register.

History format: a list of dicts
    {"key": k, "op": "put"|"delete"|"get", "value": v,
     "call": <time.monotonic_ns() before sending>,
     "ret":  <time.monotonic_ns() after the answer, or None>,
     "ok": bool, "unknown": bool}
``value`` is what a put wrote, or what a get read (None = absent, i.e. a
404); it is ignored for delete.  Outcomes:
* ok=True: the operation completed with a definite result at ``ret``.
* unknown=True on a put/delete (503, timeout, connection error): it may or
  may not have taken effect.  It gets no return time (it stays open until
  the end of the history) and may be left out.  Leaving out a write is the
  same as linearizing it after every other operation (a write is always
  legal and nothing later observes it), so the search simply succeeds as
  soon as every *completed* operation is linearized.
* A get that failed or whose outcome is unknown carries no information and
  is dropped, as is a write that failed definitely (ok=False,
  unknown=False: e.g. a 400, which cannot have taken effect).

Run as a script on a JSON file holding such a list to check a saved
history:  /usr/bin/python3 tests/lib/linearizability.py history.json
"""

import bisect
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

# The register's empty state.  A private object, so that no value a client
# writes (not even None or "") can be confused with "absent".
ABSENT = object()

# Search steps allowed per key before the checker gives up and says
# "undecided".  A few hundred operations per key normally need well under
# 100,000 steps; the bound exists so that no test can hang on a
# pathological history.
DEFAULT_MAX_STEPS = 10_000_000

OPS = ("put", "delete", "get")

# Kinds of search-stack entries: a choice among alternatives, a read placed
# because it could be (no alternative needed), an optional write dropped.
CHOICE, FORCED, DROPPED = range(3)


@dataclass
class Op:
    """One operation of one key, normalised for the search."""
    index: int               # position in this key's operation list
    kind: str                # "put", "delete" or "get"
    value: Any               # written value / value read (ABSENT for 404)
    call: int
    ret: Optional[int]       # None: outcome unknown, open to the end
    source: Dict[str, Any] = field(repr=False, default_factory=dict)
    label: int = -1          # index in the key's original history (for
                             # reports after minimize() renumbered ops)
    optional: bool = False   # may be left out even though ret is known
                             # (minimize() uses this for dropped writes)

    def __post_init__(self):
        if self.label < 0:
            self.label = self.index

    def describe(self, origin: int = 0) -> str:
        start = (self.call - origin) / 1e6
        if self.ret is None:
            span = "[%10.3f ms ..       open]" % start
        else:
            span = "[%10.3f ms .. %10.3f ms]" % (start,
                                                 (self.ret - origin) / 1e6)
        if self.kind == "put":
            what = "put(%r) -> %s" % (self.value,
                                      "unknown" if self.ret is None
                                      else "ok")
        elif self.kind == "delete":
            what = "delete -> %s" % ("unknown" if self.ret is None
                                     else "ok")
        else:
            what = "get -> %s" % ("absent" if self.value is ABSENT
                                  else repr(self.value))
        return "%s #%d %s%s" % (span, self.label, what,
                                "  (optional)" if self.optional else "")


@dataclass
class KeyResult:
    """Verdict for one key."""
    key: Any
    ops: List[Op]
    linearizable: Optional[bool]   # None: step budget exhausted
    steps: int = 0
    reason: str = ""
    # Deepest partial linearization the search reached (ops in order) and
    # the completed ops that could not be placed after it: where a failure
    # shows itself.
    best_prefix: List[Op] = field(default_factory=list)
    dropped: int = 0    # unknown writes no read could observe
    left_out: int = 0   # writes minimize() left out of the listing
    order: List[Op] = field(default_factory=list)   # a witness when ok

    def report(self, limit: int = 400) -> str:
        origin = min((o.call for o in self.ops), default=0)
        lines = ["key %r: %s (%d ops, %d search steps)%s" % (
            self.key,
            {True: "linearizable", False: "NOT linearizable",
             None: "undecided (search budget exhausted)"}[self.linearizable],
            len(self.ops), self.steps,
            ": " + self.reason if self.reason else "")]
        if self.left_out:
            lines.append("  (minimized: %d writes were made optional, free "
                         "to take effect in their interval or not at all; "
                         "those overlapping the rest are listed as "
                         "'optional')" % self.left_out)
        lines.append("  history (times relative to the first call):")
        for o in sorted(self.ops, key=lambda o: o.call)[:limit]:
            lines.append("    " + o.describe(origin))
        if len(self.ops) > limit:
            lines.append("    ... %d more" % (len(self.ops) - limit))
        if self.linearizable is False and self.best_prefix:
            lines.append("  longest partial linearization (%d of %d ops):"
                         % (len(self.best_prefix), len(self.ops)))
            for o in self.best_prefix[-10:]:
                lines.append("    ... " + o.describe(origin))
        return "\n".join(lines)


@dataclass
class Result:
    """Verdict for a whole history."""
    keys: Dict[Any, KeyResult]

    @property
    def linearizable(self) -> bool:
        return all(k.linearizable is True for k in self.keys.values())

    def failures(self) -> List[KeyResult]:
        return [k for k in self.keys.values() if k.linearizable is not True]

    def smallest_failure(self) -> Optional[KeyResult]:
        bad = self.failures()
        return min(bad, key=lambda k: len(k.ops)) if bad else None

    def summary(self) -> str:
        ops = sum(len(k.ops) for k in self.keys.values())
        bad = self.failures()
        if not bad:
            return "linearizable: %d keys, %d ops" % (len(self.keys), ops)
        return "NOT linearizable: %d of %d keys fail (%s), %d ops" % (
            len(bad), len(self.keys), ", ".join(repr(k.key) for k in bad),
            ops)


def normalise(history: List[Dict[str, Any]]) -> Dict[Any, List[Op]]:
    """Group a raw history by key and turn records into Ops.

    Drops what carries no information (failed or unknown reads, writes
    that definitely failed) and rejects malformed records loudly: a
    checker that silently skipped a bad record could pass a bad history.
    """
    per_key: Dict[Any, List[Op]] = {}
    for n, rec in enumerate(history):
        kind = rec.get("op")
        if kind not in OPS:
            raise ValueError("record %d: op must be one of %s, got %r"
                             % (n, OPS, kind))
        if "key" not in rec or "call" not in rec:
            raise ValueError("record %d: needs key and call: %r" % (n, rec))
        ok = bool(rec.get("ok", False))
        unknown = bool(rec.get("unknown", False))
        if ok and unknown:
            raise ValueError("record %d: both ok and unknown" % n)
        call, ret = rec["call"], rec.get("ret")
        if kind == "get" and not ok:
            continue
        if not ok and not unknown:
            continue
        if unknown:
            ret = None
        elif ret is None:
            raise ValueError("record %d: completed operation without ret"
                             % n)
        elif ret < call:
            raise ValueError("record %d: ret %d before call %d"
                             % (n, ret, call))
        if kind == "put":
            value = rec.get("value")
            if value is None:
                raise ValueError("record %d: put without a value" % n)
        elif kind == "get":
            value = rec.get("value")
            value = ABSENT if value is None else value
        else:
            value = ABSENT
        ops = per_key.setdefault(rec["key"], [])
        ops.append(Op(len(ops), kind, value, call, ret, rec))
    return per_key


def _step(state: Any, op: Op):
    """Apply op to the register: (legal, new state)."""
    if op.kind == "put":
        return True, op.value
    if op.kind == "delete":
        return True, ABSENT
    # ABSENT is a plain object(): it equals itself only, so == also
    # answers "absent read of an absent register" correctly.
    return state == op.value, state


def check_key(key: Any, ops: List[Op],
              max_steps: int = DEFAULT_MAX_STEPS,
              initial: Any = ABSENT) -> KeyResult:
    """Wing & Gong search with (linearized set, state) memoization."""
    result = KeyResult(key, ops, None)

    # A read of a value that no put wrote can never be explained; say so
    # directly rather than after an exhaustive search.
    written = {o.value for o in ops if o.kind == "put"}
    for o in ops:
        if o.kind == "get" and o.value is not ABSENT \
                and o.value not in written and o.value != initial:
            result.linearizable = False
            result.reason = "op #%d read %r, which no put wrote" % (
                o.label, o.value)
            return result

    quick = _quick_refutation(ops)
    if quick:
        result.linearizable = False
        result.reason = quick
        return result

    # An unknown write matters only to the reads that could observe it
    # (reads of its value; absent reads for a delete).  Placing it after
    # the last of them is the same as leaving it out: no read sees it.
    # So it gets a return time, the last observer's, and is optional: when
    # the search reaches that return without having placed it, it may drop
    # it.  One that no read could observe is dropped at once.  Without
    # this an unknown write stays open to the end and every subset of the
    # open ones is a distinct search state, which explodes as soon as a
    # node outage turns a few dozen writes into 503s.
    last_seen = {}
    for o in ops:
        if o.kind == "get":
            last_seen[o.value] = max(last_seen.get(o.value, o.ret), o.ret)
    ret_of = {}
    optional = set()
    for o in ops:
        if o.ret is not None and not o.optional:
            ret_of[o.index] = o.ret
            continue
        effect = o.value if o.kind == "put" else ABSENT
        seen = last_seen.get(effect)
        if seen is not None and o.ret is not None:
            seen = min(seen, o.ret)
        if seen is not None and seen >= o.call:
            ret_of[o.index] = seen
            optional.add(o.index)
    live = [o for o in ops if o.index in ret_of]
    result.dropped = len(ops) - len(live)

    # Events sorted by time; at equal times calls come first, so that
    # operations touching in time count as concurrent (the permissive
    # reading of a clock tie).
    events = []
    for o in live:
        events.append((o.call, 0, o.index))
        events.append((ret_of[o.index], 1, o.index))
    events.sort()

    # Doubly linked list of event nodes; node 0 is the head sentinel.
    n = len(events) + 1
    nxt = list(range(1, n)) + [0]
    prv = [n - 1] + list(range(0, n - 1))
    nxt[n - 1] = -1                # end of list
    prv[0] = -1
    is_call = [False] * n
    op_of = [None] * n
    ret_node = [-1] * n            # call node -> its return node
    call_node = [-1] * n           # return node -> its call node
    first = {}
    for i, (_, kind, idx) in enumerate(events, start=1):
        op_of[i] = ops[idx]
        is_call[i] = kind == 0
        if kind == 0:
            first[idx] = i
        else:
            ret_node[first[idx]] = i
            call_node[i] = first[idx]

    def unlink(i):
        nxt[prv[i]] = nxt[i]
        if nxt[i] != -1:
            prv[nxt[i]] = prv[i]

    def relink(i):
        nxt[prv[i]] = i
        if nxt[i] != -1:
            prv[nxt[i]] = i

    def lift(c):
        unlink(c)
        unlink(ret_node[c])

    def unlift(c):
        # reverse order of lift(): dancing-links restore
        relink(ret_node[c])
        relink(c)

    # Reads not yet placed, per value, and the values exactly one put
    # writes (the tests make every written value unique).
    unread = {}
    puts_of = {}
    for o in live:
        if o.kind == "get":
            unread[o.value] = unread.get(o.value, 0) + 1
        elif o.kind == "put":
            puts_of[o.value] = puts_of.get(o.value, 0) + 1
    written_once = {v for v, k in puts_of.items() if k == 1}

    returns_left = len(live)
    state = initial
    linearized = 0                 # bit set of ops placed or dropped
    cache = set()
    stack = []                     # (call node, state before, kind)
    best = []
    steps = 0
    entry = nxt[0]

    def _backtrack():
        # Undo down to the last real choice and resume the scan after it;
        # forced reads and drops were the only option at their point.
        nonlocal state, linearized, returns_left
        while stack:
            c, state, kind = stack.pop()
            linearized &= ~(1 << op_of[c].index)
            if op_of[c].kind == "get":
                unread[op_of[c].value] += 1
            unlift(c)
            returns_left += 1
            if kind == CHOICE:
                return nxt[c]
        return None

    def _observable_now(op):
        # An unknown write is worth placing only if a read of its effect
        # can come right after it, i.e. such a read is minimal now (a
        # call before the first pending return of a completed operation).  Otherwise the next op
        # after it would be a write, and the same order without it is
        # just as valid: leaving it out (or placing it later) covers this
        # branch.  A delete on an absent key changes nothing at all.
        # The scan passes the returns of optional operations: the search
        # may drop those, after which a read behind them is minimal too.
        effect = op.value if op.kind == "put" else ABSENT
        if effect is ABSENT and state is ABSENT:
            return False
        i = nxt[0]
        while i != -1:
            o = op_of[i]
            if is_call[i]:
                if o.kind == "get" and o.value == effect:
                    return True
            elif o.index not in optional:
                break
            i = nxt[i]
        return False

    def _refuted():
        result.linearizable = False
        result.steps = steps
        result.best_prefix = best
        result.reason = _stuck_reason(best, ops)
        return result

    while returns_left:
        steps += 1
        if steps > max_steps:
            result.steps = steps
            result.reason = "gave up after %d steps" % max_steps
            result.best_prefix = best
            return result
        if is_call[entry]:
            op = op_of[entry]
            if op.kind != "get" and unread.get(state) \
                    and state in written_once:
                # The current value was written by its only put and some
                # read of it is still unplaced: any write now would leave
                # that read unexplainable forever.
                entry = nxt[entry]
                continue
            if op.index in optional and not _observable_now(op):
                entry = nxt[entry]
                continue
            legal, new_state = _step(state, op)
            if legal:
                bits = linearized | (1 << op.index)
                memo = (bits, new_state)
                if memo in cache:
                    if op.kind == "get":
                        # a forced step whose outcome is known to fail
                        entry = _backtrack()
                        if entry is None:
                            return _refuted()
                        continue
                else:
                    cache.add(memo)
                    # A read that is legal now and minimal (called before
                    # the first pending return) can always be placed now:
                    # moving it to the front of any valid continuation
                    # keeps real-time order and changes no state.  So it
                    # is not a choice point, and backtracking goes past
                    # it.  This keeps the search greedy on reads, which
                    # are most of a history.
                    stack.append((entry, state,
                                  FORCED if op.kind == "get" else CHOICE))
                    if op.kind == "get":
                        unread[op.value] -= 1
                    state = new_state
                    linearized = bits
                    lift(entry)
                    returns_left -= 1
                    if len(stack) > len(best):
                        best = [op_of[c] for c, _, k in stack
                                if k != DROPPED]
                    entry = nxt[0]
                    continue
            entry = nxt[entry]
            continue

        # The return of an operation not yet placed: every way of placing
        # it earlier has been tried.  An optional one may be dropped (the
        # last alternative here); otherwise undo the last choice.
        c = call_node[entry]
        op = op_of[c]
        if op.index in optional:
            bits = linearized | (1 << op.index)
            if (bits, state) not in cache:
                cache.add((bits, state))
                stack.append((c, state, DROPPED))
                linearized = bits
                lift(c)
                returns_left -= 1
                entry = nxt[0]
                continue
        entry = _backtrack()
        if entry is None:
            return _refuted()

    result.linearizable = True
    result.steps = steps
    result.order = [op_of[c] for c, _, k in stack if k != DROPPED]
    return result


def _prefix_best(items, better):
    """Running best of a list: out[i] is the best of items[:i+1]."""
    out, best = [], None
    for it in items:
        if best is None or better(it, best):
            best = it
        out.append(best)
    return out


def _quick_refutation(ops: List[Op]) -> str:
    """Name an anomaly that real-time order alone proves, or return "".

    Sound but incomplete shortcuts for the usual symptoms of a broken
    store (they rely on values written by a single put, as the tests
    make them): the full search stays the arbiter.  They make common
    failures instant and their explanation plain.  Each rule is a
    sorted sweep, O(n log n), so that long histories stay cheap.
    """
    puts_of: Dict[Any, List[Op]] = {}
    for o in ops:
        if o.kind == "put":
            puts_of.setdefault(o.value, []).append(o)

    def writer(r):
        w = puts_of.get(r.value, ())
        return w[0] if len(w) == 1 else None

    reads = [o for o in ops if o.kind == "get"]
    value_reads = [r for r in reads if r.value is not ABSENT and writer(r)]

    for r in value_reads:
        p = writer(r)
        if r.ret < p.call:
            return "read #%d returned %r before its put #%d was called" % (
                r.label, r.value, p.label)

    # Stale read: a completed write ran entirely after the value was
    # certainly in place and before the read began.  The value is in place
    # by the time its put returns, and also by the time any read of it
    # returns (a read that saw it), whichever is first: that second bound
    # catches a write applied twice (seen, overwritten, seen again while
    # its put is still in flight).  For each value, the completed write
    # called after that moment that returns first (suffix minimum).
    in_place = {}
    for r in value_reads:
        p = writer(r)
        bound = in_place.get(r.value, p.ret if p.ret is not None
                             else r.ret)
        in_place[r.value] = min(bound, r.ret)
    done = sorted((o for o in ops if o.kind != "get" and o.ret is not None
                   and not o.optional), key=lambda o: o.call)
    calls = [o.call for o in done]
    suffix = _prefix_best(done[::-1], lambda a, b: a.ret < b.ret)[::-1]
    for r in value_reads:
        p = writer(r)
        since = in_place[r.value]
        i = bisect.bisect_right(calls, since)
        if i < len(done) and suffix[i].ret < r.call:
            w = suffix[i]
            return ("stale read #%d: %r was in place by %s, then #%d (%s) "
                    "ran entirely after that and before the read"
                    % (r.label, r.value, "the return of put #%d" % p.label
                       if since == p.ret else "a read of it",
                       w.label, w.kind))

    # Absent read after a completed put with no delete that could fall
    # between them.  The put that started last among those done before
    # the read is the hardest to get past.
    done_puts = sorted((o for o in done if o.kind == "put"),
                       key=lambda o: o.ret)
    put_rets = [o.ret for o in done_puts]
    latest = _prefix_best(done_puts, lambda a, b: a.call > b.call)
    deletes = sorted((o for o in ops if o.kind == "delete"),
                     key=lambda o: o.call)
    del_calls = [d.call for d in deletes]
    inf = float("inf")
    del_reach = _prefix_best([inf if d.ret is None else d.ret
                              for d in deletes], lambda a, b: a > b)
    for r in reads:
        if r.value is not ABSENT:
            continue
        i = bisect.bisect_left(put_rets, r.call)
        if i == 0:
            continue
        p = latest[i - 1]
        j = bisect.bisect_right(del_calls, r.ret)
        if j == 0 or del_reach[j - 1] < p.call:
            return ("read #%d found the key absent, but put #%d completed "
                    "before it and no delete could come between"
                    % (r.label, p.label))

    # Non-monotonic reads: r1 returned before r2 was called, yet r2 saw a
    # value whose put completed before the put of r1's value began.
    by_ret = sorted(value_reads, key=lambda r: r.ret)
    rets = [r.ret for r in by_ret]
    newest = _prefix_best(by_ret, lambda a, b: writer(a).call
                          > writer(b).call)
    for r2 in value_reads:
        px = writer(r2)
        if px.ret is None:
            continue
        i = bisect.bisect_left(rets, r2.call)
        if i == 0:
            continue
        r1 = newest[i - 1]
        py = writer(r1)
        if py.call > px.ret:
            return ("non-monotonic reads: #%d saw %r, then #%d saw the "
                    "older %r (put #%d completed before put #%d began)"
                    % (r1.label, r1.value, r2.label, r2.value, px.label,
                       py.label))
    return ""


def _stuck_reason(best: List[Op], ops: List[Op]) -> str:
    placed = {o.index for o in best}
    if not best:
        return "no operation can be linearized first"
    last = best[-1]
    pending = [o for o in ops if o.index not in placed and o.ret is not None]
    pending.sort(key=lambda o: o.ret)
    if not pending:
        return "search failed"
    return ("after #%d (%s) at most %d of %d ops fit; #%d (%s) cannot be "
            "placed" % (last.label, last.kind, len(best), len(ops),
                        pending[0].label, pending[0].kind))


def check(history: List[Dict[str, Any]],
          max_steps: int = DEFAULT_MAX_STEPS) -> Result:
    """Check a whole history, key by key."""
    per_key = normalise(history)
    return Result({k: check_key(k, ops, max_steps)
                   for k, ops in per_key.items()})


def minimize(key_result: KeyResult, time_budget: float = 20.0,
             max_steps: int = 200_000) -> KeyResult:
    """Shrink a failing key history to a small one that still fails, and
    fails only because the original does.

    ddmin-style: drop chunks of operations while the rest still fails.
    Dropping a read is always faithful (a history that fails without a
    read fails with it).  Dropping a write is not (an absent read may have
    needed that delete), so a dropped write stays in the history that is
    checked, as optional: placed inside its interval or not at all.  That
    history is more permissive than the original, so if it fails,
    the original fails, and the failure does not depend on the dropped
    writes.  A put whose value a kept read returns is never dropped, so
    the result reads on its own.  Bounded by time_budget.
    """
    if key_result.linearizable is not False:
        return key_result
    deadline = time.monotonic() + time_budget
    ops = list(key_result.ops)
    dropped_writes: List[Op] = []

    def still_fails(cand, dropped):
        written = {o.value for o in cand if o.kind == "put"}
        if any(o.kind == "get" and o.value is not ABSENT
               and o.value not in written for o in cand) \
                and "which no put wrote" not in key_result.reason:
            return None
        shown = [Op(i, o.kind, o.value, o.call, o.ret, o.source, o.label)
                 for i, o in enumerate(cand)]
        # a dropped write keeps its interval but may be left out
        loose = [Op(len(shown) + i, o.kind, o.value, o.call, o.ret, o.source,
                    o.label, optional=True) for i, o in enumerate(dropped)]
        # The listed operations must fail on their own (so the listing
        # explains itself) and with the left-out writes allowed (so the
        # failure does not come from leaving them out).
        if check_key(key_result.key, shown,
                     max_steps).linearizable is not False:
            return None
        r = check_key(key_result.key, shown + loose, max_steps)
        if r.linearizable is not False:
            return None
        # Listed: the kept operations, plus the left-out writes that
        # overlap them in time, marked optional (the verdict and its
        # reason are those of kept + all left-out writes as optional).
        start = min(o.call for o in shown)
        end = max(o.ret if o.ret is not None else o.call for o in shown)
        r.ops = shown + [o for o in loose
                         if o.call <= end and (o.ret is None
                                               or o.ret >= start)]
        r.left_out = len(loose)
        return r

    best = key_result
    # First cut the history to the shortest stretch of time that still
    # fails (a binary search from each end: a few dozen checks), then
    # drop single operations inside it.
    ops.sort(key=lambda o: o.call)

    def window(lo, hi):
        cut = [o for o in ops[:lo] + ops[hi:] if o.kind != "get"]
        return still_fails(ops[lo:hi], cut)

    lo, hi = 0, len(ops)
    a, b = 0, hi - 1            # largest lo in [a, b] that still fails
    while a < b and time.monotonic() < deadline:
        mid = (a + b + 1) // 2
        if window(mid, hi) is not None:
            a = mid
        else:
            b = mid - 1
    lo = a
    a, b = lo + 1, hi           # smallest hi in [a, b] that still fails
    while a < b and time.monotonic() < deadline:
        mid = (a + b) // 2
        if window(lo, mid) is not None:
            b = mid
        else:
            a = mid + 1
    hi = b
    if (lo, hi) != (0, len(ops)):
        r = window(lo, hi)
        if r is not None:
            dropped_writes = [o for o in ops[:lo] + ops[hi:]
                              if o.kind != "get"]
            ops = ops[lo:hi]
            best = r

    chunk = max(1, len(ops) // 2)
    while chunk >= 1 and time.monotonic() < deadline:
        i = 0
        removed_any = False
        while i < len(ops) and time.monotonic() < deadline:
            cand = ops[:i] + ops[i + chunk:]
            gone = [o for o in ops[i:i + chunk] if o.kind != "get"]
            r = still_fails(cand, dropped_writes + gone) if cand else None
            if r is not None:
                ops = cand
                dropped_writes += gone
                best = r
                removed_any = True
            else:
                i += chunk
        if not removed_any:
            if chunk == 1:
                break
            chunk //= 2
    return best


def main(argv: List[str]) -> int:
    if len(argv) != 2:
        print("usage: %s HISTORY.json" % argv[0], file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        history = json.load(f)
    result = check(history)
    print(result.summary())
    bad = result.smallest_failure()
    if bad is not None:
        print(minimize(bad).report())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
