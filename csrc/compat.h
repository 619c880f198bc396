/* compat.h: vertexops.core is written against Lua 5.4; these shims let the
 * same source build for PUC Lua 5.1, 5.2, 5.3 and LuaJIT 2.1 (which reports
 * LUA_VERSION_NUM 501 but exports some 5.2 auxiliary functions itself).
 * Every shim is static inline with a vx_ prefix so it never clashes with a
 * symbol an interpreter exports itself. */
#ifndef VERTEXOPS_COMPAT_H
#define VERTEXOPS_COMPAT_H

#include <math.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

/* LuaJIT reports LUA_VERSION_NUM 501 like PUC 5.1; its lualib.h alone defines LUA_JITLIBNAME.
 * VX_LUAJIT is for code that must tell them apart (none in the core today: see vx_setfuncs). */
#if defined(LUA_JITLIBNAME)
#define VX_LUAJIT 1
#else
#define VX_LUAJIT 0
#endif

/* "5.1" .. "5.4", as sent in x-goog-api-client (LuaJIT speaks 5.1). */
#if LUA_VERSION_NUM >= 504
#define VX_LUA_VERSION "5.4"
#elif LUA_VERSION_NUM == 503
#define VX_LUA_VERSION "5.3"
#elif LUA_VERSION_NUM == 502
#define VX_LUA_VERSION "5.2"
#else
#define VX_LUA_VERSION "5.1"
#endif

/* ---- 5.1 and LuaJIT: no 5.2 core API ---------------------------------- */
#if LUA_VERSION_NUM < 502

#define lua_rawlen(L, i) lua_objlen((L), (i))

static inline int vx_absindex(lua_State *L, int i) {
  return (i > 0 || i <= LUA_REGISTRYINDEX) ? i : lua_gettop(L) + i + 1;
}
#define lua_absindex(L, i) vx_absindex((L), (i))

/* PUC 5.1 has no luaL_setfuncs. LuaJIT 2.1 exports one, but the shim serves it too, on purpose:
 * the core built with LuaJIT's headers then needs only the Lua 5.1 ABI, so the one core.so in
 * luarocks' 5.1 tree (make rock-jit) loads in luajit and in lua5.1 alike (Debian's luarocks runs
 * the installed CLI with lua5.1). Sets each function of l, with the nup values under the table
 * as upvalues, into the table; pops the values. */
static inline void vx_setfuncs(lua_State *L, const luaL_Reg *l, int nup) {
  luaL_checkstack(L, nup + 1, "too many upvalues");
  for (; l->name; l++) {
    int i;
    for (i = 0; i < nup; i++) lua_pushvalue(L, -nup);
    lua_pushcclosure(L, l->func, nup);
    lua_setfield(L, -(nup + 2), l->name);
  }
  lua_pop(L, nup);
}
#define luaL_setfuncs(L, l, n) vx_setfuncs((L), (l), (n))

#ifndef luaL_newlib /* LuaJIT's own expands to the luaL_setfuncs above */
#define luaL_newlib(L, l) (lua_newtable(L), luaL_setfuncs((L), (l), 0))
#endif

#endif /* < 502 */

/* ---- before 5.3: getters return nothing, numbers have no integer subtype ---- */
#if LUA_VERSION_NUM < 503

/* lua_getfield / lua_rawgeti return the pushed value's type from 5.3 on. */
static inline int vx_getfield(lua_State *L, int i, const char *k) {
  lua_getfield(L, i, k);
  return lua_type(L, -1);
}
static inline int vx_rawgeti(lua_State *L, int i, int n) {
  lua_rawgeti(L, i, n);
  return lua_type(L, -1);
}
#define VX_GETFIELD(L, i, k) vx_getfield((L), (i), (k))
#define VX_RAWGETI(L, i, n) vx_rawgeti((L), (i), (n))

/* A whole number in the range of a 64-bit integer (NaN, infinities and 1e300 are not: casting
 * them to an integer type would be undefined behaviour, so the range is checked first). */
static inline int vx_isinteger(lua_State *L, int i) {
  lua_Number n;
  if (lua_type(L, i) != LUA_TNUMBER) return 0;
  n = lua_tonumber(L, i);
  return n >= -9223372036854775808.0 && n < 9223372036854775808.0 && n == floor(n);
}
#define lua_isinteger(L, i) vx_isinteger((L), (i))

#else

#define VX_GETFIELD(L, i, k) lua_getfield((L), (i), (k))
#define VX_RAWGETI(L, i, n) lua_rawgeti((L), (i), (n))

#endif /* < 503 */

/* No to-be-closed variables before 5.4: a __close field is harmless and simply never called.
 * No __gc for tables on 5.1 / LuaJIT: everything the core frees is a userdata. */

#endif
