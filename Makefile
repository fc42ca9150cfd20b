# Kafscale - top-level build. `make` builds every program into bin/.
#   make SANITIZE=address,undefined   build with sanitizers (into build-san/ and bin/)
#   make DEBUG=1                      -O0 -g3, assertions on
#   make deps | run | test | fuzz | clean
CC       ?= cc
PKGS     := libevent libevent_pthreads jansson liblz4 libcurl libcrypto zlib libzstd snappy libprotobuf-c
OPT      := $(if $(DEBUG),-O0 -g3,-O2 -g)
CFLAGS   += -std=gnu11 $(OPT) -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
            -Wno-missing-field-initializers -fno-strict-aliasing -MMD -MP -D_GNU_SOURCE -pthread \
            -Icommon -Ibroker -Iflusher -I$(BUILD)/proto
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
CACHED_SRC := $(filter-out cached/shm_tool.c,$(wildcard cached/*.c))
SHM_TOOL_SRC := cached/shm_tool.c
UNIT_SRC   := $(wildcard test/unit/*.c)
TOOLS_SRC  := $(wildcard test/tools/*.c)
TOOLS      := $(TOOLS_SRC:test/tools/%.c=bin/%)
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/%.o)
BROKER_OBJ := $(BROKER_SRC:%.c=$(BUILD)/%.o)
UNIT_OBJ   := $(UNIT_SRC:%.c=$(BUILD)/%.o)
FLUSHER_OBJ := $(FLUSHER_SRC:%.c=$(BUILD)/%.o)
CACHED_OBJ := $(CACHED_SRC:%.c=$(BUILD)/%.o)
SHM_TOOL_OBJ := $(SHM_TOOL_SRC:%.c=$(BUILD)/%.o)
BROKER_LIB_OBJ := $(filter-out $(BUILD)/broker/main.o,$(BROKER_OBJ))
CTL_SRC    := $(wildcard ctl/*.c)
CTL_OBJ    := $(CTL_SRC:%.c=$(BUILD)/%.o)

PROGS := bin/kafscale-broker bin/kafscale-flusher bin/kafscale-ctl bin/kafscale-cached bin/kafscale-shm

.PHONY: all deps run test unit e2e fuzz fuzz-build clean bench
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

bin/kafscale-cached: $(CACHED_OBJ) $(BUILD)/libkafscale.a $(VARIANT)
	@mkdir -p bin
	$(CC) $(LDFLAGS) -o $@ $(filter %.o %.a,$^) $(LDLIBS)

bin/kafscale-shm: $(SHM_TOOL_OBJ) $(BUILD)/libkafscale.a $(VARIANT)
	@mkdir -p bin
	$(CC) $(LDFLAGS) -o $@ $(filter %.o %.a,$^) $(LDLIBS)

# Control API (proto/control/broker.proto): protoc-c writes the message code
# into $(BUILD)/proto/control/; it goes into the broker (broker/http.c) and
# kafscale-ctl (ctl/).
PROTO_SRC := proto/control/broker.proto
PROTO_C   := $(BUILD)/proto/control/broker.pb-c.c
PROTO_H   := $(BUILD)/proto/control/broker.pb-c.h
PROTO_OBJ := $(BUILD)/proto/control/broker.pb-c.o
$(PROTO_C) $(PROTO_H) &: $(PROTO_SRC)
	@mkdir -p $(BUILD)/proto
	protoc-c --c_out=$(BUILD)/proto --proto_path=proto $(PROTO_SRC)
$(PROTO_OBJ): $(PROTO_C) $(PROTO_H)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@
$(BUILD)/broker/http.o $(CTL_OBJ) $(UNIT_OBJ): $(PROTO_H)
bin/kafscale-broker bin/unit-tests: $(PROTO_OBJ)

bin/kafscale-ctl: $(CTL_OBJ) $(PROTO_OBJ) $(BUILD)/libkafscale.a $(VARIANT)
	@mkdir -p bin
	$(CC) $(LDFLAGS) -o $@ $(filter %.o %.a,$^) $(LDLIBS)

# Metadata values (proto/kafscale/metadata.proto): protoc-c writes the
# message code into $(BUILD)/proto/kafscale/; it goes into libkafscale.a
# (common/meta_pb.c converts it to and from the structs of common/meta.h).
META_PB_SRC := proto/kafscale/metadata.proto
META_PB_C   := $(BUILD)/proto/kafscale/metadata.pb-c.c
META_PB_H   := $(BUILD)/proto/kafscale/metadata.pb-c.h
META_PB_OBJ := $(BUILD)/proto/kafscale/metadata.pb-c.o
$(META_PB_C) $(META_PB_H) &: $(META_PB_SRC)
	@mkdir -p $(BUILD)/proto
	protoc-c --c_out=$(BUILD)/proto --proto_path=proto $(META_PB_SRC)
$(META_PB_OBJ): $(META_PB_C) $(META_PB_H)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@
$(BUILD)/common/meta_pb.o $(UNIT_OBJ) $(TOOLS_SRC:%.c=$(BUILD)/%.o): $(META_PB_H)
# Any object may include the generated headers: they exist before anything
# compiles (order-only; the -MMD dependency files track them afterwards).
$(COMMON_OBJ) $(BROKER_OBJ) $(FLUSHER_OBJ) $(CACHED_OBJ) $(SHM_TOOL_OBJ) $(CTL_OBJ) $(UNIT_OBJ) \
    $(TOOLS_SRC:%.c=$(BUILD)/%.o): | $(META_PB_H) $(PROTO_H)
$(BUILD)/libkafscale.a: $(META_PB_OBJ)

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
	sh test/deploy/run.sh
	$(MAKE) fuzz-replay
	/usr/bin/python3 test/e2e/run_all.py

# libFuzzer target over the request decoder: `make fuzz FUZZ_SECONDS=60`.
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS := -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Icommon -Ibroker \
               $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
bin/fuzz-request: test/fuzz/fuzz_request.c $(COMMON_SRC) $(BROKER_SRC) $(META_PB_C)
	@mkdir -p bin
	clang $(FUZZ_CFLAGS) -I$(BUILD)/proto -DKAFSCALE_FUZZ -o $@ test/fuzz/fuzz_request.c $(COMMON_SRC) $(META_PB_C) $(filter-out broker/main.c broker/http.c,$(BROKER_SRC)) $(LDLIBS)
fuzz: bin/fuzz-request
	@mkdir -p build/fuzz-corpus
	bin/fuzz-request -max_total_time=$(FUZZ_SECONDS) -max_len=65536 build/fuzz-corpus test/fuzz/corpus
fuzz-replay: bin/fuzz-request
	bin/fuzz-request -runs=0 test/fuzz/corpus

# Benchmarks (BENCHMARKS.md): `make bench` installs what is missing, builds
# the node, the tools and the bench programs below, and runs bench/bench.py
# (settings: BENCH_* variables, see the top of bench/bench.py).
# rdkafka_performance is librdkafka's own load generator: its source ships in
# librdkafka-dev's examples and is compiled here, unchanged, against the
# small shim in bench/shim/src (the few internal helpers it uses).
RDKPERF_DOC := /usr/share/doc/librdkafka-dev/examples/rdkafka_performance.c
BENCH_BINS  := bin/bench-mock bin/bench-memcpy bin/bench-s3get bin/rdkafka_performance
BENCH_CC    := $(CC) -std=gnu11 -O2 -g -Wall -Wextra -pthread

bin/bench-mock: bench/mock_cluster.c
	@mkdir -p bin
	$(BENCH_CC) -Werror -o $@ $< $$(pkg-config --cflags --libs rdkafka)

bin/bench-memcpy: bench/memcpy_bench.c
	@mkdir -p bin
	$(BENCH_CC) -Werror -o $@ $<

bin/bench-s3get: $(BUILD)/bench/s3get.o $(BUILD)/libkafscale.a $(VARIANT)
	@mkdir -p bin
	$(CC) $(LDFLAGS) -o $@ $(filter %.o %.a,$^) $(LDLIBS)

bin/rdkafka_performance: bench/shim/src/rd.h bench/shim/src/rdtime.h $(wildcard $(RDKPERF_DOC))
	@mkdir -p bin build/bench
	@if [ -f $(RDKPERF_DOC) ]; then cp $(RDKPERF_DOC) build/bench/rdkafka_performance.c; \
	 elif [ -f $(RDKPERF_DOC).gz ]; then zcat $(RDKPERF_DOC).gz > build/bench/rdkafka_performance.c; \
	 else echo "$(RDKPERF_DOC) missing: install librdkafka-dev (make deps)"; exit 1; fi
	$(BENCH_CC) -Wno-unused-parameter -Wno-sign-compare -Ibench/shim/src $$(pkg-config --cflags rdkafka) \
	  -I/usr/include/librdkafka -o $@ build/bench/rdkafka_performance.c $$(pkg-config --libs rdkafka)

bench: deps
	$(MAKE) all $(TOOLS) $(BENCH_BINS)
	/usr/bin/python3 bench/bench.py
-include $(BUILD)/bench/s3get.d

clean:
	rm -rf build build-san build-dbg build-san-dbg bin

-include $(COMMON_OBJ:.o=.d) $(BROKER_OBJ:.o=.d) $(UNIT_OBJ:.o=.d) $(FLUSHER_OBJ:.o=.d) $(CTL_OBJ:.o=.d) $(CACHED_OBJ:.o=.d) $(SHM_TOOL_OBJ:.o=.d) $(TOOLS_SRC:%.c=$(BUILD)/%.d)
