/* module.c: luaopen_vertexops_core -- libcurl's global init (once per process, however many Lua
 * states), the list of parts, and core.cancel/get/delete/list: one validated attempt through the
 * same path as a client's call (lua/vertexops/init.lua, vertexops._core_call), no retries. */
#include <pthread.h>
#include <stdio.h>

#include <openssl/crypto.h>

#include "vx.h"

/* Process-wide, written once under pthread_once (then only read): libcurl's global init and its
 * version (curl_version_info writes static data, so it is asked once, here). */
static pthread_once_t vx_curl_once = PTHREAD_ONCE_INIT;
static CURLcode vx_curl_init_result = CURLE_OK;
static char vx_curl_version[32] = "unknown";
static unsigned vx_curl_version_num = 0;

static void vx_curl_init(void) {
  const curl_version_info_data *v;
  vx_curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
  v = curl_version_info(CURLVERSION_NOW);
  snprintf(vx_curl_version, sizeof vx_curl_version, "%s", v->version);
  vx_curl_version_num = v->version_num;
}

int vx_curl_ready(void) {
  pthread_once(&vx_curl_once, vx_curl_init);
  return vx_curl_init_result == CURLE_OK;
}

const char *vx_curlversion(void) { return vx_curl_version; }

/* core.cancel / get / delete / list (name, region [, opts]): the Lua front's one-attempt call, so
 * there is one path from validation to classification (and one place for the environment's
 * defaults and the credentials chain). The one place the core calls up into the Lua front: the
 * core does not cancel on its own (docs/contract.md, "Modules"). */
static int vx_oneshot(lua_State *L, const char *call) {
  lua_settop(L, 3);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "vertexops");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "_core_call");
  lua_pushstring(L, call);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_call(L, 4, 1);
  return 1;
}

static int core_cancel(lua_State *L) { return vx_oneshot(L, "cancel"); }
static int core_get(lua_State *L) { return vx_oneshot(L, "get"); }
static int core_delete(lua_State *L) { return vx_oneshot(L, "delete"); }
static int core_list(lua_State *L) { return vx_oneshot(L, "list"); }

static const luaL_Reg module_funcs[] = {
    {"cancel", core_cancel}, {"get", core_get}, {"delete", core_delete}, {"list", core_list}, {NULL, NULL}};

/* A class of userdata (handle, multi, share): its metatable under name, with close as both __gc
 * and __close (one idempotent function object), an optional __tostring, and methods as __index. */
void vx_newclass(lua_State *L, const char *name, lua_CFunction close, lua_CFunction tostring,
                 const luaL_Reg *methods) {
  luaL_newmetatable(L, name);
  lua_pushcfunction(L, close);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "__gc");
  lua_setfield(L, -2, "__close");
  if (tostring) {
    lua_pushcfunction(L, tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_newtable(L);
  lua_pushvalue(L, -2); /* each method's upvalues: the metatable and the name (vx_checkudarg) */
  lua_pushlightuserdata(L, (void *)name);
  luaL_setfuncs(L, methods, 2);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

/* The parts, in order: errors first (every other part raises through them). */
static void (*const vx_parts[])(lua_State *L) = {
    vx_error_open, vx_options_open, vx_request_open, vx_json_open, vx_response_open,
    vx_handle_open, vx_multi_open, vx_share_open, vx_jwt_open, vx_sigv4_open, vx_sys_open, vx_spawn_open,
    vx_h1_open, vx_redis_open, NULL};

int luaopen_vertexops_core(lua_State *L) {
  int i;
  lua_newtable(L);
  for (i = 0; vx_parts[i]; i++) vx_parts[i](L);
  luaL_setfuncs(L, module_funcs, 0);
  lua_pushliteral(L, VX_VERSION);
  lua_setfield(L, -2, "version");
  if (!vx_curl_ready()) return vx_curlerror(L, "curl_global_init failed");
  if (vx_curl_version_num < VX_MIN_CURL)
    return vx_curlerror(L, "libcurl %s is too old: vertexops needs %s or newer", vx_curl_version,
                        VX_MIN_CURL_TEXT);
  /* curl_version() would initialise libldap, which leaks; the version number is enough */
  lua_pushstring(L, vx_curl_version);
  lua_setfield(L, -2, "curl_version");
  /* the OpenSSL this core runs with ("OpenSSL 3.0.11 19 Sep 2023"): vertexops --version prints it */
  lua_pushstring(L, OpenSSL_version(OPENSSL_VERSION));
  lua_setfield(L, -2, "openssl_version");
  return 1;
}
