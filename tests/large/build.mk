# tests/large/build.mk - the large-values suite (issue 9): 0 B to 1 GiB
# through a router in front of three storaged nodes (N=3 W=2 R=2, limits
# 1g), uploaded with a Content-Length and chunked and compared by SHA-256
# and Repr-Digest; nginx workers' and storaged's RSS sampled during a
# 1 GiB PUT and GET (at most +64 MiB each; a FIGURES line); kill -9 of a
# storaged mid-upload; a flipped byte in one replica detected and
# repaired; Range, If-Range, digest mismatch, 413.  Loopback ports
# 19700-19799 (SKV_LARGE_PORT_BASE moves them).  Needs about 5 GiB of
# free disk under pytest's temporary directory.  docs/testing.md, "Large
# values".
#
#   make test-large

TEST_TARGETS += test-large

.PHONY: test-large
test-large:
	$(MAKE) --no-print-directory $(NGX_MODULE_SO) $(STORAGED_BIN) $(CLI_BIN)
	$(PYTHON) -m pytest -q -s -p no:cacheprovider tests/large
