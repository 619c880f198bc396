/*
 * fuzz/torture: allocation-failure torture of the C core (libcurl's "torture" discipline, in Lua
 * form). One Lua 5.4 state per run, with a lua_Alloc that counts allocations, and libcurl's
 * allocations counted too (curl_global_init_mem, called before the core's own curl_global_init,
 * which then only counts a reference): the Nth allocation, whoever asks for it, fails.
 *
 * Exactly the Nth fails, as in libcurl's torture; everything after it succeeds again. Lua 5.4
 * answers a failed allocation with an emergency collection and one retry of the same request: the
 * retry is failed too (it is the same allocation), so Lua code sees the failure as a memory error.
 *
 * A scenario (fuzz/torture/NAME.lua) returns {setup = f, run = f, check = f}. For each N: a new
 * state, the core loaded, setup() (nothing fails), run(ctx) with the Nth allocation failing,
 * check(ctx) (nothing fails: the objects setup made must still work), lua_close. A run must end in
 * success, a memory error ("not enough memory") or a vertexops error object with tags; check must
 * succeed. Anything else is a finding (printed; the exit status is 1). A crash is ASan's; a leak is
 * LeakSanitizer's (at exit; scripts/lsan.supp names the dependencies' known leaks).
 *
 * usage: torture SCENARIO.lua            every N from 1 until a run allocates fewer than N
 *        torture SCENARIO.lua N1 N2 ...  those N only (the committed sample, fuzz/torture/sample)
 * Prints one line per scenario: allocations counted without failure (K), N covered, outcomes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlfcn.h>
#include <execinfo.h>
#include <signal.h>
#include <unistd.h>

#include <curl/curl.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#ifndef FUZZ_DIR
#define FUZZ_DIR "fuzz"
#endif

#define CJSON_SO "/usr/lib/x86_64-linux-gnu/lua/5.4/cjson.so"

int luaopen_vertexops_core(lua_State *L);

/* --- the counting allocators --- */

static long t_count;  /* allocations since arming (atomic: libcurl may allocate on a thread) */
static long t_fail;   /* the allocation to fail, 0: none */
static int t_armed;
static int t_hit;     /* the Nth allocation was reached (and failed) */
/* Lua's retry of the allocation just failed: same block, old size and new size */
static int t_retry;
static void *t_rptr;
static size_t t_rosize, t_rnsize;

/* 1 when this allocation is to fail */
static int t_tick(void) {
  long n;
  if (!__atomic_load_n(&t_armed, __ATOMIC_SEQ_CST)) return 0;
  n = __atomic_add_fetch(&t_count, 1, __ATOMIC_SEQ_CST);
  if (n == t_fail) {
    __atomic_store_n(&t_hit, 1, __ATOMIC_SEQ_CST);
    if (getenv("TORTURE_BACKTRACE")) { /* where the failing allocation was asked for */
      void *frames[32];
      backtrace_symbols_fd(frames, backtrace(frames, 32), 2);
    }
    return 1;
  }
  return 0;
}

static void *t_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  if (t_retry) {
    int same = ptr == t_rptr && osize == t_rosize && nsize == t_rnsize;
    t_retry = 0;
    if (same) return NULL; /* the emergency collection's retry of the failed allocation */
  }
  if (t_tick()) {
    t_retry = 1;
    t_rptr = ptr;
    t_rosize = osize;
    t_rnsize = nsize;
    return NULL;
  }
  return realloc(ptr, nsize);
}

static void *t_malloc(size_t n) { return t_tick() ? NULL : malloc(n); }
static void t_free(void *p) { free(p); }
static void *t_realloc(void *p, size_t n) { return t_tick() ? NULL : realloc(p, n); }
static char *t_strdup(const char *s) { return t_tick() ? NULL : strdup(s); }
static void *t_calloc(size_t n, size_t m) { return t_tick() ? NULL : calloc(n, m); }

static void t_arm(long n) {
  t_retry = 0;
  __atomic_store_n(&t_count, 0, __ATOMIC_SEQ_CST);
  __atomic_store_n(&t_fail, n, __ATOMIC_SEQ_CST);
  __atomic_store_n(&t_hit, 0, __ATOMIC_SEQ_CST);
  __atomic_store_n(&t_armed, 1, __ATOMIC_SEQ_CST);
}

static void t_disarm(void) {
  __atomic_store_n(&t_armed, 0, __ATOMIC_SEQ_CST);
  t_retry = 0;
}

/* --- one run --- */

static const char *scenario;
static unsigned run_seconds = 60;
static long findings, successes, memerrs, tagged;

static void finding(long n, const char *what, const char *detail) {
  findings++;
  fprintf(stderr, "FINDING %s N=%ld: %s: %s\n", scenario, n, what, detail ? detail : "?");
}

/* 1 when the value at idx is a vertexops error object (its metatable, a non-empty tags list) */
static int is_tagged(lua_State *L, int idx) {
  int ok = 0;
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx)) return 0;
  luaL_getmetatable(L, "vertexops.error");
  ok = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  if (!ok) return 0;
  lua_getfield(L, idx, "tags");
  ok = lua_type(L, -1) == LUA_TTABLE && lua_rawlen(L, -1) > 0;
  lua_pop(L, 1);
  return ok;
}

static const char *describe(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TSTRING) return lua_tostring(L, idx);
  return luaL_typename(L, idx);
}

