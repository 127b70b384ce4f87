# t/build.mk - the Test::Nginx suite (t/*.t) for the nginx module.
#
# `make test-nginx` builds everything, then runs every t/*.t with prove
# against the nginx on PATH (Debian's), through t/util/nginx-with-startup-log.
# The .t files use a real Test::Nginx when one is installed or named by
# PERL5LIB, else the small runner in t/fallback/. Ports: nginx 1984-1989,
# storaged 18501-18503 (see t/lib/SimplekvTest.pm).

TEST_TARGETS += test-nginx

# an upper bound for the whole suite, so that nothing can hang CI
T_SUITE_TIMEOUT ?= 600

.PHONY: test-nginx clean-test-nginx

test-nginx: all
	timeout $(T_SUITE_TIMEOUT) prove -r t/

clean: clean-test-nginx

clean-test-nginx:
	rm -rf t/servroot t/servroot-*
