# vertexops — make demo | make test | make memcheck | make bench | make build | make deps | make rock | make rock-jit
LUA        ?= lua5.4
LUA_INC    ?= /usr/include/lua5.4
BUILD      := build/5.4
CORE       := $(BUILD)/vertexops/core.so
LUAJIT_INC ?= /usr/include/luajit-2.1
CORE_JIT   := build/jit/vertexops/core.so
CC         ?= cc
CFLAGS     ?= -O2 -g
WARN       := -std=c99 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror
LIBS       := -lcurl -lcrypto -lpthread

DEBS := lua5.4 liblua5.4-dev libcurl4-openssl-dev libssl-dev lua-cjson lua-socket lua-busted \
        lua-check luarocks nginx libnginx-mod-http-lua openssl make gcc valgrind \
        luajit2 libluajit2-5.1-dev locales


RUN := LUA_PATH="./lua/?.lua;./lua/?/init.lua;./spec/?.lua;;" LUA_CPATH="./$(BUILD)/?.so;;"

.PHONY: all deps build test demo memcheck lint rock rock-jit bench clean

all: build

# Installs the Debian packages that are missing (and only those).
deps:
	@sh scripts/deps.sh $(DEBS)

STATES     := build/states-test

build: $(CORE) $(CORE_JIT) $(STATES)

# A host running several Lua states on threads at once (spec/15_states_spec.lua).
$(STATES): spec/support/states.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -I$(LUA_INC) -o $@ spec/support/states.c -llua5.4 -lpthread

# The C core: every csrc/*.c, one shared object per interpreter.
SRC        := $(wildcard csrc/*.c)
HDR        := $(wildcard csrc/*.h)

$(CORE): $(SRC) $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -fPIC -shared -I$(LUA_INC) -o $@ $(SRC) $(LIBS)

# The same source for LuaJIT 2.1 (and OpenResty's nginx) through csrc/compat.h.
$(CORE_JIT): $(SRC) $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -fPIC -shared -I$(LUAJIT_INC) -o $@ $(SRC) $(LIBS)

lint:
	luacheck -q lua spec bin examples

test: deps build
	@sh scripts/test.sh lua5.4:$(BUILD) luajit:build/jit

demo: deps build
	@VERTEXOPS_LUA=$(LUA) $(RUN) $(LUA) examples/demo.lua

memcheck: deps build
	@$(RUN) valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
		--show-leak-kinds=definite $(LUA) spec/memcheck.lua

# Benchmarks (bench/): every contender against the same fake server; writes bench/RESULTS.md.
bench: deps build build/bench/raw_curl bench/node_modules/.installed
	@sh scripts/deps.sh lua-sec curl
	@$(RUN) $(LUA) bench/run.lua

build/bench/raw_curl: bench/raw_curl.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -o $@ bench/raw_curl.c -lcurl

# Google's Node client for the comparison (npm); skipped with a note in RESULTS.md if npm fails.
bench/node_modules/.installed: bench/package.json
	@command -v npm >/dev/null 2>&1 || sh scripts/deps.sh nodejs npm
	@(cd bench && npm install --no-audit --no-fund --no-package-lock >/dev/null 2>&1 && touch node_modules/.installed) \
		|| echo "npm install failed: the Node client will be left out"

# Builds and installs the rock with luarocks (Debian's lua-cjson satisfies the dependency);
# rock-jit for LuaJIT / OpenResty.
rock: deps
	luarocks --lua-version=5.4 make --deps-mode=none

rock-jit: deps
	luarocks --lua-version=5.1 make --deps-mode=none LUA_INCDIR=$(LUAJIT_INC)

clean:
	rm -rf build