/* A run that hangs (a transfer that never ends, a loop) is a finding too: it is stopped after
 * TORTURE_RUN_SECONDS (60), naming its N. */
static long t_current;
static void on_alarm(int sig) {
  char msg[160];
  int len = snprintf(msg, sizeof msg, "FINDING %s N=%ld: the run hangs (stopped after its time)\n", scenario, t_current);
  (void)sig;
  if (write(2, msg, (size_t)len) < 0) _exit(3);
  _exit(3);
}

/* Runs scenario with the nth allocation failing (0: none); returns the allocations counted. */
static long run_one(long n, int *hit) {
  lua_State *L = lua_newstate(t_lua_alloc, NULL);
  int st;
  long count;
  *hit = 0;
  t_current = n;
  alarm(run_seconds);
  if (!L) {
    fprintf(stderr, "torture: cannot make a Lua state\n");
    exit(2);
  }
  luaL_openlibs(L);
  if (luaL_dostring(L, "package.cpath = '/usr/lib/x86_64-linux-gnu/lua/5.4/?.so;' .. package.cpath\n"
                       "package.path = './lua/?.lua;./lua/?/init.lua;' .. package.path") != LUA_OK) {
    fprintf(stderr, "torture: setup: %s\n", lua_tostring(L, -1));
    exit(2);
  }
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_vertexops_core);
  lua_setfield(L, -2, "vertexops.core");
  lua_pop(L, 1);
  if (luaL_dofile(L, scenario) != LUA_OK || lua_type(L, -1) != LUA_TTABLE) {
    fprintf(stderr, "torture: %s: %s\n", scenario, describe(L, -1));
    exit(2);
  }
  /* stack: 1 scenario */
  lua_getfield(L, 1, "setup");
  if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
    fprintf(stderr, "torture: %s: setup failed: %s\n", scenario, describe(L, -1));
    exit(2);
  }
  /* stack: 1 scenario, 2 ctx */
  lua_getfield(L, 1, "run");
  lua_pushvalue(L, 2);
  lua_gc(L, LUA_GCCOLLECT, 0); /* each run starts from the same heap */
  t_arm(n);
  st = lua_pcall(L, 1, 1, 0);
  t_disarm();
  count = t_count;
  *hit = t_hit;
  if (n > 0 && !*hit) {
    /* fewer than n allocations: not a run of this N (the exhaustive loop ends here) */
  } else if (st == LUA_OK) {
    successes++;
  } else if (st == LUA_ERRMEM ||
             (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "not enough memory") == 0)) {
    memerrs++;
  } else if (st == LUA_ERRRUN && is_tagged(L, -1)) {
    tagged++;
  } else {
    lua_getglobal(L, "tostring");
    lua_pushvalue(L, -2);
    lua_pcall(L, 1, 1, 0);
    if (n == 0) fprintf(stderr, "torture: %s: without a failure: %s\n", scenario, describe(L, -1));
    finding(n, st == LUA_ERRRUN ? "run raised an untagged error" : "run failed", describe(L, -1));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  /* the same objects must serve the next call */
  lua_getfield(L, 1, "check");
  lua_pushvalue(L, 2);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    lua_getglobal(L, "tostring");
    lua_insert(L, -2);
    lua_pcall(L, 1, 1, 0);
    finding(n, "check after the run failed", describe(L, -1));
    lua_pop(L, 1);
  }
  lua_close(L);
  alarm(0);
  return count;
}

int main(int argc, char **argv) {
  long k, n, covered = 0;
  int hit, i;
  if (argc < 2) {
    fprintf(stderr, "usage: %s SCENARIO.lua [N ...]\n", argv[0]);
    return 2;
  }
  scenario = argv[1];
  if (getenv("TORTURE_RUN_SECONDS")) run_seconds = (unsigned)strtoul(getenv("TORTURE_RUN_SECONDS"), NULL, 10);
  signal(SIGALRM, on_alarm);
  /* lua-cjson stays loaded between states (each lua_close unloads what its state loaded), so a
   * leak inside it is reported with its function names, and suppressed by them */
  if (!dlopen(CJSON_SO, RTLD_NOW | RTLD_GLOBAL)) fprintf(stderr, "torture: %s: %s\n", CJSON_SO, dlerror());
  /* before the core's curl_global_init (module.c), which then only adds a reference */
  if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, t_malloc, t_free, t_realloc, t_strdup, t_calloc) != CURLE_OK) {
    fprintf(stderr, "torture: curl_global_init_mem failed\n");
    return 2;
  }
  k = run_one(0, &hit); /* no failure: K allocations, and the run must succeed */
  if (findings || successes != 1) {
    fprintf(stderr, "torture: %s: the run does not succeed without a failure\n", scenario);
    return 2;
  }
  successes = memerrs = tagged = 0;
  if (argc > 2) {
    for (i = 2; i < argc; i++) {
      n = strtol(argv[i], NULL, 10);
      if (n < 1) continue;
      run_one(n, &hit);
      covered += hit; /* an N past the scenario's count fails nothing */
    }
  } else {
    for (n = 1;; n++) {
      run_one(n, &hit);
      if (!hit) break; /* this run allocated fewer than n times: every N is done */
      covered++;
    }
  }
  printf("torture %-28s K=%-6ld N covered %-6ld success %-5ld memory error %-5ld tagged %-5ld findings %ld\n",
         scenario, k, covered, successes, memerrs, tagged, findings);
  curl_global_cleanup();
  return findings ? 1 : 0;
}
