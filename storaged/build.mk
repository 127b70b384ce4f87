# storaged: the storage daemon (libmicrohttpd + Berkeley DB), a normal
# build and an AddressSanitizer + UBSan build for the test suite.
#   make build/storaged build/asan/storaged
#   make test-storaged     # pytest suite against both binaries

STORAGED_SRCS := $(wildcard storaged/*.c)
STORAGED_HDRS := $(wildcard storaged/*.h) $(CORE_HDRS)
STORAGED_LIBS := -ldb -lmicrohttpd -ljansson -lcrypto -lpthread
STORAGED_BIN  := $(BUILD)/storaged
STORAGED_ASAN := $(BUILD)/asan/storaged

all: $(STORAGED_BIN) $(STORAGED_ASAN)

$(BUILD)/storaged-obj/%.o: storaged/%.c $(STORAGED_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_C11) -c -o $@ $<

$(BUILD)/asan/storaged-obj/%.o: storaged/%.c $(STORAGED_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_C11) $(SAN_FLAGS) -c -o $@ $<

$(STORAGED_BIN): $(patsubst storaged/%.c,$(BUILD)/storaged-obj/%.o,$(STORAGED_SRCS)) $(CORE_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(CORE_LIBS) $(STORAGED_LIBS)

$(STORAGED_ASAN): $(patsubst storaged/%.c,$(BUILD)/asan/storaged-obj/%.o,$(STORAGED_SRCS)) $(CORE_LIB_ASAN)
	$(CC) $(SAN_FLAGS) -o $@ $^ $(CORE_LIBS) $(STORAGED_LIBS)

# A test helper that writes index entries of the legacy (25-byte) form
# and reports entry sizes (tests/storaged/test_history.py).
STORAGED_LEGACY := $(BUILD)/tests/storaged/legacy_index

$(STORAGED_LEGACY): tests/storaged/legacy_index.c $(CORE_LIB) $(CORE_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_C11) -o $@ $< $(CORE_LIB) $(CORE_LIBS) -ldb

# The suite runs twice: against the normal build, then under ASan+UBSan
# (the tests check the daemon's stderr for sanitizer reports at stop).
STORAGED_PYTEST := SKV_LEGACY_INDEX=$(abspath $(STORAGED_LEGACY)) \
                   $(PYTHON) -m pytest -q -p no:cacheprovider tests/storaged

.PHONY: test-storaged test-storaged-plain test-storaged-asan
TEST_TARGETS += test-storaged

# make test runs the whole suite against the ASan + UBSan build (every
# check of the plain run and the sanitizers' on top), and against the plain
# build only the tests that measure memory (ASan's quarantine and shadow
# memory make RSS meaningless); the plain binary also serves every other
# suite (t/, cluster, cli, partitions, hostile, dashboard).  The whole
# suite against the plain build is `make test-storaged-plain`, part of
# `make test-long`.  This keeps about two minutes out of `make test`.
STORAGED_MEMORY_TESTS := test_listing_streams_with_bounded_memory or \
                         test_memory_bounded or \
                         test_declared_length_is_not_allocated_up_front

test-storaged: test-storaged-asan test-storaged-memory

.PHONY: test-storaged-memory
test-storaged-memory: $(STORAGED_BIN) $(STORAGED_LEGACY)
	SKV_STORAGED=$(abspath $(STORAGED_BIN)) $(STORAGED_PYTEST) \
		-k "$(STORAGED_MEMORY_TESTS)"

test-storaged-plain: $(STORAGED_BIN) $(STORAGED_LEGACY)
	SKV_STORAGED=$(abspath $(STORAGED_BIN)) $(STORAGED_PYTEST)

test-storaged-asan: $(STORAGED_ASAN) $(STORAGED_LEGACY)
	SKV_STORAGED=$(abspath $(STORAGED_ASAN)) SKV_SANITIZED=1 $(STORAGED_PYTEST)

# The slow storaged tests (1 GiB values through storaged, with its memory
# measured: about a minute), not in `make test`; `make test-long` runs them.
.PHONY: test-storaged-long
test-storaged-long: $(STORAGED_BIN) $(STORAGED_LEGACY)
	SKV_STORAGED=$(abspath $(STORAGED_BIN)) SKV_TEST_LONG=1 \
		$(STORAGED_PYTEST)/test_large.py -s -k test_long_

test-long: test-storaged-long test-storaged-plain
