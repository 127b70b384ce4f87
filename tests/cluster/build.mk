# tests/cluster/build.mk - the cluster suite: real storaged nodes and a real
# nginx router with ngx_simplekv_module, killed and restarted under load,
# histories judged by tests/lib/linearizability.py.  Loopback ports
# 19000-19499.
#
#   make test-cluster           the whole suite (needs `make all` first)
#   make test-cluster-valgrind  the fault tests with nginx under valgrind
#                               memcheck (errors and definite leaks fail)

TEST_TARGETS += test-cluster test-cluster-valgrind

.PHONY: test-cluster test-cluster-valgrind
test-cluster:
	$(PYTHON) -m pytest -q tests/cluster

test-cluster-valgrind:
	SKV_VALGRIND=1 $(PYTHON) -m pytest -q tests/cluster/test_faults.py \
		tests/cluster/test_values.py tests/cluster/test_read_fanout.py \
		tests/cluster/test_reload.py
