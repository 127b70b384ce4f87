# bench/build.mk - benchmarks (never part of `make test`: figures, not
# pass/fail).  Loopback ports 20000-20499.  Method and figures:
# docs/benchmarks.md.
#
#   make bench          storaged vs nginx static, router (N3W2R2, N2W2R1)
#                       vs plain nginx proxy_pass, hot-key PUTs through one
#                       and two routers, a slow replica, a 3-member etcd
#                       (skipped without /usr/bin/etcd), router worker
#                       memory; about 4-5 minutes; table on stdout and in
#                       build/bench/results.txt; then bench-large
#   make bench-large    large values (bench/large.py): MB/s of 1, 64 and
#                       512 MiB PUTs and GETs through the router (N3W2R2)
#                       vs plain nginx proxy_pass to one storaged, medians
#                       of 3, in build/bench/large-results.txt; ports
#                       20200-20299 (SKV_BENCH_LARGE_PORT_BASE); about
#                       1.5 GiB of disk per node at 512 MiB
#   make bench-memory   router worker memory after 10,000 and after
#                       1,000,000 requests (several minutes)
#
# BENCH_LARGE_ARGS passes options to bench/large.py (--sizes, --repeat).
# BENCH_ARGS passes options through, e.g. make bench BENCH_ARGS=--duration=5,
# or the router rows again with an older build of the module, in the same run:
#   make bench BENCH_ARGS="--baseline-module OLD/build/ngx_http_simplekv_module.so
#                          --baseline-snippet OLD/conf/simplekv_proxy.conf"

BENCH_DEPS := $(BUILD)/storaged $(BUILD)/ngx_http_simplekv_module.so

.PHONY: bench bench-memory bench-large
bench: $(BENCH_DEPS)
	$(PYTHON) bench/run.py $(BENCH_ARGS)
	$(PYTHON) bench/large.py $(BENCH_LARGE_ARGS)

bench-large: $(BENCH_DEPS)
	$(PYTHON) bench/large.py $(BENCH_LARGE_ARGS)

bench-memory: $(BENCH_DEPS)
	$(PYTHON) bench/memory.py $(BENCH_ARGS)
