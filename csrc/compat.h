/* compat.h: vertexops.core is written against Lua 5.4; these shims let the
 * same source build for LuaJIT 2.1 / Lua 5.1 (LUA_VERSION_NUM 501).
 * Every shim is static inline with a vx_ prefix so it never clashes with a
 * symbol LuaJIT exports itself. */
#ifndef VERTEXOPS_COMPAT_H
#define VERTEXOPS_COMPAT_H

#include <math.h>

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM < 502

#define lua_rawlen(L, i) lua_objlen((L), (i))

static inline int vx_absindex(lua_State *L, int i) {
  return (i > 0 || i <= LUA_REGISTRYINDEX) ? i : lua_gettop(L) + i + 1;
}
#define lua_absindex(L, i) vx_absindex((L), (i))

#ifndef luaL_newlib
#define luaL_newlib(L, l) (lua_newtable(L), luaL_setfuncs((L), (l), 0))
#endif

/* lua_getfield / lua_rawget return the pushed value's type from 5.3 on. */
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

/* No to-be-closed variables before 5.4: __close is simply never called. */

#else

#define VX_GETFIELD(L, i, k) lua_getfield((L), (i), (k))
#define VX_RAWGETI(L, i, n) lua_rawgeti((L), (i), (n))

#endif

#endif
