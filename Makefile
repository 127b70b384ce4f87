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
# Suites run one after another: they start servers on fixed loopback ports.
test: deps
	$(MAKE) all
	@set -e; for t in $(TEST_TARGETS); do s=$$(date +%s); \
	    $(MAKE) --no-print-directory $$t; \
	    echo "== $$t: $$(( $$(date +%s) - s )) s"; done

clean:
	rm -rf $(BUILD)
