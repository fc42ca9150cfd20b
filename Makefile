# Kafscale - top-level build. `make` builds every program into bin/.
#   make SANITIZE=address,undefined   build with sanitizers (into build-san/ and bin/)
#   make DEBUG=1                      -O0 -g3, assertions on
#   make deps | run | test | fuzz | clean
CC       ?= cc
PKGS     := libevent libevent_pthreads jansson liblz4 libcurl libcrypto zlib libzstd snappy
OPT      := $(if $(DEBUG),-O0 -g3,-O2 -g)
CFLAGS   += -std=gnu11 $(OPT) -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
            -Wno-missing-field-initializers -fno-strict-aliasing -MMD -MP -D_GNU_SOURCE -pthread \
            -Icommon -Ibroker -Iflusher
CFLAGS   += $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -pthread
ifneq ($(SANITIZE),)
CFLAGS   += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
LDFLAGS  += -fsanitize=$(SANITIZE)
endif
BUILD    := build$(if $(SANITIZE),-san)$(if $(DEBUG),-dbg)

COMMON_SRC := $(wildcard common/*.c)
BROKER_SRC := $(wildcard broker/*.c)
FLUSHER_SRC := $(wildcard flusher/*.c)
UNIT_SRC   := $(wildcard test/unit/*.c)
TOOLS_SRC  := $(wildcard test/tools/*.c)
TOOLS      := $(TOOLS_SRC:test/tools/%.c=bin/%)
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/%.o)
BROKER_OBJ := $(BROKER_SRC:%.c=$(BUILD)/%.o)
UNIT_OBJ   := $(UNIT_SRC:%.c=$(BUILD)/%.o)
FLUSHER_OBJ := $(FLUSHER_SRC:%.c=$(BUILD)/%.o)
BROKER_LIB_OBJ := $(filter-out $(BUILD)/broker/main.o,$(BROKER_OBJ))

PROGS := bin/kafscale-broker bin/kafscale-flusher

.PHONY: all deps run test unit e2e fuzz fuzz-build clean
all: $(PROGS)

Q := $(if $(V),,@)
$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libkafscale.a: $(COMMON_OBJ)
	@rm -f $@
	ar rcs $@ $^

# bin/ holds one build variant at a time: switching SANITIZE/DEBUG relinks.
VARIANT := bin/.variant-$(BUILD)
$(VARIANT):
	@mkdir -p bin
	@rm -f bin/.variant-*
	@touch $@

bin/kafscale-broker: $(BROKER_OBJ) $(BUILD)/libkafscale.a $(VARIANT)
	@mkdir -p bin
	$(CC) $(LDFLAGS) -o $@ $(filter %.o %.a,$^) $(LDLIBS)

bin/kafscale-flusher: $(FLUSHER_OBJ) $(BUILD)/libkafscale.a $(VARIANT)
	@mkdir -p bin
	$(CC) $(LDFLAGS) -o $@ $(filter %.o %.a,$^) $(LDLIBS)

# Test tools: one program per test/tools/*.c, linked with the common library.
bin/%: $(BUILD)/test/tools/%.o $(BUILD)/libkafscale.a $(VARIANT)
	@mkdir -p bin
	$(CC) $(LDFLAGS) -o $@ $(filter %.o %.a,$^) $(LDLIBS)

bin/unit-tests: $(UNIT_OBJ) $(BROKER_LIB_OBJ) $(BUILD)/libkafscale.a $(VARIANT)
	@mkdir -p bin
	$(CC) $(LDFLAGS) -o $@ $(filter %.o %.a,$^) $(LDLIBS) $(shell pkg-config --libs check 2>/dev/null)

deps:
	@scripts/deps.sh

run: all
	@scripts/run.sh

unit: bin/unit-tests
	bin/unit-tests

e2e: all $(TOOLS)
	/usr/bin/python3 test/e2e/run_all.py

test: deps
	$(MAKE) all bin/unit-tests $(TOOLS)
	bin/unit-tests
	$(MAKE) fuzz-replay
	/usr/bin/python3 test/e2e/run_all.py

# libFuzzer target over the request decoder: `make fuzz FUZZ_SECONDS=60`.
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS := -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Icommon -Ibroker \
               $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
bin/fuzz-request: test/fuzz/fuzz_request.c $(COMMON_SRC) $(BROKER_SRC)
	@mkdir -p bin
	clang $(FUZZ_CFLAGS) -DKAFSCALE_FUZZ -o $@ test/fuzz/fuzz_request.c $(COMMON_SRC) $(filter-out broker/main.c,$(BROKER_SRC)) $(LDLIBS)
fuzz: bin/fuzz-request
	@mkdir -p build/fuzz-corpus
	bin/fuzz-request -max_total_time=$(FUZZ_SECONDS) -max_len=65536 build/fuzz-corpus test/fuzz/corpus
fuzz-replay: bin/fuzz-request
	bin/fuzz-request -runs=0 test/fuzz/corpus

clean:
	rm -rf build build-san build-dbg build-san-dbg bin

-include $(COMMON_OBJ:.o=.d) $(BROKER_OBJ:.o=.d) $(UNIT_OBJ:.o=.d) $(FLUSHER_OBJ:.o=.d) $(TOOLS_SRC:%.c=$(BUILD)/%.d)
