# vertexops — make demo | make test | make memcheck | make build | make deps | make rock
LUA        ?= lua5.4
LUA_INC    ?= /usr/include/lua5.4
BUILD      := build/5.4
CORE       := $(BUILD)/vertexops/core.so
CC         ?= cc
CFLAGS     ?= -O2 -g
WARN       := -std=c99 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror
LIBS       := -lcurl -lcrypto -lpthread

DEBS := lua5.4 liblua5.4-dev libcurl4-openssl-dev libssl-dev lua-cjson lua-socket lua-busted \
        lua-check luarocks nginx libnginx-mod-http-lua openssl make gcc valgrind


RUN := LUA_PATH="./lua/?.lua;./lua/?/init.lua;./spec/?.lua;;" LUA_CPATH="./$(BUILD)/?.so;;"

.PHONY: all deps build test demo memcheck lint rock clean

all: build

# Installs the Debian packages that are missing (and only those).
deps:
	@sh scripts/deps.sh $(DEBS)

build: $(CORE)

$(CORE): csrc/vertexops.c csrc/compat.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -fPIC -shared -I$(LUA_INC) -o $@ csrc/vertexops.c $(LIBS)

lint:
	luacheck -q lua spec bin examples

test: deps build
	@sh scripts/test.sh "$(LUA)" "$(BUILD)"

demo: deps build
	@VERTEXOPS_LUA=$(LUA) $(RUN) $(LUA) examples/demo.lua

memcheck: deps build
	@$(RUN) valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
		--show-leak-kinds=definite $(LUA) spec/memcheck.lua

# Builds and installs the rock with luarocks (Debian's lua-cjson satisfies the dependency).
rock: deps
	luarocks --lua-version=5.4 make --deps-mode=none

clean:
	rm -rf build
