# skv, the command-line client (libcurl + jansson), built twice: build/skv,
# and build/asan/skv under AddressSanitizer + UBSan, which `make test-cli`
# drives so that the tests also catch memory errors in the client.

CLI_SRCS := $(wildcard cli/*.c)
CLI_HDRS := $(wildcard cli/*.h) $(CORE_HDRS)
CLI_LIBS := $(shell pkg-config --libs libcurl jansson 2>/dev/null \
                || echo -lcurl -ljansson) -lm
CLI_BIN  := $(BUILD)/skv
CLI_BIN_ASAN := $(BUILD)/asan/skv

all: $(CLI_BIN) $(CLI_BIN_ASAN)

$(BUILD)/cli/%.o: cli/%.c $(CLI_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_C11) -Icli -c -o $@ $<

$(BUILD)/asan/cli/%.o: cli/%.c $(CLI_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_C11) $(SAN_FLAGS) -Icli -c -o $@ $<

$(CLI_BIN): $(patsubst cli/%.c,$(BUILD)/cli/%.o,$(CLI_SRCS)) $(CORE_LIB)
	$(CC) -o $@ $(filter %.o,$^) $(CORE_LIB) $(CORE_LIBS) $(CLI_LIBS)

$(CLI_BIN_ASAN): $(patsubst cli/%.c,$(BUILD)/asan/cli/%.o,$(CLI_SRCS)) \
		$(CORE_LIB_ASAN)
	$(CC) $(SAN_FLAGS) -o $@ $(filter %.o,$^) $(CORE_LIB_ASAN) \
		$(CORE_LIBS) $(CLI_LIBS)

# The tests start their own storaged nodes and router (ports 21000-21499)
# and need storaged and the module built.
.PHONY: test-cli
TEST_TARGETS += test-cli
test-cli: $(CLI_BIN) $(CLI_BIN_ASAN)
	SKV_CLI=$(abspath $(CLI_BIN_ASAN)) $(PYTHON) -m pytest -q tests/cli
