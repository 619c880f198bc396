/*
 * Shared by the libFuzzer harnesses in fuzz/: one Lua 5.4 state per process with the standard
 * libraries, Debian's cjson on package.cpath and vertexops.core loaded through
 * luaopen_vertexops_core; the harness's Lua driver (fuzz/NAME.lua, a function of the input
 * bytes) is called through lua_pcall for every input. The driver returns nothing when the
 * outcome keeps the contract and a text naming the broken invariant otherwise: then, or when
 * the driver itself raises, or when the stack is left unbalanced, the harness prints it and aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#ifndef FUZZ_DIR
#define FUZZ_DIR "fuzz"
#endif

int luaopen_vertexops_core(lua_State *L);

static void fz_fail(const char *what, const char *detail) {
  fprintf(stderr, "\nFINDING (%s): %s\n", what, detail ? detail : "?");
  abort();
}

/* The state, made on first use; the driver function is kept in the registry. */
static lua_State *fz_state(const char *driver) {
  static lua_State *L;
  if (L) return L;
  L = luaL_newstate();
  luaL_openlibs(L);
  if (luaL_dostring(L, "package.cpath = '/usr/lib/x86_64-linux-gnu/lua/5.4/?.so;' .. package.cpath"))
    fz_fail("setup", lua_tostring(L, -1));
  luaL_requiref(L, "vertexops.core", luaopen_vertexops_core, 0);
  lua_pop(L, 1);
  if (luaL_dofile(L, driver) != LUA_OK) fz_fail("setup", lua_tostring(L, -1));
  if (lua_type(L, -1) != LUA_TFUNCTION) fz_fail("setup", "the driver must return a function");
  lua_setfield(L, LUA_REGISTRYINDEX, "fuzz.driver");
  return L;
}

/* Calls the driver with the input bytes in a new coroutine, whose Lua stack starts small as in
 * a host's coroutine (a C function that pushes past its guaranteed slots overruns it); aborts on
 * a finding. */
static void fz_drive(lua_State *L, const uint8_t *data, size_t size) {
  int top = lua_gettop(L);
  lua_State *T = lua_newthread(L);
  lua_getfield(T, LUA_REGISTRYINDEX, "fuzz.driver");
  lua_pushlstring(T, (const char *)data, size);
  if (lua_pcall(T, 1, 1, 0) != LUA_OK) fz_fail("the driver raised", lua_tostring(T, -1));
  if (!lua_isnil(T, -1)) fz_fail("invariant", lua_tostring(T, -1));
  lua_pop(T, 1);
  if (lua_gettop(T) != 0) fz_fail("stack", "the Lua stack is not balanced");
  lua_pop(L, 1);
  if (lua_gettop(L) != top) fz_fail("stack", "the Lua stack is not balanced");
}
