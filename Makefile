# vertexops — make demo | make test | make memcheck | make bench | make fidelity | make build | make deps | make rock | make rock-jit
LUA        ?= lua5.4
LUA_INC    ?= /usr/include/lua5.4
BUILD      := build/5.4
CORE       := $(BUILD)/vertexops/core.so
LUAJIT_INC ?= /usr/include/luajit-2.1
CORE_JIT   := build/jit/vertexops/core.so
# The older PUC interpreters the suite also runs on (build/5.1 ... build/5.3), each from its own headers.
OLD_LUAS   := 5.1 5.2 5.3
CORES_OLD  := $(foreach v,$(OLD_LUAS),build/$(v)/vertexops/core.so)
LUA_INC_5.1 ?= /usr/include/lua5.1
LUA_INC_5.2 ?= /usr/include/lua5.2
LUA_INC_5.3 ?= /usr/include/lua5.3
CC         ?= cc
CFLAGS     ?= -O2 -g
WARN       := -std=c99 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror
LIBS       := -lcurl -lcrypto -lpthread -lhiredis

DEBS := lua5.4 liblua5.4-dev libcurl4-openssl-dev libssl-dev lua-cjson lua-socket lua-busted \
        lua-check luarocks nginx libnginx-mod-http-lua openssl make gcc valgrind \
        luajit2 libluajit2-5.1-dev locales strace lua5.1 liblua5.1-0-dev lua5.2 liblua5.2-dev lua5.3 \
        liblua5.3-dev wrk libhiredis-dev redis-server tinyproxy


RUN := LUA_PATH="./lua/?.lua;./lua/?/init.lua;./spec/?.lua;;" LUA_CPATH="./$(BUILD)/?.so;;"

.PHONY: all deps build test demo memcheck lint rock rock-jit bench fidelity clean load methods man

all: build

# Installs the Debian packages that are missing (and only those).
deps:
	@sh scripts/deps.sh $(DEBS)

STATES     := build/states-test

# csrc/methods.h, every operations method of Google's definition by name shape and version, made by
# scripts/gen_methods.py from the Google Cloud SDK's generated clients (GCLOUD_SDK) and npm
# @google-cloud/aiplatform (the version bench/package.json pins). Committed: tests need neither.
GCLOUD_SDK ?= /usr/lib/google-cloud-sdk
methods: bench/node_modules/.installed
	python3 scripts/gen_methods.py $(GCLOUD_SDK) bench/node_modules/@google-cloud/aiplatform \
		> csrc/methods.h.new || { rm -f csrc/methods.h.new; exit 1; }
	mv csrc/methods.h.new csrc/methods.h

build: $(CORE) $(CORE_JIT) $(CORES_OLD) $(STATES) build/bench/loadgen

# A host running several Lua states on threads at once (spec/09_hosts_lua_states_spec.lua).
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

# PUC Lua 5.1, 5.2 and 5.3 (csrc/compat.h again).
$(CORES_OLD): build/%/vertexops/core.so: $(SRC) $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -fPIC -shared -I$(LUA_INC_$*) -o $@ $(SRC) $(LIBS)

# Static embedding for C hosts that cannot dlopen (make static): per interpreter, an archive of
# the C core (every csrc/*.c) and of every lua/vertexops/*.lua, embedded as source by
# scripts/embed_lua.lua into a generated C file with vertexops_preload() (csrc/include/vertexops.h).
# make embed builds the example host examples/embed/host.c against each archive.
STATIC      := build/static
LUA_SRC     := $(sort $(wildcard lua/vertexops/*.lua lua/vertexops/*/*.lua))
STATIC_LIB  := $(STATIC)/5.4/libvertexops.a
STATIC_JIT  := $(STATIC)/jit/libvertexops.a
STATIC_OBJ  := $(patsubst csrc/%.c,core/%.o,$(SRC)) bundle.o
EMBED_HOST  := $(STATIC)/5.4/embed-host
EMBED_JIT   := $(STATIC)/jit/embed-host
# lua-cjson: Debian ships it only as a shared library, linked by its file name
CJSON_LIB   ?= -l:liblua5.4-cjson.so.0
CJSON_JIT   ?= -l:liblua5.1-cjson.so.0
# Lua itself is linked statically; -E exports its API to lua-cjson's shared library.
HOST_LIBS   := $(LIBS) -lm -ldl -Wl,-E
# What a C host adds to its compile and link line, per archive (make link-line prints it whole; the
# embed-host rules below use the same)
HOST_CFLAGS_54  := -Icsrc/include -I$(LUA_INC)
HOST_CFLAGS_JIT := -Icsrc/include -I$(LUAJIT_INC)
HOST_LINK_54    := $(STATIC_LIB) $(CJSON_LIB) -Wl,-Bstatic -llua5.4 -Wl,-Bdynamic $(HOST_LIBS)
HOST_LINK_JIT   := $(STATIC_JIT) $(CJSON_JIT) -Wl,-Bstatic -lluajit-5.1 -Wl,-Bdynamic $(HOST_LIBS)

