# The shared core: placement, versions, keys, record format.  Built as a
# static library for storaged, the CLI and the tests; the nginx module
# compiles the same sources through the top-level `config`.

CORE_SRCS := $(wildcard core/*.c)
CORE_HDRS := $(wildcard core/*.h)
CORE_LIBS := -lxxhash -lm
CORE_LIB  := $(BUILD)/libsimplekv.a
CORE_LIB_ASAN := $(BUILD)/asan/libsimplekv.a

all: $(CORE_LIB)

$(BUILD)/core/%.o: core/%.c $(CORE_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_C11) -c -o $@ $<

$(BUILD)/asan/core/%.o: core/%.c $(CORE_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_C11) $(SAN_FLAGS) -c -o $@ $<

$(CORE_LIB): $(patsubst core/%.c,$(BUILD)/core/%.o,$(CORE_SRCS))
	ar rcs $@ $^

$(CORE_LIB_ASAN): $(patsubst core/%.c,$(BUILD)/asan/core/%.o,$(CORE_SRCS))
	ar rcs $@ $^
