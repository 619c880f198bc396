/* host.c: a C host (a game, a tool) that links vertexops statically and cancels an operation
 * from its 60-frames-per-second loop without ever blocking a frame.
 *
 *   make embed   (builds build/static/5.4/embed-host and build/static/jit/embed-host)
 *   build/static/5.4/embed-host OPERATION_NAME [ENDPOINT [CA_FILE]]
 *   build/static/5.4/embed-host --modules
 *
 * ENDPOINT and CA_FILE default to $VERTEXOPS_ENDPOINT and $VERTEXOPS_CA_FILE; the token comes
 * from $GOOGLE_OAUTH_ACCESS_TOKEN (or the other sources vertexops knows). Every module comes from
 * the executable: the Lua modules and the C core from libvertexops.a (vertexops_preload), lua-cjson
 * from its shared library, linked like libcurl (Debian ships no static lua-cjson), registered
 * here in package.preload. Nothing is searched for on package.path or package.cpath.
 *
 * Each frame calls client:poll() (one libcurl perform for every started request, never blocking)
 * and req:result(); the frame's work is timed, the rest of the frame slept. Prints the frame
 * statistics and the outcome; exits 0 when the operation ended CANCELLED, 1 when it completed
 * anyway or the call failed, 2 on bad usage.
 * --modules requires every module registered in package.preload and prints each one's type. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "vertexops.h"

/* lua-cjson's entries (liblua5.x-cjson.so.0; the shared library exports them). */
int luaopen_cjson(lua_State *L);
int luaopen_cjson_safe(lua_State *L);

#define FRAME 1.0 / 60

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_for(double s) {
  struct timespec ts;
  if (s <= 0) return;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  nanosleep(&ts, NULL);
}

/* The value at absolute index i as text, through tostring (error objects have a __tostring). */
static const char *text(lua_State *L, int i) {
  lua_getglobal(L, "tostring");
  lua_pushvalue(L, i);
  if (lua_pcall(L, 1, 1, 0) != 0 || !lua_isstring(L, -1)) return "(an error that cannot be printed)";
  return lua_tostring(L, -1);
}

/* Calls obj:method(...) with the n arguments on top of the stack (obj at absolute index obj);
 * leaves nresults results, or the error object (and returns nonzero). */
static int call_method(lua_State *L, int obj, const char *method, int n, int nresults) {
  lua_getfield(L, obj, method);
  lua_insert(L, -1 - n);
  lua_pushvalue(L, obj);
  lua_insert(L, -1 - n);
  return lua_pcall(L, n + 1, nresults, 0);
}