.PHONY: static embed link-line FORCE

static: $(STATIC_LIB) $(STATIC_JIT)
	@echo "make static: done; a C host's compile and link line: make -s link-line"

# make link-line: the line that compiles and links a C host (myhost.c) against each archive, from
# this checkout's directory (README.md, "Embedding in a C host", shows the first)
link-line:
	@echo 'cc -O2 $(HOST_CFLAGS_54) -o myhost myhost.c $(HOST_LINK_54)'
	@echo 'cc -O2 $(HOST_CFLAGS_JIT) -o myhost myhost.c $(HOST_LINK_JIT)'

embed: $(EMBED_HOST) $(EMBED_JIT)

# The lists of sources, rewritten only when a file comes or goes: the bundle and the archives
# follow both (a file added with an old date, a file removed).
$(STATIC)/lua-sources: FORCE
	@mkdir -p $(dir $@)
	@echo "$(LUA_SRC)" | cmp -s - $@ || echo "$(LUA_SRC)" > $@

$(STATIC)/c-sources: FORCE
	@mkdir -p $(dir $@)
	@echo "$(SRC)" | cmp -s - $@ || echo "$(SRC)" > $@

$(STATIC)/bundle.c: scripts/embed_lua.lua $(LUA_SRC) $(STATIC)/lua-sources
	@mkdir -p $(dir $@)
	$(LUA) scripts/embed_lua.lua $@ $(LUA_SRC)

$(STATIC)/5.4/core/%.o: csrc/%.c $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -fPIC -I$(LUA_INC) -c -o $@ $<

$(STATIC)/jit/core/%.o: csrc/%.c $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -fPIC -I$(LUAJIT_INC) -c -o $@ $<

$(STATIC)/5.4/bundle.o: $(STATIC)/bundle.c csrc/include/vertexops.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -fPIC -Icsrc/include -I$(LUA_INC) -c -o $@ $<

$(STATIC)/jit/bundle.o: $(STATIC)/bundle.c csrc/include/vertexops.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -fPIC -Icsrc/include -I$(LUAJIT_INC) -c -o $@ $<

# rebuilt whole, so an object whose source is gone leaves the archive too
$(STATIC_LIB): $(addprefix $(STATIC)/5.4/,$(STATIC_OBJ)) $(STATIC)/c-sources
	rm -f $@
	ar rcs $@ $(filter %.o,$^)

$(STATIC_JIT): $(addprefix $(STATIC)/jit/,$(STATIC_OBJ)) $(STATIC)/c-sources
	rm -f $@
	ar rcs $@ $(filter %.o,$^)

$(EMBED_HOST): examples/embed/host.c csrc/include/vertexops.h $(STATIC_LIB)
	$(CC) $(CFLAGS) $(WARN) $(HOST_CFLAGS_54) -o $@ examples/embed/host.c $(HOST_LINK_54)

$(EMBED_JIT): examples/embed/host.c csrc/include/vertexops.h $(STATIC_JIT)
	$(CC) $(CFLAGS) $(WARN) $(HOST_CFLAGS_JIT) -o $@ examples/embed/host.c $(HOST_LINK_JIT)

# zsh: spec/11_cli_completion_spec.lua loads the zsh completion in it; man-db and groff-base: the
# man page's specs render it (spec/14_docs_man_page_spec.lua, spec/14_docs_install_spec.lua)
DEBS += zsh man-db groff-base

# The man page, docs/vertexops.1 (committed), from the command line's table (scripts/gen_man.lua).
man: $(CORE)
	$(RUN) $(LUA) scripts/gen_man.lua > docs/vertexops.1.new || { rm -f docs/vertexops.1.new; exit 1; }
	mv docs/vertexops.1.new docs/vertexops.1

