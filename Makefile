# wecom - build, test, demo, bench, check.
# `make test` and `make demo` work on a fresh Debian bookworm machine: they
# install what they need (as root) before building.

CC        ?= cc
CFLAGS    ?= -O2 -g
WARN      := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CORE_FLAGS = -std=c99 -D_GNU_SOURCE -fPIC -fvisibility=hidden $(WARN)
LIBS      := -lcurl -lcrypto -lexpat -lhiredis -lpthread

SRC       := $(wildcard src/*.c)
HDR       := $(wildcard src/*.h)

# runtime name -> interpreter and headers
LUA54_INC  := /usr/include/lua5.4
LUAJIT_INC := /usr/include/luajit-2.1
BUILD      ?= build
CORE_54    := $(BUILD)/lua5.4/wecom/core.so
CORE_JIT   := $(BUILD)/luajit/wecom/core.so
CORE_52    := $(BUILD)/lua5.2/wecom/core.so
CORE_53    := $(BUILD)/lua5.3/wecom/core.so
CORE_SAN   := $(BUILD)/asan/wecom/core.so
LUA_SAN    := $(BUILD)/asan/lua_asan
SANITIZE   := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

DEB_PACKAGES := lua5.4 liblua5.4-dev luajit2 libluajit2-5.1-dev lua-cjson \
	libcurl4-openssl-dev libssl-dev libexpat1-dev lua-busted lua-check \
	nginx libnginx-mod-http-lua redis-server libhiredis-dev lua-socket curl \
	openssl ca-certificates valgrind luarocks make gcc wrk \
	lua5.2 liblua5.2-dev lua5.3 liblua5.3-dev \
	chromium chromium-driver fonts-noto-cjk

NODE_DIR  := build/node
DIST      ?= dist
LUA_ENV    = LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;'

.PHONY: all deps build test lint spec spec-lua54 spec-luajit spec-compat spec-browser check check-asan \
	check-valgrind demo bench clean rock rock-test node-deps

all: build

deps:
	@sh .ci/deps.sh $(DEB_PACKAGES)

build: $(CORE_54) $(CORE_JIT)

$(CORE_54): $(SRC) $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CORE_FLAGS) -I$(LUA54_INC) -shared -o $@ $(SRC) $(LIBS)

$(CORE_JIT): $(SRC) $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CORE_FLAGS) -I$(LUAJIT_INC) -shared -o $@ $(SRC) $(LIBS)

# Lua 5.2 and 5.3: the unit specs run there too (spec-compat).
$(BUILD)/lua5.%/wecom/core.so: $(SRC) $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CORE_FLAGS) -I/usr/include/lua5.$* -shared -o $@ $(SRC) $(LIBS)

# The core built with AddressSanitizer + UndefinedBehaviorSanitizer for lua5.4,
# and an interpreter linked with the same runtime (no LD_PRELOAD, so the
# programs the specs start are not sanitized).
$(CORE_SAN): $(SRC) $(HDR)
	@mkdir -p $(dir $@)
	$(CC) -O1 -g $(SANITIZE) $(CORE_FLAGS) -I$(LUA54_INC) -shared -o $@ $(SRC) $(LIBS)

$(LUA_SAN): tools/lua_asan.c
	@mkdir -p $(dir $@)
	$(CC) -O1 -g $(SANITIZE) $(WARN) -I$(LUA54_INC) -o $@ $< -llua5.4

node-deps: $(NODE_DIR)/node_modules/@wecom/crypto/package.json

$(NODE_DIR)/node_modules/@wecom/crypto/package.json:
	@mkdir -p $(NODE_DIR)
	cd $(NODE_DIR) && npm install --no-audit --no-fund --silent @wecom/crypto@1.0.1

lint:
	luacheck -q lua spec bin/wecom-emulator bin/wecom examples bench

spec-lua54: build node-deps
	$(LUA_ENV) LUA_CPATH='$(BUILD)/lua5.4/?.so;;' lua5.4 /usr/bin/busted --run=lua54

spec-luajit: build node-deps
	$(LUA_ENV) LUA_CPATH='$(BUILD)/luajit/?.so;;' luajit /usr/bin/busted --run=luajit

# The unit specs on Lua 5.2 and 5.3 (PUC Lua 5.1 is not supported: its
# coroutines cannot yield across pcall, which wecom.parallel needs).
spec-compat: $(CORE_52) $(CORE_53) node-deps
	$(LUA_ENV) LUA_CPATH='$(BUILD)/lua5.2/?.so;;' lua5.2 /usr/bin/busted --run=check -o utfTerminal
	$(LUA_ENV) LUA_CPATH='$(BUILD)/lua5.3/?.so;;' lua5.3 /usr/bin/busted --run=check -o utfTerminal

spec: spec-lua54 spec-luajit spec-compat

# examples/openresty clicked through in Debian's headless Chromium (chromedriver)
# against the emulator, once (about 20 s); the screenshots stay in build/screenshots/.
spec-browser: build
	$(LUA_ENV) LUA_CPATH='$(BUILD)/lua5.4/?.so;;' lua5.4 /usr/bin/busted spec/browser

# Sanitizers: the unit, integration and emulator specs on lua5.4 with the ASan/UBSan
# core, then the unit specs under valgrind with the normal core.
check: check-asan check-valgrind

check-asan: $(CORE_SAN) $(LUA_SAN) node-deps
	$(LUA_ENV) LUA_CPATH='$(BUILD)/asan/?.so;;' \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	WECOM_SPEC_LUA=$(abspath $(LUA_SAN)) WECOM_SPEC_CFLAGS='$(SANITIZE)' \
	$(LUA_SAN) /usr/bin/busted --run=asan

check-valgrind: $(CORE_54) node-deps
	$(LUA_ENV) LUA_CPATH='$(BUILD)/lua5.4/?.so;;' \
	valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
	lua5.4 /usr/bin/busted --run=check

# Installs the rock for lua5.4 and for LuaJIT into temporary trees and uses
# each from outside the checkout (spec/install).
rock-test: build
	$(LUA_ENV) lua5.4 /usr/bin/busted --run=install

# A source rock of HEAD in $(DIST)/: `luarocks pack` needs the sources at
# source.url, which is not published yet, so they come from `git archive`.
rock:
	@mkdir -p $(DIST) && tmp=$$(mktemp -d) && \
	git archive --format=tar.gz --prefix=wecom/ -o $$tmp/wecom-dev.tar.gz HEAD && \
	sed 's|^   url = .*|   url = "file://'"$$tmp"'/wecom-dev.tar.gz",\n   dir = "wecom",|' \
		wecom-dev-1.rockspec >$$tmp/wecom-dev-1.rockspec && \
	(cd $(DIST) && luarocks pack $$tmp/wecom-dev-1.rockspec); \
	rc=$$?; rm -rf $$tmp; exit $$rc

test: deps build lint spec spec-browser check rock-test

# The main example against a private emulator on a free port (one already on
# 8443 does not matter), stopped again afterwards.
demo: deps build
	@dir=$$(mktemp -d /tmp/wecom-demo.XXXXXX) && \
	out=$$($(LUA_ENV) lua5.4 bin/wecom-emulator start --dir "$$dir" --core-cpath $(BUILD)/luajit) && \
	eval "$$out" && export WECOM_BASE_URL WECOM_CA_FILE && \
	$(LUA_ENV) LUA_CPATH='$(BUILD)/lua5.4/?.so;;' lua5.4 examples/chain_report.lua; \
	rc=$$?; lua5.4 bin/wecom-emulator stop --dir "$$dir" >/dev/null; rm -rf "$$dir"; exit $$rc

bench: deps build node-deps
	BUILD=$(BUILD) sh bench/run.sh

clean:
	rm -rf build $(DIST)
