# simplekv - top-level build.  `make` builds everything into build/,
# `make test` runs every suite, `make run` starts a local cluster,
# `make bench` measures it.  Each component keeps its rules in its own
# build.mk, included below.

BUILD      := build
CC         ?= cc
PYTHON     := /usr/bin/python3
OPTFLAGS   ?= -O2 -g
WARNFLAGS  := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
              -Wmissing-prototypes -Wformat=2
CFLAGS_C11 := -std=c11 -D_GNU_SOURCE $(OPTFLAGS) $(WARNFLAGS) -fPIC -Icore
SAN_FLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer \
              -fno-sanitize-recover=undefined

.PHONY: all deps test clean
TEST_TARGETS :=
all:

deps:
	@util/install-deps.sh

include core/build.mk
include tests/unit/build.mk
-include storaged/build.mk
-include ngx_simplekv_module/build.mk
-include cli/build.mk
-include t/build.mk
-include tests/cluster/build.mk
-include tests/deploy/build.mk
-include tests/fuzz/build.mk
-include tests/dashboard/build.mk
-include tests/partitions/build.mk
-include tests/hostile/build.mk
-include tests/large/build.mk
-include bench/build.mk
-include util/run.mk

# Each fragment appends its suite to TEST_TARGETS (make test-<name>).
# make test runs them in TEST_LANES parallel lanes (util/test-lanes.sh:
# each lane its own ports and temporary directories; logs in
# build/test-logs/<suite>.log); TEST_LANES=1 runs them one after another,
# TEST_SKIP="test-a test-b" leaves suites out.  docs/testing.md, "Lanes".
TEST_LANES ?= 3
TEST_SKIP  ?=
test: deps
	$(MAKE) all
	@TEST_LANES="$(TEST_LANES)" TEST_SKIP="$(TEST_SKIP)" MAKE="$(MAKE)" \
	    util/test-lanes.sh $(TEST_TARGETS)

clean:
	rm -rf $(BUILD)
