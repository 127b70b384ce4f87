# bench/build.mk - benchmarks (never part of `make test`: figures, not
# pass/fail).  Loopback ports 20000-20499.  Method and figures:
# docs/benchmarks.md.
#
#   make bench          storaged vs nginx static, router (N3W2R2, N2W2R1)
#                       vs plain nginx proxy_pass, a slow replica, router
#                       worker memory; about 3 minutes; table on stdout and
#                       in build/bench/results.txt
#   make bench-memory   router worker memory after 10,000 and after
#                       1,000,000 requests (several minutes)
#
# BENCH_ARGS passes options through, e.g. make bench BENCH_ARGS=--duration=5

BENCH_DEPS := $(BUILD)/storaged $(BUILD)/ngx_http_simplekv_module.so

.PHONY: bench bench-memory
bench: $(BENCH_DEPS)
	$(PYTHON) bench/run.py $(BENCH_ARGS)

bench-memory: $(BENCH_DEPS)
	$(PYTHON) bench/memory.py $(BENCH_ARGS)
