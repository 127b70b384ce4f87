# tests/hostile/build.mk - hostile clients against the router and
# storaged, with raw sockets: internal headers smuggled through the
# router, malformed framing, pipelining, oversized headers and URIs,
# slowloris, thousands of idle connections, a node's connection limit
# exhausted.  Every answer must be the documented JSON error or a clean
# close, nothing may be stored, and a probe client must keep working
# during each attack (its p99 is printed as PROBE lines and kept in
# build/hostile-results/).  Loopback ports 28600-28799
# (SKV_HOSTILE_PORT_BASE).
#
#   make test-hostile           (in make test; about 40 s)

TEST_TARGETS += test-hostile

.PHONY: test-hostile
test-hostile:
	$(PYTHON) -m pytest -q -s -p no:cacheprovider tests/hostile
