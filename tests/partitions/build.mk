# tests/partitions/build.mk - network partitions of storage nodes: every
# storaged in a network namespace of its own (veth + bridge, addresses
# 10.213.0.0/24, made and removed by the tests), routers in the root
# namespace or in their own; faults from iptables DROP/REJECT, ip link
# down/up and a delay proxy; histories judged by tests/lib/
# linearizability.py.  Needs root, iproute2 and iptables (make deps).
# Loopback ports 28000-28499 (SKV_PARTITION_PORT_BASE); names skvp*
# (SKV_PARTITION_NET_PREFIX), 10.213.N.0/24 (SKV_PARTITION_SUBNET=N).
#
#   make test-partitions        the matrix, both-way filters (in make test)
#   make test-partitions-long   one-way filters (only to or only from the
#                               node), not in make test

TEST_TARGETS += test-partitions

.PHONY: test-partitions test-partitions-long
test-partitions:
	$(PYTHON) -m pytest -q -s -p no:cacheprovider tests/partitions

test-partitions-long:
	SKV_TEST_LONG=1 $(PYTHON) -m pytest -q -s -p no:cacheprovider \
		-k test_long_ tests/partitions

# the slow tests of every suite
test-long: test-partitions-long
