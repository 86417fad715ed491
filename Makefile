# kvshm - top-level Makefile.
#
#   make          build libshm (static + shared), tools, tests, benchmarks
#   make test     install what is missing, build, run every test
#   make torture  the long torture test (tests/torture/torture.mk)
#   make fuzz     the long segment fuzz run (tests/fuzz/fuzz.mk)
#   make bench    run the benchmarks, then one table of every target
#                 (make bench-quick: a smoke run; make bench-readme: put
#                 the last run's table into README.md)
#   make demo     run the main job
#   make format   clang-format every C file
#   make clean

CC       ?= cc
CFLAGS   ?= -O2 -g
WARN     := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wvla \
            -Wstrict-prototypes -Wmissing-prototypes -fvisibility=hidden \
            -isystem deps/sqlite
PIC      := -fPIC
LDLIBS   := -lpthread -lrt -lm
SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer \
            -fno-sanitize-recover=undefined
BUILD    := build
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lm)

# SQLite is built in (deps/sqlite: the pinned amalgamation and the options
# it is compiled with), into libkvshm.a/.so and so into every program and
# test; no system libsqlite3.  One object, without sanitizers, serves the
# sanitized tests too.
SQLITE_OBJ  := $(BUILD)/sqlite/sqlite3.o
SQLITE_DEFS := $(addprefix -D,$(shell sed -e 's/\#.*//' deps/sqlite/options.txt))

