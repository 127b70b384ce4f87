# t/build.mk - the Test::Nginx suite (t/*.t) for the nginx module.
#
# `make test-nginx` builds everything, then runs every t/*.t with prove
# against the nginx on PATH (Debian's), through t/util/nginx-with-startup-log.
# The .t files use a real Test::Nginx when one is installed or named by
# PERL5LIB, else the small runner in t/fallback/. Ports: nginx 1984-1989,
# storaged 18501-18503 (see t/lib/SimplekvTest.pm).

TEST_TARGETS += test-nginx test-nginx-valgrind

# The request and fault tests again with nginx (and the module) under
# valgrind memcheck: every nginx run must end with no error and no definite
# leak (t/valgrind.suppress lists nginx's own exit-time allocations only).
# Blocks with the same configuration share one nginx, as valgrind makes
# each start take seconds.
T_VALGRIND_FILES := t/001-basic.t t/003-errors.t t/005-bodies.t t/008-faults.t \
                    t/023-bad-input.t t/024-dashboard.t t/026-large.t

# an upper bound for the whole suite, so that nothing can hang CI
T_SUITE_TIMEOUT ?= 600

.PHONY: test-nginx test-nginx-valgrind clean-test-nginx

test-nginx: all
	timeout $(T_SUITE_TIMEOUT) prove -r t/

# TEST_NGINX_TIMEOUT: a block's client timeout when it sets none (3 s
# otherwise), as the .t files scale their own ones by valgrind's slowdown.
test-nginx-valgrind: all
	TEST_NGINX_USE_VALGRIND=1 TEST_NGINX_FORCE_RESTART_ON_TEST=0 \
	    TEST_NGINX_TIMEOUT=30 \
	    timeout $(T_SUITE_TIMEOUT) prove $(T_VALGRIND_FILES)

clean: clean-test-nginx

clean-test-nginx:
	rm -rf t/servroot t/servroot-*
