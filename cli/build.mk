# skv, the command-line client (libcurl + jansson), built twice: build/skv,
# and build/asan/skv under AddressSanitizer + UBSan, which `make test-cli`
# drives so that the tests also catch memory errors in the client.

CLI_SRCS := $(wildcard cli/*.c)
CLI_HDRS := $(wildcard cli/*.h) $(CORE_HDRS)
CLI_LIBS := $(shell pkg-config --libs libcurl jansson 2>/dev/null \
                || echo -lcurl -ljansson) -lcrypto -lm
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
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(CORE_LIB) $(CORE_LIBS) $(CLI_LIBS)

$(CLI_BIN_ASAN): $(patsubst cli/%.c,$(BUILD)/asan/cli/%.o,$(CLI_SRCS)) \
		$(CORE_LIB_ASAN)
	$(CC) $(SAN_FLAGS) -o $@ $(filter %.o,$^) $(CORE_LIB_ASAN) \
		$(CORE_LIBS) $(CLI_LIBS)

# The tests start their own storaged nodes and router (ports 21000-21499)
# and need storaged and the module built.
.PHONY: test-cli
TEST_TARGETS += test-cli
test-cli: $(CLI_BIN) $(CLI_BIN_ASAN) $(BUILD)/storaged $(NGX_MODULE_SO)
	SKV_CLI=$(abspath $(CLI_BIN_ASAN)) $(PYTHON) -m pytest -q tests/cli

# docker/ cannot be run here (no Docker engine): these checks validate the
# compose file (docker-compose config), its agreement with the router
# configuration generated from conf/nginx.conf, the Dockerfiles' inputs,
# and run that configuration with the compose storaged arguments on
# loopback ports 21030-21033 (SKV_DOCKER_PORT_BASE moves them).  See
# docker/README.md.
.PHONY: test-docker
TEST_TARGETS += test-docker
test-docker: $(CLI_BIN) $(BUILD)/storaged $(NGX_MODULE_SO)
	SKV_CLI=$(abspath $(CLI_BIN)) $(PYTHON) -m pytest -q tests/docker