# make install [PREFIX=/usr/local] [DESTDIR=]: for people who build from source without a package
# manager. For each Lua of INSTALL_LUAS the C core (PREFIX/lib/lua/V/vertexops/core.so) and the Lua
# modules (PREFIX/share/lua/V/vertexops/): the interpreters' own search paths when PREFIX is
# /usr/local (LuaJIT reads 5.1's); the command line in PREFIX/bin (run by CLI_LUA, the prefix's
# tree first), the man page, the bash and zsh completion (made by the command line from its table),
# the documents in PREFIX/share/doc/vertexops. make uninstall removes exactly what it wrote (the
# list it keeps: PREFIX/share/doc/vertexops/installed-files). scripts/install.sh does both.
PREFIX       ?= /usr/local
DESTDIR      ?=
INSTALL_LUAS ?= 5.1 5.2 5.3 5.4
CLI_LUA      ?= lua5.4
INSTALL_ENV   = PREFIX='$(PREFIX)' DESTDIR='$(DESTDIR)' INSTALL_LUAS='$(INSTALL_LUAS)' CLI_LUA='$(CLI_LUA)'
COMPLETIONS  := build/completion/vertexops build/completion/_vertexops

.PHONY: install uninstall completions
install: $(foreach v,$(INSTALL_LUAS),build/$(v)/vertexops/core.so) $(COMPLETIONS)
	@$(INSTALL_ENV) sh scripts/install.sh install

uninstall:
	@$(INSTALL_ENV) sh scripts/install.sh uninstall

# The shell completion, made by the command line from its table (never committed: it cannot drift)
completions: $(COMPLETIONS)

# made by the last Lua of INSTALL_LUAS, so make install needs no other
COMPLETION_V   := $(lastword $(INSTALL_LUAS))
COMPLETION_RUN := LUA_PATH="./lua/?.lua;./lua/?/init.lua;;" LUA_CPATH="./build/$(COMPLETION_V)/?.so;;" \
                  lua$(COMPLETION_V) bin/vertexops completion

build/completion/vertexops: build/$(COMPLETION_V)/vertexops/core.so $(LUA_SRC)
	@mkdir -p $(dir $@)
	$(COMPLETION_RUN) bash > $@.new && mv $@.new $@

build/completion/_vertexops: build/$(COMPLETION_V)/vertexops/core.so $(LUA_SRC)
	@mkdir -p $(dir $@)
	$(COMPLETION_RUN) zsh > $@.new && mv $@.new $@

lint:
	luacheck -q lua spec bin examples

test: deps release-deps san-deps build static embed  # the Debian packages of every stage installed before scripts/test.sh starts its clock; built before the interpreters run side by side (spec/09_hosts_embed_spec.lua runs them)
	@sh scripts/test.sh lua5.4:$(BUILD) luajit:build/jit lua5.1:build/5.1 lua5.2:build/5.2 lua5.3:build/5.3

demo: deps build
	@VERTEXOPS_LUA=$(LUA) $(RUN) $(LUA) examples/demo.lua

memcheck: deps build
	@$(RUN) valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
		--show-leak-kinds=definite $(LUA) spec/memcheck.lua

# Benchmarks (bench/): every contender against the same fake server; writes bench/RESULTS.md.
bench: deps build build/bench/raw_curl bench/node_modules/.installed
	@sh scripts/deps.sh lua-sec curl
	@$(RUN) $(LUA) bench/run.lua
	@$(MAKE) --no-print-directory bench-fleet
	@$(MAKE) --no-print-directory bench-fleet-shared
	@$(MAKE) --no-print-directory bench-openresty
	@$(MAKE) --no-print-directory bench-cold

# The cold start: a fresh process, one get, a service-account key file, next to Google's Node client
# (bench/cold.lua: the "Cold start" section of bench/RESULTS.md; BENCH_COLD_RUNS, default 5).
.PHONY: bench-cold
bench-cold: build bench/node_modules/.installed
	@$(RUN) $(LUA) bench/cold.lua

# vertexops inside nginx next to proxy_pass, with wrk (bench/openresty.lua: the "OpenResty"
# section of bench/RESULTS.md, about half a minute); make bench runs it after the rest.
.PHONY: bench-openresty
bench-openresty: build
	@sh scripts/deps.sh wrk
	@$(RUN) $(LUA) bench/openresty.lua

