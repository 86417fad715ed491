# tests/cross/cross.mk - the library built for another C library or
# architecture (included by the top Makefile; tests/cross/test_cross.sh).
#
#   make test-musl    musl-gcc build in build/musl, run natively: a short
#                     torture run and the refusal of the other libc's
#                     segments (part of `make test`)
#   make test-arm64   aarch64-linux-gnu-gcc build in build/arm64, run under
#                     qemu-aarch64-static; installs the cross compiler and
#                     qemu first (about 450 MB, so not part of `make test`)
#
# The Makefile's own rules build them, into their own BUILD directory, so
# the host build and the addon are left alone.  The prebuilt Node files for
# these platforms come from addon/scripts/prebuild.js (README "Platforms").

CROSS_TARGETS = $(1)/kvshm-cli $(1)/kvshm-reaper $(1)/tests/torture

.PHONY: test-musl test-arm64
test-musl: $(BUILD)/kvshm-cli
	@$(MAKE) --no-print-directory CC=musl-gcc BUILD=$(BUILD)/musl \
	  $(call CROSS_TARGETS,$(BUILD)/musl) $(BUILD)/musl/tests/cli-writer \
	  >$(BUILD)/musl.log 2>&1 || \
	  { tail -30 $(BUILD)/musl.log; exit 1; }
	@tests/cross/test_cross.sh musl $(BUILD)/musl $(BUILD)/kvshm-cli

test-arm64: $(BUILD)/kvshm-cli
	@scripts/deps.sh --arm64
	@$(MAKE) --no-print-directory CC=aarch64-linux-gnu-gcc BUILD=$(BUILD)/arm64 \
	  $(BUILD)/arm64/kvshm-cli $(BUILD)/arm64/kvshm-reaper \
	  >$(BUILD)/arm64.log 2>&1 || { tail -30 $(BUILD)/arm64.log; exit 1; }
	@tests/cross/test_cross.sh arm64 $(BUILD)/arm64 $(BUILD)/kvshm-cli

TEST_TARGETS += test-musl