LIB_SRC  := $(wildcard libshm/*.c)
LIB_HDR  := $(wildcard libshm/*.h)
LIB_OBJ  := $(LIB_SRC:libshm/%.c=$(BUILD)/obj/%.o)
SAN_OBJ  := $(LIB_SRC:libshm/%.c=$(BUILD)/san/%.o)
SAN_LIB  := $(SAN_OBJ) $(SQLITE_OBJ)
TEST_SRC := $(wildcard tests/check_*.c)
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
SAN_TESTS:= $(TEST_SRC:tests/%.c=$(BUILD)/san-tests/%)
TEST_UTIL:= tests/testutil.c tests/testutil.h

.PHONY: all lib test test-c test-san test-demo-c bench bench-quick bench-readme \
        demo demo-c format clean deps
.SECONDARY: $(SAN_OBJ)

# Targets each subsystem adds (its own .mk file appends to these).
ALL_TARGETS  := lib $(TESTS) $(BUILD)/bench/bench_shm $(BUILD)/bench/bench_store \
                $(BUILD)/demo/demo_shm
TEST_TARGETS := test-c test-san

all: all-targets

lib: $(BUILD)/libkvshm.a $(BUILD)/libkvshm.so $(BUILD)/kvshm-reaper

# The library starts kvshm-reaper from this absolute path (or from
# $KVSHM_REAPER_PATH).
REAPER   := $(abspath $(BUILD))/kvshm-reaper
LIBDEFS  := -DKVSHM_REAPER_PATH='"$(REAPER)"'

$(BUILD)/obj/%.o: libshm/%.c $(LIB_HDR)
	@mkdir -p $(@D)
	$(CC) $(WARN) $(CFLAGS) $(PIC) $(LIBDEFS) -c $< -o $@

$(BUILD)/san/%.o: libshm/%.c $(LIB_HDR)
	@mkdir -p $(@D)
	$(CC) $(WARN) -O1 -g $(SAN) $(LIBDEFS) -c $< -o $@

$(SQLITE_OBJ): deps/sqlite/sqlite3.c deps/sqlite/sqlite3.h deps/sqlite/options.txt
	@mkdir -p $(@D)
	$(CC) -O2 $(PIC) -fvisibility=hidden $(SQLITE_DEFS) -c $< -o $@

# Made anew each time: `ar r` replaces members but never drops one, so an
# archive kept across a source file's removal would still hold its object.
$(BUILD)/libkvshm.a: $(LIB_OBJ) $(SQLITE_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/libkvshm.so: $(LIB_OBJ) $(SQLITE_OBJ)
	$(CC) -shared -o $@ $^ $(LDLIBS)

$(BUILD)/kvshm-reaper: tools/kvshm-reaper.c $(BUILD)/libkvshm.a
	$(CC) $(WARN) $(CFLAGS) -Ilibshm $< $(BUILD)/libkvshm.a $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/%.c $(TEST_UTIL) $(BUILD)/libkvshm.a $(BUILD)/kvshm-reaper
	@mkdir -p $(@D)
	$(CC) $(WARN) $(CFLAGS) -Ilibshm -DKVSHM_TEST_REAPER='"$(REAPER)"' \
	  $< tests/testutil.c $(BUILD)/libkvshm.a $(TEST_LDFLAGS) \
	  $(CHECK_LIBS) $(LDLIBS) -o $@

$(BUILD)/san-tests/%: tests/%.c $(TEST_UTIL) $(SAN_LIB) $(BUILD)/kvshm-reaper
	@mkdir -p $(@D)
	$(CC) $(WARN) -O1 -g $(SAN) -Ilibshm -DKVSHM_TEST_REAPER='"$(REAPER)"' \
	  $< tests/testutil.c $(SAN_LIB) $(TEST_LDFLAGS) \
	  $(CHECK_LIBS) $(LDLIBS) -o $@

$(BUILD)/bench/%: bench/%.c $(BUILD)/libkvshm.a
	@mkdir -p $(@D)
	$(CC) $(WARN) -O2 -g -Ilibshm $< $(BUILD)/libkvshm.a $(LDLIBS) -lm -o $@

$(BUILD)/demo/%: examples/%.c $(BUILD)/libkvshm.a
	@mkdir -p $(@D)
	$(CC) $(WARN) $(CFLAGS) -Ilibshm $< $(BUILD)/libkvshm.a $(LDLIBS) -o $@

# check_races stops the SQLite tier's calls at the instant of a race.
$(BUILD)/tests/check_races $(BUILD)/san-tests/check_races: TEST_LDFLAGS = \
  -Wl,--wrap=kvshm__store_begin -Wl,--wrap=kvshm__store_scan \
  -Wl,--wrap=kvshm__store_fetch -Wl,--wrap=malloc -Wl,--wrap=calloc \
  -Wl,--wrap=realloc -Wl,--wrap=sqlite3_step -Wl,--wrap=kvshm__lock

deps:
	@scripts/deps.sh

test: deps
	$(MAKE) $(TEST_TARGETS)

# Check's summary line comes from each suite; CK_FORK keeps a crashing test
# from taking the runner down.  Tests that move the clock must not race a
# real-clock reaper: it is off unless a test (check_reaper) turns it on.
test-c: lib $(TESTS)
	@fail=0; for t in $(TESTS); do echo "== $$t"; \
	  KVSHM_REAPER=off $$t || fail=1; done; exit $$fail

test-san: $(SAN_TESTS)
	@fail=0; for t in $(SAN_TESTS); do echo "== $$t (ASan+UBSan)"; \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 KVSHM_SAN=1 \
	  KVSHM_REAPER=off $$t || fail=1; done; exit $$fail

# bench/run.js runs bench_shm, bench_store, the Node bench and the near
# cache's (bench/node/near.js), each with
# --json, prints one summary table of every target they list, and saves
# the run in $(BUILD)/bench/ (run.json, summary.txt, each program's .json
# and .txt); bench/report.js rewrites README.md's performance table from it.
BENCH_RUN := $(BUILD)/bench/bench_shm $(BUILD)/bench/bench_store deps addon

bench: $(BENCH_RUN)
	$(NODE) bench/run.js --build $(BUILD) --command "make bench"

bench-quick: $(BENCH_RUN)
	$(NODE) bench/run.js --build $(BUILD) --command "make bench-quick" --quick

bench-readme:
	$(NODE) bench/report.js --run $(BUILD)/bench/run.json --readme README.md

# The main job: HTTP cluster workers whose pages come from a 20-50 ms loader,
# cached in one shared kvshm cache (getOrSet) and in a Map per worker, the
# same load on both at once (addon/addon.mk; README "The demo").  demo-c is
# the small multi-process C demo.
demo: demo-node

demo-c: deps $(BUILD)/demo/demo_shm
	$(BUILD)/demo/demo_shm

# The C demo's tests: a run, a cache left under an earlier run's name, and
# runs stopped by Ctrl-C, SIGTERM and SIGHUP at any instant.
test-demo-c: $(BUILD)/demo/demo_shm $(BUILD)/kvshm-cli
	@tests/demo/test_demo_c.sh $(BUILD)/demo/demo_shm $(BUILD)/kvshm-cli

TEST_TARGETS += test-demo-c

format:
	clang-format -i libshm/*.[ch] tests/*.[ch] bench/*.c examples/*.c tools/*.c \
	  addon/src/*.c tests/torture/*.[ch] tests/fuzz/*.c 2>/dev/null || true

clean:
	rm -rf $(BUILD)

# Subsystems: tools/ (reaper, CLI), addon/ (Node), the torture test (it
# needs the others), the segment fuzzer.  Each owns its .mk file.
-include tools/tools.mk
-include addon/addon.mk
-include tests/torture/torture.mk
-include tests/fuzz/fuzz.mk
-include tests/cross/cross.mk

all-targets: $(ALL_TARGETS)
.PHONY: all-targets