# issue 19 §4, the tail at 1,000 connections (bench/openresty.lua with BENCH_OPENRESTY_LOAD=0: the
# "OpenResty: the tail at 1,000 connections" section, about 2 minutes): proxy_pass, cosockets and
# cosockets with hooks = metrics:hooks(), interleaved in BENCH_OPENRESTY_RUNS rounds (median, spread).
# bench-openresty-callgrind: instructions per request of the nginx worker under callgrind, /vx and /vxm.
.PHONY: bench-openresty-tail bench-openresty-callgrind
bench-openresty-tail: build
	@sh scripts/deps.sh wrk
	@BENCH_OPENRESTY_LOAD=0 BENCH_OPENRESTY_CONNS=$${BENCH_OPENRESTY_CONNS:-1000} \
	  BENCH_OPENRESTY_RUNS=$${BENCH_OPENRESTY_RUNS:-5} $(RUN) $(LUA) bench/openresty.lua
bench-openresty-callgrind: build
	@BENCH_OPENRESTY_CALLGRIND=$${BENCH_OPENRESTY_CALLGRIND:-2600} $(RUN) $(LUA) bench/openresty.lua

# cancel_all by the 100,000 next to raw libcurl multi (bench/fleet.lua: the "Fleet" section of
# bench/RESULTS.md, about a minute); make bench runs it after the rest.
.PHONY: bench-fleet
bench-fleet: build build/bench/fleet_curl
	@$(RUN) $(LUA) bench/fleet.lua

# One quota shared by a fleet (bench/fleet_shared.lua: the "Fleet: one quota shared" section of
# bench/RESULTS.md, about a minute and a half): 4 processes through a real redis-server, 4 nginx
# workers through a lua_shared_dict, each next to no pacing; make bench runs it after bench-fleet.
.PHONY: bench-fleet-shared
bench-fleet-shared: build
	@sh scripts/deps.sh redis-server
	@$(RUN) $(LUA) bench/fleet_shared.lua

build/bench/fleet_curl: bench/fleet_curl.c bench/raw_curl.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -o $@ bench/fleet_curl.c -lcurl

# the load client of the OpenResty load specs (spec/09_hosts_openresty_load_spec.lua) and bench/run.lua's OpenResty regime
build/bench/loadgen: bench/loadgen.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -o $@ bench/loadgen.c -lcurl

# Google's Node client and vertexops make the same operations calls against the fake; their
# requests side by side (bench/fidelity.lua) go to bench/FIDELITY.md (docs/fidelity.md explains them).
# Then google-auth-library and vertexops read the same credential files (bench/fidelity_auth.lua):
# MATCH / DIFFERS per credential type and field. Needs node and npm: not part of make test, whose
# spec/07_credentials_google_auth_spec.lua checks vertexops against the recorded shapes instead.
fidelity: deps build bench/node_modules/.installed
	@$(RUN) $(LUA) bench/fidelity.lua
	@$(RUN) $(LUA) bench/fidelity_auth.lua

# google-auth-library's credential requests, recorded as spec/data/google_auth_requests.json (derived
# data, committed; regenerate after a google-auth-library bump in bench/package.json).
.PHONY: fidelity-record
fidelity-record: deps build bench/node_modules/.installed
	@$(RUN) $(LUA) bench/fidelity_auth.lua record

build/bench/raw_curl: bench/raw_curl.c bench/raw_curl.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -o $@ bench/raw_curl.c -lcurl

# Google's Node client for the comparison (npm); skipped with a note in RESULTS.md if npm fails.
bench/node_modules/.installed: bench/package.json
	@command -v npm >/dev/null 2>&1 || sh scripts/deps.sh nodejs npm
	@(cd bench && npm install --no-audit --no-fund --no-package-lock >/dev/null 2>&1 && touch node_modules/.installed) \
		|| echo "npm install failed: the Node client will be left out"

# Fault soak (spec/soak.lua): SOAK_CALLS seeded random calls through one client, each under a random
# fault of the fake server; every outcome checked against the contract, RSS and fds flat.
SOAK_CALLS ?= 20000
SOAK_SEED  ?= 1
.PHONY: soak
soak: deps build
	@VERTEXOPS_LUA=$(LUA) $(RUN) $(LUA) spec/soak.lua --quiet --calls $(SOAK_CALLS) --seed $(SOAK_SEED)

