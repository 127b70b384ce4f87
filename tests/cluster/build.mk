# tests/cluster/build.mk - the cluster suite: real storaged nodes and a real
# nginx router with ngx_simplekv_module, killed and restarted under load,
# histories judged by tests/lib/linearizability.py.  Loopback ports
# 19000-19499.
#
#   make test-cluster           the whole suite (needs `make all` first)
#   make test-cluster-valgrind  the fault tests with nginx under valgrind
#                               memcheck (errors and definite leaks fail)
#   make test-long              the slow cluster tests (> 30 s each; skipped
#                               unless SKV_TEST_LONG=1, not in `make test`):
#                               deletes with a replica down past the
#                               tombstone grace, the p99 figures of a
#                               rebalance (prints a FIGURES line), and
#                               the multi-router histories for 30 s
#                               each instead of 10

TEST_TARGETS += test-cluster test-cluster-valgrind

.PHONY: test-cluster test-cluster-valgrind test-long test-multi-router-long
test-cluster:
	$(PYTHON) -m pytest -q tests/cluster

test-cluster-valgrind:
	SKV_VALGRIND=1 $(PYTHON) -m pytest -q tests/cluster/test_faults.py \
		tests/cluster/test_values.py tests/cluster/test_read_fanout.py \
		tests/cluster/test_reload.py tests/cluster/test_stream_repair.py \
		tests/cluster/test_slow_node.py

# Not in TEST_TARGETS: `make test` skips these (they are named test_long_*
# and marked skipif unless SKV_TEST_LONG=1).
test-long:
	SKV_TEST_LONG=1 $(PYTHON) -m pytest -q -s -k test_long_ \
		tests/cluster/test_repair.py tests/cluster/test_rebalance.py

# 2 and 3 routers on hot keys, a clock behind or ahead, a node killed:
# 30 s of load each (15 s for the clock ahead) instead of make test's 10.
test-multi-router-long:
	SKV_MULTI_ROUTER_SECONDS=30 $(PYTHON) -m pytest -q -s \
		tests/cluster/test_multi_router.py

test-long: test-multi-router-long
