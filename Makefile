# clawgate — build, test, run.
#
#   make            build/clawgate (optimised, with debug info)
#   make run        build and start the gateway with etc/clawgate.json5
#   make test       everything: format check, unit tests (ASan+UBSan), concurrency
#                   tests (TSan), fuzz smoke runs, end-to-end tests
#   make deps       install the Debian packages the build and tests need (root)
#   make asan|tsan  sanitizer builds under build-asan/ and build-tsan/
#   make bench      benchmarks (prints figures; no test asserts times)
#   make fuzz       longer fuzz runs of every target under fuzz/
#   make format     reformat; make format-check fails on unformatted code

CC      ?= gcc
ifeq ($(origin CC),default)
CC      := gcc
endif
BUILD   ?= build
SAN     ?=
OPT     ?= -O2
PKGS    := ck msgpack libcurl sqlite3 libmicrohttpd json-c

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS_BASE := -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -g -pthread -I. $(PKG_CFLAGS)
ifneq ($(SAN),)
SANFLAGS := -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ifeq ($(SAN),thread)
SANFLAGS += -DCG_TSAN=1
endif
OPT := -O1
endif
CFLAGS  := $(CFLAGS_BASE) $(OPT) $(SANFLAGS) $(EXTRA_CFLAGS)
LDFLAGS := -pthread $(SANFLAGS)
LDLIBS  := $(PKG_LIBS) -lm

SRC_DIRS ?= common mailbox actors config proto http store cli
LIB_SRCS := $(filter-out cli/main.c,$(wildcard $(addsuffix /*.c,$(SRC_DIRS))))
LIB_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
LIB      := $(BUILD)/libclawgate.a

TEST_SRCS  := $(wildcard $(patsubst %,tests/%/test_*.c,$(SRC_DIRS)))
TEST_BINS  := $(patsubst %.c,$(BUILD)/%,$(TEST_SRCS))
BENCH_SRCS := $(wildcard bench/*.c)
BENCH_BINS := $(patsubst %.c,$(BUILD)/%,$(BENCH_SRCS))

.PHONY: all run test deps deps-check-quiet asan tsan bench fuzz fuzz-smoke format format-check tests-bin clean check-deps

all: check-deps $(BUILD)/clawgate

check-deps:
	@pkg-config --exists $(PKGS) || { echo "missing libraries; run 'make deps' as root" >&2; \
	  pkg-config --print-errors --exists $(PKGS); exit 1; }

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# store/db.c embeds schema/*.sql with .incbin, which -MMD cannot see.
$(BUILD)/obj/store/db.o: $(wildcard schema/*.sql)

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/clawgate: $(BUILD)/obj/cli/main.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Each test binary is one tests/<module>/test_*.c linked with the library.
$(BUILD)/tests/%: tests/%.c tests/t.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS)

tests-bin: check-deps $(BUILD)/clawgate $(TEST_BINS)

-include $(LIB_OBJS:.o=.d) $(BUILD)/obj/cli/main.d $(TEST_BINS:=.d)

run: deps-check-quiet
	$(MAKE) all
	@mkdir -p var
	$(BUILD)/clawgate serve --config $${CLAWGATE_CONFIG:-etc/clawgate.json5}

asan:
	$(MAKE) BUILD=build-asan SAN=address,undefined tests-bin

tsan:
	$(MAKE) BUILD=build-tsan SAN=thread tests-bin

test: deps-check-quiet
	bash tests/run.sh

deps-check-quiet:
	@pkg-config --exists $(PKGS) && command -v clang >/dev/null && command -v python3 >/dev/null \
	  && command -v clang-format >/dev/null || $(MAKE) deps

deps:
	bash tests/deps.sh

bench: all $(BENCH_BINS)
	bash bench/run.sh

# Fuzz targets: fuzz/fuzz_<name>.c, built with clang's libFuzzer plus ASan/UBSan.
FUZZ_SRCS := $(wildcard fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst fuzz/%.c,build-fuzz/%,$(FUZZ_SRCS))
FUZZ_CFLAGS := -std=c17 -D_GNU_SOURCE -g -O1 -I. $(PKG_CFLAGS) -pthread \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
build-fuzz/%: fuzz/%.c $(LIB_SRCS)
	@mkdir -p build-fuzz
	clang $(FUZZ_CFLAGS) -o $@ $< $(LIB_SRCS) $(PKG_LIBS) -lm

fuzz: $(FUZZ_BINS)
	bash fuzz/run.sh long

fuzz-smoke: $(FUZZ_BINS)
	bash fuzz/run.sh smoke

FORMAT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null; git ls-files --others --exclude-standard '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(FORMAT_FILES)

format-check:
	@out=$$(for f in $(FORMAT_FILES); do clang-format --dry-run -Werror "$$f" 2>&1 >/dev/null || echo "$$f"; done); \
	if [ -n "$$out" ]; then echo "unformatted (run 'make format'):"; echo "$$out"; exit 1; fi; \
	echo "format-check: ok"

clean:
	rm -rf build build-asan build-tsan build-fuzz