# Builds and installs the rock with luarocks (Debian's lua-cjson satisfies the dependency).
# make rock: into luarocks' tree for ROCK_LUA (5.4 unless given: make rock ROCK_LUA=5.1|5.2|5.3),
# built with that PUC interpreter's headers; the CLI wrapper runs lua$(ROCK_LUA).
# make rock-jit: for LuaJIT / OpenResty, into the 5.1 tree with LuaJIT's headers. The 5.1 tree
# serves lua5.1 and luajit alike, and its core.so loads in both (csrc/compat.h); Debian's luarocks
# writes the CLI wrapper for lua5.1.
ROCK_LUA ?= 5.4
rock: deps
	luarocks --lua-version=$(ROCK_LUA) make --deps-mode=none

rock-jit: deps
	luarocks --lua-version=5.1 make --deps-mode=none LUA_INCDIR=$(LUAJIT_INC)

# --- Releases (docs/release.md): the artifacts into DIST (dist/ unless given), each built afresh
# from a copy of the working tree's files (scripts/release.sh), the version read from csrc/vx.h.
# make deb: lua-vertexops, lua-vertexops-dev, lua-vertexops-testing (debian/: dh-lua, as Debian
#   builds lua-cjson; dpkg-buildpackage -us -uc -b); make dist: vertexops-V.tar.gz, its rockspec,
#   the .src.rock; each writes DIST/SHA256SUMS of every file there. make lintian: the packages' check.
# make release-check (a stage of make test): both built into build/release/check (the packages with
#   DEB_BUILD_OPTIONS=nocheck: dh-lua's build-time tests are a subset of the spec's; the rock
#   packed while dpkg-buildpackage builds, their work directories apart), then
#   spec/14_docs_release_spec.lua unpacks, installs and runs them on every Lua and in nginx.
DIST         ?= dist
RELEASE_DEBS := dpkg-dev debhelper dh-lua libcurl4-openssl-dev libssl-dev libluajit2-5.1-dev \
                lua-cjson luarocks curl
LINT_DEBS    := lintian devscripts
RELEASE_CHECK := build/release/check
.PHONY: deb dist lintian release-check release-deps

release-deps: deps
	@sh scripts/deps.sh $(RELEASE_DEBS)

deb: release-deps
	@sh scripts/release.sh deb $(DIST)
	@sh scripts/release.sh sums $(DIST)

dist: release-deps
	@sh scripts/release.sh dist $(DIST)
	@sh scripts/release.sh sums $(DIST)

# lintian's tags left are explained in debian/*.lintian-overrides
lintian: deb
	@sh scripts/deps.sh $(LINT_DEBS)
	lintian --info $(DIST)/lua-vertexops*_$$(sh scripts/release.sh version)-1_*.deb

release-check: release-deps
	@rm -rf $(RELEASE_CHECK)
	@DEB_BUILD_OPTIONS=nocheck sh scripts/release.sh deb $(RELEASE_CHECK) >/dev/null & deb=$$!; \
		sh scripts/release.sh dist $(RELEASE_CHECK) >/dev/null || { wait $$deb; exit 1; }; wait $$deb
	@sh scripts/release.sh sums $(RELEASE_CHECK) >/dev/null
	@env -u GOOGLE_OAUTH_ACCESS_TOKEN -u GOOGLE_APPLICATION_CREDENTIALS -u GOOGLE_CLOUD_QUOTA_PROJECT \
		-u VERTEXOPS_ENDPOINT -u VERTEXOPS_CA_FILE CLOUDSDK_CONFIG=/nonexistent/gcloud GCE_METADATA_HOST=127.0.0.1:9 \
		VERTEXOPS_RELEASE_DIST=$(CURDIR)/$(RELEASE_CHECK) VERTEXOPS_LUA=$(LUA) $(RUN) \
		busted --lua=$(LUA) -o utfTerminal spec/14_docs_release_spec.lua

clean:
	rm -rf build

