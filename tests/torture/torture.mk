# tests/torture/torture.mk - the torture test of issue 8 (included by the
# top Makefile; README "Torture test").
#
#   $(BUILD)/tests/torture   the driver, and its C writer (`torture worker`)
#   make test-torture        the short run, part of `make test` (about 75 s
#                            on 2 cores: 3 modes x 2 rounds of 8 s)
#   make torture             the long run: rounds of 20 s until 1000 kills
#                            per mode (TORTURE_KILLS, TORTURE_ROUND_MS and
#                            every other TORTURE_* variable override)

TORTURE_SRC := tests/torture/torture.c tests/torture/worker.c \
               tests/torture/common.c
TORTURE_HDR := tests/torture/torture.h libshm/kvshm.h
TORTURE_BIN := $(BUILD)/tests/torture
TORTURE_RUN := TORTURE_NODE=$(NODE) TORTURE_WORKER_JS=tests/torture/worker.js

$(TORTURE_BIN): $(TORTURE_SRC) $(TORTURE_HDR) $(BUILD)/libkvshm.a
	@mkdir -p $(@D)
	$(CC) $(WARN) $(CFLAGS) -Ilibshm $(TORTURE_SRC) $(BUILD)/libkvshm.a \
	  $(LDLIBS) -o $@

ALL_TARGETS  += $(TORTURE_BIN)
TEST_TARGETS += test-torture

.PHONY: test-torture torture
test-torture: $(TORTURE_BIN) $(BUILD)/kvshm-reaper $(ADDON)
	$(TORTURE_RUN) $(TORTURE_BIN)

torture: deps $(TORTURE_BIN) $(BUILD)/kvshm-reaper $(ADDON)
	$(TORTURE_RUN) TORTURE_KILLS=$${TORTURE_KILLS:-1000} \
	  TORTURE_ROUND_MS=$${TORTURE_ROUND_MS:-20000} $(TORTURE_BIN)
