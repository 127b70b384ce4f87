# bench/build.mk - benchmarks (never part of `make test`: figures, not
# pass/fail).  Loopback ports 20000-20499.  Method and figures:
# docs/benchmarks.md.
#
#   make bench          storaged vs nginx static, router (N3W2R2, N2W2R1)
#                       vs plain nginx proxy_pass, hot-key PUTs through one
#                       and two routers, a slow replica, a 3-member etcd
#                       (skipped without /usr/bin/etcd), router worker
#                       memory; about 4-5 minutes; table on stdout and in
#                       build/bench/results.txt
#   make bench-memory   router worker memory after 10,000 and after
#                       1,000,000 requests (several minutes)
#
# BENCH_ARGS passes options through, e.g. make bench BENCH_ARGS=--duration=5,
# or the router rows again with an older build of the module, in the same run:
#   make bench BENCH_ARGS="--baseline-module OLD/build/ngx_http_simplekv_module.so
#                          --baseline-snippet OLD/conf/simplekv_proxy.conf"

BENCH_DEPS := $(BUILD)/storaged $(BUILD)/ngx_http_simplekv_module.so

.PHONY: bench bench-memory
bench: $(BENCH_DEPS)
	$(PYTHON) bench/run.py $(BENCH_ARGS)

bench-memory: $(BENCH_DEPS)
	$(PYTHON) bench/memory.py $(BENCH_ARGS)