# --- Sanitizers and fuzzing (fuzz/README.md) ---
# make asan: the core built with ASan+UBSan (LSan on) as build/asan/vertexops/core.so, and the whole
# busted suite on Lua 5.4 against it (scripts/asan.sh); fails on any sanitizer report.
# make load: the specs that load a host (scripts/specs.sh alone; spec/09_hosts_openresty_load_spec.lua: 1,000 concurrent requests
# to one nginx worker), with nothing beside them. make test runs it as a stage; their timings are
# make bench's (bench/openresty.lua).
load: deps build
	@env -u GOOGLE_OAUTH_ACCESS_TOKEN -u GOOGLE_APPLICATION_CREDENTIALS -u GOOGLE_CLOUD_QUOTA_PROJECT \
		-u VERTEXOPS_ENDPOINT -u VERTEXOPS_CA_FILE CLOUDSDK_CONFIG=/nonexistent/gcloud GCE_METADATA_HOST=127.0.0.1:9 \
		VERTEXOPS_LUA=$(LUA) $(RUN) busted --lua=$(LUA) -o utfTerminal $$(sh scripts/specs.sh alone)

# make fuzz: each libFuzzer harness of fuzz/ for FUZZ_SECONDS; make fuzz-smoke: FUZZ_SMOKE_SECONDS each.
# The fuzzers need clang 14 and its runtimes (SAN_DEBS, installed by the targets that use them).
SAN_DEBS     := clang-14 libclang-rt-14-dev
ASAN_CC      ?= clang-14
SAN_FLAGS    := -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all \
                -fno-omit-frame-pointer -g -O1
ASAN_CORE    := build/asan/vertexops/core.so
FUZZ_CC      ?= clang-14
FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 20
FUZZERS      := request answer key h1 page
FUZZ_BINS    := $(FUZZERS:%=build/fuzz/%)
FUZZ_CFLAGS  := $(SAN_FLAGS) $(WARN) -I$(LUA_INC) -DFUZZ_DIR='"$(CURDIR)/fuzz"'
FUZZ_LIBS    := -llua5.4 $(LIBS) -lm

.PHONY: asan asan-build fuzz fuzz-smoke fuzz-build san-deps

san-deps:
	@sh scripts/deps.sh $(SAN_DEBS)

asan-build: san-deps $(ASAN_CORE) build/asan/preload.so

asan: deps build asan-build
	@sh scripts/asan.sh $(ASAN_CC)

$(ASAN_CORE): $(SRC) $(HDR)
	@mkdir -p $(dir $@)
	$(ASAN_CC) $(SAN_FLAGS) $(WARN) -fPIC -shared -I$(LUA_INC) -o $@ $(SRC) $(LIBS)

build/asan/preload.so: scripts/asan_preload.c
	@mkdir -p $(dir $@)
	$(ASAN_CC) -O1 $(WARN) -fPIC -shared -o $@ scripts/asan_preload.c

fuzz-build: san-deps $(FUZZ_BINS)

fuzz: fuzz-build
	@sh scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZERS)

fuzz-smoke: fuzz-build
	@sh scripts/fuzz.sh $(FUZZ_SMOKE_SECONDS) $(FUZZERS)

# Each harness with the whole C core (every csrc/*.c), all built with the sanitizers and coverage.
build/fuzz/%: fuzz/%.c fuzz/fuzz.h $(SRC) $(HDR) Makefile
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(SRC) $(FUZZ_LIBS)

# Allocation-failure torture (fuzz/torture.c, fuzz/torture/*.lua; fuzz/README.md): the Nth
# allocation (Lua's or libcurl's) fails, for every N of each scenario (make torture, exhaustive)
# or the committed sample of fuzz/torture/sample (make torture-smoke, part of make test), under
# ASan + LeakSanitizer (scripts/lsan.supp names the dependencies' known leaks).
.PHONY: torture torture-smoke torture-build
TORTURE := build/torture/torture

torture-build: san-deps $(TORTURE)

$(TORTURE): fuzz/torture.c $(SRC) $(HDR) Makefile
	@mkdir -p $(dir $@)
	$(ASAN_CC) $(SAN_FLAGS) $(WARN) -I$(LUA_INC) -o $@ fuzz/torture.c $(SRC) $(FUZZ_LIBS)

torture: build torture-build
	@$(RUN) $(LUA) fuzz/torture/run.lua $(TORTURE_ARGS)

torture-smoke: build torture-build
	@$(RUN) $(LUA) fuzz/torture/run.lua --sample
