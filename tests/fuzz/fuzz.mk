# tests/fuzz/fuzz.mk - the segment fuzzer (included by the top Makefile;
# README "Fuzz test").  Random damage to a segment image, then every
# operation from C, under ASan+UBSan: no signal, no hang, no wrong value.
#
#   $(BUILD)/fuzz/fuzz_segment   the fuzzer (--help for its options)
#   make fuzz                    the long run: FUZZ_TRIALS (5000) trials
#   make test-fuzz               the short run: FUZZ_SHORT_TRIALS (300)
#   FUZZ_SEED=S                  pin the seed (make fuzz: a new one each run,
#                                printed; make test-fuzz: 1, so that CI runs
#                                the same trials every time).  Trial k uses
#                                seed S+k, and `fuzz_segment --seed S+k
#                                --trials 1` replays it with its ASan report
#   FUZZ_IN_TEST=0               make `make test` only build the fuzzer

FUZZ_BIN          := $(BUILD)/fuzz/fuzz_segment
FUZZ_TRIALS       ?= 5000
FUZZ_SHORT_TRIALS ?= 300
FUZZ_IN_TEST      ?= 1
FUZZ_RUN := ASAN_OPTIONS=abort_on_error=1:detect_leaks=0:handle_segv=1:handle_sigbus=1:handle_abort=1 \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 KVSHM_REAPER=off \
            $(FUZZ_BIN)

# Built like the san-tests: against the ASan+UBSan objects of libshm.
$(FUZZ_BIN): tests/fuzz/fuzz_segment.c $(SAN_LIB) $(LIB_HDR)
	@mkdir -p $(@D)
	$(CC) $(WARN) -O1 -g $(SAN) -Ilibshm $< $(SAN_LIB) $(LDLIBS) -o $@

# `make test` runs the short run (FUZZ_IN_TEST=0: only builds it).
ifeq ($(FUZZ_IN_TEST),1)
TEST_TARGETS += test-fuzz
else
TEST_TARGETS += $(FUZZ_BIN)
endif

.PHONY: test-fuzz fuzz
test-fuzz: $(FUZZ_BIN)
	$(FUZZ_RUN) --seed $(or $(FUZZ_SEED),1) --trials $(FUZZ_SHORT_TRIALS)

fuzz: $(FUZZ_BIN)
	$(FUZZ_RUN) $(if $(FUZZ_SEED),--seed $(FUZZ_SEED)) --trials $(FUZZ_TRIALS)