static int fail(lua_State *L, const char *what) {
  fprintf(stderr, "%s: %s\n", what, text(L, lua_gettop(L)));
  lua_close(L);
  return 1;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* --modules: requires every module in package.preload, in name order. */
static int check_modules(lua_State *L) {
  const char *names[512];
  int n = 0, i;
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) {
    if (lua_type(L, -2) == LUA_TSTRING) {
      if (n == (int)(sizeof names / sizeof names[0])) { /* never a silent subset */
        fprintf(stderr, "--modules: more than %d modules in package.preload\n", n);
        lua_close(L);
        return 1;
      }
      names[n++] = lua_tostring(L, -2); /* preload keeps them */
    }
    lua_pop(L, 1);
  }
  qsort(names, (size_t)n, sizeof names[0], by_name);
  for (i = 0; i < n; i++) {
    lua_getglobal(L, "require");
    lua_pushstring(L, names[i]);
    if (lua_pcall(L, 1, 1, 0) != 0) return fail(L, names[i]);
    printf("%s: %s\n", names[i], luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  lua_close(L);
  return 0;
}

int main(int argc, char **argv) {
  const char *name = argc > 1 ? argv[1] : NULL;
  const char *endpoint = argc > 2 ? argv[2] : getenv("VERTEXOPS_ENDPOINT");
  const char *ca_file = argc > 3 ? argv[3] : getenv("VERTEXOPS_CA_FILE");
  int client, req, frames = 0, cancelled, done = 0;
  double started, last = 0, worst = 0, total = 0, worst_gap = 0;
  lua_State *L;

  if (!name || argc > 4) {
    fprintf(stderr, "usage: %s OPERATION_NAME [ENDPOINT [CA_FILE]] | --modules\n", argv[0]);
    return 2;
  }
  L = luaL_newstate();
  if (!L) return 1;
  luaL_openlibs(L);

  /* lua-cjson, linked in: "cjson" and "cjson.safe" come from preload like the rest */
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_cjson);
  lua_setfield(L, -2, "cjson");
  lua_pushcfunction(L, luaopen_cjson_safe);
  lua_setfield(L, -2, "cjson.safe");
  lua_pop(L, 2);

  lua_pushcfunction(L, vertexops_preload);
  if (lua_pcall(L, 0, 0, 0) != 0) return fail(L, "vertexops_preload");
  if (strcmp(name, "--modules") == 0) return check_modules(L);

  /* local client = require("vertexops").client{endpoint = ..., ca_file = ..., timeout = 60} */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "vertexops");
  if (lua_pcall(L, 1, 1, 0) != 0) return fail(L, "require \"vertexops\"");
  lua_getfield(L, -1, "client");
  lua_createtable(L, 0, 3);
  if (endpoint && *endpoint) {
    lua_pushstring(L, endpoint);
    lua_setfield(L, -2, "endpoint");
  }
  if (ca_file && *ca_file) {
    lua_pushstring(L, ca_file);
    lua_setfield(L, -2, "ca_file");
  }
  lua_pushinteger(L, 60);
  lua_setfield(L, -2, "timeout");
  if (lua_pcall(L, 1, 1, 0) != 0) return fail(L, "vertexops.client");
  client = lua_gettop(L);

  /* local req = client:start("cancel_and_wait", name): returns at once */
  lua_pushliteral(L, "cancel_and_wait");
  lua_pushstring(L, name);
  if (call_method(L, client, "start", 2, 1) != 0) return fail(L, "client:start");
  req = lua_gettop(L);

  started = now();
  while (!done) {
    double t = now(), spent;
    if (frames > 0 && t - last > worst_gap) worst_gap = t - last;
    last = t;
    /* this frame's share of the work: client:poll() steps every started request once */
    if (call_method(L, client, "poll", 0, 0) != 0) return fail(L, "client:poll");
    if (call_method(L, req, "result", 0, 1) != 0) return fail(L, "req:result");
    done = lua_toboolean(L, -1);
    lua_pop(L, 1);
    /* ... the game would draw here ... */
    spent = now() - t;
    total += spent;
    if (spent > worst) worst = spent;
    frames++;
    if (!done) sleep_for(FRAME - spent);
  }
  printf("%d frames in %.2f s; work per frame: worst %.3f ms, mean %.3f ms (budget %.1f ms); "
         "longest gap between frames %.1f ms\n",
         frames, now() - started, worst * 1e3, total / frames * 1e3, FRAME * 1e3, worst_gap * 1e3);

  /* req:result() -> true, operation, cancelled (req.ok) or true, err */
  lua_getfield(L, req, "ok");
  if (!lua_toboolean(L, -1)) {
    lua_pop(L, 1);
    if (call_method(L, req, "result", 0, 2) != 0) return fail(L, "req:result");
    printf("%s: could not cancel: %s\n", name, text(L, lua_gettop(L)));
    lua_close(L);
    return 1;
  }
  lua_pop(L, 1);
  if (call_method(L, req, "result", 0, 3) != 0) return fail(L, "req:result");
  cancelled = lua_toboolean(L, -1);
  printf("%s: %s\n", name, cancelled ? "CANCELLED" : "completed before the cancel took effect");
  lua_close(L);
  return cancelled ? 0 : 1;
}
