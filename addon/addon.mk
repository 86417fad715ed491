# addon/addon.mk - the Node addon (included by the top Makefile).
#
#   make addon       build addon/build/Release/kvshm.node with node-gyp
#   make test-node   the addon's tests (node's test runner, KVSHM_TESTING=1)
#   make test-keyv   @keyv/test-suite against kvshm/keyv (vitest)
#   make bench-node  kvshm against Map, lmdb, Redis and a pipe (bench/node)
#   make bench-near  kvshm/redis's near cache against ioredis and a Map per process
#   make bench-keyv  what Keyv costs over kvshm, and Keyv's other stores
#   make demo-node   HTTP cluster: a slow loader behind kvshm's getOrSet vs a Map per worker
#
# node-gyp is the pinned devDependency; addon/scripts/build.js points it at
# the running Node's own headers (--nodedir), so nothing is downloaded.

NODE        ?= node
ADDON       := addon/build/Release/kvshm.node
ADDON_SRC   := addon/binding.gyp $(wildcard addon/src/*.c addon/src/*.h) \
               $(LIB_SRC) $(LIB_HDR) $(wildcard tools/*.c tools/*.h) \
               deps/sqlite/sqlite3.c deps/sqlite/sqlite3.h \
               deps/sqlite/options.txt addon/scripts/build.js
NODE_TESTS  := $(sort $(wildcard addon/test/*.test.js))
NPM_STAMP   := node_modules/.kvshm-lock-stamp

.PHONY: addon test-node test-keyv bench-node bench-near bench-getorset bench-keyv demo-node clean-addon

ALL_TARGETS  += addon
TEST_TARGETS += test-node

addon: $(ADDON)

# gyp reads the libshm file list when it configures, so a rebuild picks up
# new libshm files; -Werror here, warnings only when installed elsewhere.
$(ADDON): $(ADDON_SRC) | $(NPM_STAMP)
	$(NODE) addon/scripts/build.js --werror

# node-gyp comes from npm ci (scripts/deps.sh writes this stamp).
$(NPM_STAMP):
	@scripts/deps.sh

# KVSHM_TESTING=1 gives handles the hooks of lib/testing.js (clock, signals);
# the test files and the processes they spawn inherit it.
test-node: $(ADDON)
	KVSHM_TESTING=1 $(NODE) --test $(NODE_TESTS)

# Keyv's conformance suite runs under vitest (addon/test/keyv-suite), which
# the node:test files above cannot host.  CI=true and no stdin keep vitest
# from watching or asking anything; one worker (vitest.config.mjs).
test-keyv: deps $(ADDON)
	CI=true NO_COLOR=1 $(NODE) node_modules/vitest/vitest.mjs run \
	  --config addon/test/keyv-suite/vitest.config.mjs </dev/null

TEST_TARGETS += test-keyv

bench-node: deps $(ADDON)
	$(NODE) bench/node/bench.js

# The near cache on 2 simulated hosts x 2 workers against plain ioredis and
# a client-side cache per process, over one private redis-server.
bench-near: deps $(ADDON)
	$(NODE) bench/node/near.js

# getOrSet's hit path against get, getMany/setMany against single calls.
bench-getorset: deps $(ADDON)
	$(NODE) bench/node/getorset.js

# Keyv over kvshm/keyv against kvshm itself and Keyv's other stores.
bench-keyv: deps $(ADDON)
	$(NODE) bench/node/keyv.js

demo-node: deps $(ADDON)
	$(NODE) examples/http-cluster.js

# `make clean` removes the addon's build too.
clean: clean-addon
clean-addon:
	rm -rf addon/build

# ---- the package -----------------------------------------------------------
#   make prebuild      addon/prebuilds/<platform>-<arch>-<libc>/ from the build
#   make pack          build/kvshm-VERSION.tgz, prebuilt files included
#   make test-package  install it as users do and use it (tests/package)
PACKAGE := $(BUILD)/kvshm-$(shell $(NODE) -p "require('./package.json').version" 2>/dev/null).tgz

.PHONY: prebuild pack test-package
prebuild: $(ADDON)
	$(NODE) addon/scripts/prebuild.js

pack: prebuild
	@mkdir -p $(BUILD)
	npm pack --pack-destination $(BUILD) --loglevel=error >/dev/null
	@echo "pack: $(PACKAGE)"

test-package: pack $(BUILD)/kvshm-cli
	@tests/package/test_package.sh $(PACKAGE)

TEST_TARGETS += test-package
