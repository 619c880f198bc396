/* json.c: JSON answers into Lua values, with the module's private lua-cjson instance; integers
 * stay integers (Lua 5.3+); nesting is bounded and the Lua stack checked at every level. */
#include "vx.h"

#if LUA_VERSION_NUM >= 503
/* cjson decodes every number as a float; JSON integers (error codes, counts) should read as Lua
 * integers, so integral values that fit are converted in place. Recursion is bounded by the
 * decoder's depth limit (VX_MAX_DEPTH); the Lua stack is checked at every level. Returns 0 when
 * the stack cannot grow (the answer is then refused). */
static int vx_fixints(lua_State *L, int t) {
  if (!lua_checkstack(L, 4)) return 0;
  lua_pushnil(L);
  while (lua_next(L, t)) {
    if (lua_type(L, -1) == LUA_TTABLE) {
      if (!vx_fixints(L, lua_gettop(L))) {
        lua_pop(L, 2);
        return 0;
      }
    } else if (lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1)) {
      lua_Number n = lua_tonumber(L, -1);
      lua_Integer i;
      if (n >= -9007199254740992.0 && n <= 9007199254740992.0 && lua_numbertointeger(n, &i) &&
          (lua_Number)i == n) {
        lua_pushvalue(L, -2);
        lua_pushinteger(L, i);
        lua_rawset(L, t); /* assigning to an existing key is allowed during lua_next */
      }
    }
    lua_pop(L, 1);
  }
  return 1;
}
#endif

/* Decodes s as JSON with the module's cjson instance. Pushes the decoded table and returns 1, or
 * pushes a reason (a string) and returns 0: not JSON, not an object or array, nested more than
 * VX_MAX_DEPTH levels. A memory error while decoding is raised again as the memory error it is:
 * cjson.safe would turn it into a plain string ("Memory allocation error in CJSON protected call")
 * raised through every caller, so the decoder runs unprotected under our own lua_pcall. */
int vx_pushjson(lua_State *L, const char *s, size_t n) {
  int st;
  lua_getfield(L, LUA_REGISTRYINDEX, VX_JSON_KEY);
  lua_getfield(L, -1, "decode");
  lua_remove(L, -2);
  lua_pushlstring(L, s, n);
  st = lua_pcall(L, 1, 1, 0);
  if (st == LUA_ERRMEM) lua_error(L); /* "not enough memory", as Lua raised it */
  if (st != 0 || lua_type(L, -1) != LUA_TTABLE) {
    if (st == 0 || lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 1);
      lua_pushliteral(L, "not a JSON object");
    }
    return 0;
  }
#if LUA_VERSION_NUM >= 503
  if (!vx_fixints(L, lua_gettop(L))) {
    lua_pop(L, 1);
    lua_pushliteral(L, "JSON nested too deeply");
    return 0;
  }
#endif
  return 1;
}

/* A private cjson instance in the registry: its settings are ours alone. Its decode raises (the
 * plain module, not cjson.safe): vx_pushjson calls it protected. */
void vx_json_open(lua_State *L) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "cjson");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "new");
  lua_call(L, 0, 1);
  /* nesting deeper than this is refused while decoding (and bounds vx_fixints' recursion) */
  lua_getfield(L, -1, "decode_max_depth");
  lua_pushinteger(L, VX_MAX_DEPTH);
  lua_call(L, 1, 0);
  lua_setfield(L, LUA_REGISTRYINDEX, VX_JSON_KEY);
  lua_pop(L, 1);
}
