# tests/fuzz/build.mk - coverage-guided fuzzing of the core with Debian's
# clang-14 and libFuzzer, under AddressSanitizer and UBSan.
#
#   make fuzz         each target for FUZZ_SECONDS (60), FUZZ_JOBS at once
#   make test-fuzz    each target for FUZZ_TEST_SECONDS (30); a crash, a
#                     leak or a failed invariant fails the suite
#   make fuzz-build   only build build/fuzz/fuzz_<target>
#
# The core is compiled again into build/fuzz/core/ with the harnesses'
# flags (build/libsimplekv.a is gcc's, without coverage instrumentation),
# and so are the few storaged and cli files a target drives:
# FUZZ_OBJS_<target> and FUZZ_LIBS_<target> name them.
# Each target fuzzes from tests/fuzz/corpus/<target>/ (the seeds, never
# written) and build/fuzz/scratch/<target>/ (what it found, kept between
# runs); a crashing input is saved as build/fuzz/crashes/<target>/crash-*,
# the log as build/fuzz/logs/<target>.log.  docs/testing.md, "Fuzzing".

FUZZ_CC           ?= clang-14
FUZZ_SECONDS      ?= 60
FUZZ_TEST_SECONDS ?= 30
FUZZ_JOBS         ?= $(shell nproc 2>/dev/null || echo 1)
FUZZ_SAN     := -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -O1 -g $(WARNFLAGS) -Icore \
                $(FUZZ_SAN)
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,\
                  $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS    := $(addprefix $(BUILD)/fuzz/fuzz_,$(FUZZ_TARGETS))
FUZZ_CORE_OBJS := $(patsubst core/%.c,$(BUILD)/fuzz/core/%.o,$(CORE_SRCS))

# storaged's request validation (storaged/parse.c, query.c)
FUZZ_OBJS_storaged := $(BUILD)/fuzz/storaged/parse.o \
                      $(BUILD)/fuzz/storaged/query.o
FUZZ_LIBS_storaged := -lcrypto
# the listing merges: the core's pages and the CLI's (cli/skv_scan.c)
FUZZ_OBJS_listmerge := $(BUILD)/fuzz/cli/skv_scan.o \
                       $(BUILD)/fuzz/cli/skv_async.o
FUZZ_LIBS_listmerge := -lcurl -ljansson

# objects made by a pattern rule for pattern rules: keep them
.SECONDARY: $(FUZZ_CORE_OBJS) $(FUZZ_OBJS_storaged) $(FUZZ_OBJS_listmerge)

$(BUILD)/fuzz/core/%.o: core/%.c $(CORE_HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(BUILD)/fuzz/storaged/%.o: storaged/%.c $(wildcard storaged/*.h) \
		$(CORE_HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(BUILD)/fuzz/cli/%.o: cli/%.c $(wildcard cli/*.h) $(CORE_HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Icli -c -o $@ $<

.SECONDEXPANSION:
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h \
		$(FUZZ_CORE_OBJS) $(CORE_HDRS) $$(FUZZ_OBJS_$$*)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Istoraged -Icli -o $@ $< $(FUZZ_OBJS_$*) \
		$(FUZZ_CORE_OBJS) $(CORE_LIBS) $(FUZZ_LIBS_$*)

.PHONY: fuzz fuzz-build test-fuzz
TEST_TARGETS += test-fuzz

fuzz-build: $(FUZZ_BINS)

fuzz: $(FUZZ_BINS)
	@tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_JOBS) $(BUILD)/fuzz $(FUZZ_BINS)

test-fuzz: $(FUZZ_BINS)
	@tests/fuzz/run.sh $(FUZZ_TEST_SECONDS) $(FUZZ_JOBS) $(BUILD)/fuzz \
		$(FUZZ_BINS)
