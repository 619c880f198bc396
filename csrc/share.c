/* share.c: the connection cache (vertexops.share) -- connections, DNS and TLS sessions shared
 * by the handles of one client. Its state lives apart from the userdata, reference-counted by the
 * handles using it, so the garbage collector may finalize them in any order. */
#include <stdlib.h>

#include "vx.h"

void vx_share_release(vx_sharestate *st) {
  if (st && st->orphan && st->refs == 0) {
    curl_share_cleanup(st->sh);
    free(st);
  }
}

/* The open share at idx (TypeError for anything else, ValueError when closed). */
vx_sharestate *vx_checkshare(lua_State *L, int idx) {
  vx_share *u = vx_checkudarg(L, idx, VX_SHARE_MT, "vertexops share");
  if (!u->st) vx_valueerror(L, "attempt to use a closed vertexops share");
  return u->st;
}

/* core.share() -> a new connection cache to share between handles */
static int core_share(lua_State *L) {
  vx_share *u = lua_newuserdata(L, sizeof *u);
  vx_sharestate *st;
  u->st = NULL; /* born closed */
  luaL_getmetatable(L, VX_SHARE_MT);
  lua_setmetatable(L, -2);
  if (!vx_curl_ready()) return vx_curlerror(L, "curl_global_init failed");
  st = calloc(1, sizeof *st);
  if (!st) return vx_curlerror(L, "not enough memory for a connection cache");
  st->sh = curl_share_init();
  if (!st->sh) {
    free(st);
    return vx_curlerror(L, "curl_share_init failed");
  }
  u->st = st; /* owned from here: __gc frees it if we raise */
  if (curl_share_setopt(st->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK ||
      curl_share_setopt(st->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK ||
      curl_share_setopt(st->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK)
    return vx_curlerror(L, "libcurl refused to share connections");
  return 1;
}

/* __gc, __close and close(): idempotent; the cache itself goes with the last handle using it */
static int share_close(lua_State *L) {
  vx_share *u = vx_checkudarg(L, 1, VX_SHARE_MT, "vertexops share");
  if (u->st) {
    u->st->orphan = 1;
    vx_share_release(u->st);
    u->st = NULL;
  }
  return 0;
}

static const luaL_Reg share_funcs[] = {{"share", core_share}, {NULL, NULL}};

static const luaL_Reg share_methods[] = {{"close", share_close}, {NULL, NULL}};

void vx_share_open(lua_State *L) {
  vx_newclass(L, VX_SHARE_MT, share_close, NULL, share_methods);
  luaL_setfuncs(L, share_funcs, 0);
}
