# tools/tools.mk - the command-line tools, included by the top Makefile.
#
#   $(BUILD)/kvshm-cli   inspect and operate a live cache (tools/kvshm-cli.c,
#                        tools/cli_*.c; public API only)
#   make test-cli        its tests (tests/cli/test_cli.sh, with the helper
#                        tests/cli/writer.c)

# ---- kvshm-cli -----------------------------------------------------------
CLI_SRC := tools/kvshm-cli.c $(wildcard tools/cli_*.c)
CLI_HDR := tools/cli.h libshm/kvshm.h

$(BUILD)/kvshm-cli: $(CLI_SRC) $(CLI_HDR) $(BUILD)/libkvshm.a
	$(CC) $(WARN) $(CFLAGS) -Ilibshm $(CLI_SRC) $(BUILD)/libkvshm.a \
	  $(LDLIBS) -o $@

ALL_TARGETS  += $(BUILD)/kvshm-cli

# A helper that drives a cache through the library for the CLI's tests.
$(BUILD)/tests/cli-writer: tests/cli/writer.c libshm/kvshm.h $(BUILD)/libkvshm.a
	@mkdir -p $(@D)
	$(CC) $(WARN) $(CFLAGS) -Ilibshm $< $(BUILD)/libkvshm.a $(LDLIBS) -o $@

.PHONY: test-cli
test-cli: $(BUILD)/kvshm-cli $(BUILD)/tests/cli-writer
	@tests/cli/test_cli.sh $(BUILD)/kvshm-cli $(BUILD)/tests/cli-writer

TEST_TARGETS += test-cli
