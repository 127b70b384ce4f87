# Unit tests of the shared core (cmocka), built and run twice: plain, and
# under AddressSanitizer + UBSan.

UNIT_TESTS := $(patsubst tests/unit/%.c,%,$(wildcard tests/unit/test_*.c))
UNIT_BINS  := $(addprefix $(BUILD)/tests/unit/,$(UNIT_TESTS))
UNIT_BINS_ASAN := $(addprefix $(BUILD)/asan/tests/unit/,$(UNIT_TESTS))

$(BUILD)/tests/unit/%: tests/unit/%.c $(CORE_LIB) $(CORE_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_C11) -o $@ $< $(CORE_LIB) $(CORE_LIBS) -lcmocka

$(BUILD)/asan/tests/unit/%: tests/unit/%.c $(CORE_LIB_ASAN) $(CORE_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_C11) $(SAN_FLAGS) -o $@ $< $(CORE_LIB_ASAN) $(CORE_LIBS) \
		-lcmocka

.PHONY: test-unit
TEST_TARGETS += test-unit
test-unit: $(UNIT_BINS) $(UNIT_BINS_ASAN)
	@set -e; for t in $(UNIT_BINS) $(UNIT_BINS_ASAN); do \
		echo "== $$t"; $$t; done
