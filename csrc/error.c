/* error.c: error objects -- the shared metatable, core.error / core.is, the argument checks
 * that raise them, and the one table mapping libcurl result codes to tags. Every failure the core
 * reports or raises is made here. */
#include <stdarg.h>
#include <string.h>

#include "vx.h"

const char *const vx_tags_failed[] = {"ConnectionFailedError", "ConnectionError", NULL};
const char *const vx_tags_failed_timeout[] = {"ConnectionFailedError", "ConnectionError", "TimeoutError",
                                              NULL};
const char *const vx_tags_conn[] = {"ConnectionError", NULL};
const char *const vx_tags_timeout[] = {"TimeoutError", NULL};
const char *const vx_tags_response[] = {"ResponseTypeError", NULL};
const char *const vx_tags_http[] = {"HttpError", NULL};

/* Pushes a new error table {tags = {...}, message = msg} with the shared
 * metatable. tags is a NULL-terminated list, most specific first. */
void vx_pusherror(lua_State *L, const char *const *tags, const char *msg) {
  int i;
  lua_createtable(L, 0, 4);
  lua_createtable(L, 2, 0);
  for (i = 0; tags[i]; i++) {
    lua_pushstring(L, tags[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "tags");
  lua_pushstring(L, msg);
  lua_setfield(L, -2, "message");
  luaL_getmetatable(L, VX_ERROR_MT);
  lua_setmetatable(L, -2);
}

static int vx_raisev(lua_State *L, const char *tag, const char *fmt, va_list ap) {
  const char *tags[2];
  const char *msg;
  tags[0] = tag;
  tags[1] = NULL;
  msg = lua_pushvfstring(L, fmt, ap);
  vx_pusherror(L, tags, msg);
  return lua_error(L);
}

int vx_raise(lua_State *L, const char *tag, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vx_raisev(L, tag, fmt, ap);
  va_end(ap);
  return 0;
}

/* Argument checks that raise tagged errors (luaL_check* raise plain strings). */
const char *vx_checkstringarg(lua_State *L, int idx, const char *what, size_t *len) {
  if (lua_type(L, idx) != LUA_TSTRING)
    vx_typeerror(L, "%s must be a string, got %s", what, luaL_typename(L, idx));
  return lua_tolstring(L, idx, len);
}

lua_Number vx_checknumberarg(lua_State *L, int idx, const char *what) {
  if (lua_type(L, idx) != LUA_TNUMBER)
    vx_typeerror(L, "%s must be a number, got %s", what, luaL_typename(L, idx));
  return lua_tonumber(L, idx);
}

void vx_checktablearg(lua_State *L, int idx, const char *what) {
  if (lua_type(L, idx) != LUA_TTABLE)
    vx_typeerror(L, "%s must be a table, got %s", what, luaL_typename(L, idx));
}

/* Pushes t[k] of the table at idx without metamethods (options are validated with raw reads, so
 * they are read the same way) and returns its type. */
int vx_rawfield(lua_State *L, int idx, const char *k) {
  idx = lua_absindex(L, idx);
  lua_pushstring(L, k);
  lua_rawget(L, idx);
  return lua_type(L, -1);
}

/* The userdata at idx when its metatable is mt's; else TypeError naming what was expected. Every
 * method call of a userdata checks it (issue 19 §4: several per exchange inside nginx), and looking
 * the metatable up by name -- a string made and hashed, then found in the registry -- was most of
 * that: a class's methods carry its metatable and its name's address as upvalues 1 and 2
 * (vx_newclass), so when the function running is one of them and asks for its own class, the
 * check is a comparison. Otherwise (another class's name, a function without those upvalues --
 * what lua_upvalueindex then reads is none -- or the same name at another address) by name. */
void *vx_checkudarg(lua_State *L, int idx, const char *mt, const char *what) {
  void *p = lua_touserdata(L, idx);
  if (p && lua_getmetatable(L, idx)) {
    int same;
    if (lua_type(L, lua_upvalueindex(2)) == LUA_TLIGHTUSERDATA &&
        lua_touserdata(L, lua_upvalueindex(2)) == (const void *)mt) {
      same = lua_rawequal(L, -1, lua_upvalueindex(1));
      lua_pop(L, 1);
    } else {
      luaL_getmetatable(L, mt);
      same = lua_rawequal(L, -1, -2);
      lua_pop(L, 2);
    }
    if (same) return p;
  }
  vx_typeerror(L, "expected a %s, got %s", what, luaL_typename(L, idx));
  return NULL;
}

/* core.error(tags, message [, fields]) -> a new error object */
static int core_error(lua_State *L) {
  int n, i;
  vx_checktablearg(L, 1, "tags");
  vx_checkstringarg(L, 2, "message", NULL);
  lua_createtable(L, 0, 4);
  if (!lua_isnoneornil(L, 3)) {
    vx_checktablearg(L, 3, "fields");
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4);
    }
  }
  n = (int)lua_rawlen(L, 1);
  lua_createtable(L, n, 0);
  for (i = 1; i <= n; i++) {
    VX_RAWGETI(L, 1, i);
    if (lua_type(L, -1) != LUA_TSTRING) vx_typeerror(L, "tags must be strings");
    lua_rawseti(L, -2, i);
  }
  lua_setfield(L, -2, "tags");
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "message");
  luaL_getmetatable(L, VX_ERROR_MT);
  lua_setmetatable(L, -2);
  return 1;
}

/* true when value at idx is a table whose tags list holds tag */
static int vx_hastag(lua_State *L, int idx, const char *tag) {
  int found = 0;
  size_t i, n;
  if (lua_type(L, idx) != LUA_TTABLE) return 0;
  vx_rawfield(L, idx, "tags");
  if (lua_type(L, -1) == LUA_TTABLE) {
    n = lua_rawlen(L, -1);
    for (i = 1; i <= n && !found; i++) {
      VX_RAWGETI(L, -1, (int)i);
      found = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), tag) == 0;
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  return found;
}

/* core.is(err, tag) -> boolean */
static int core_is(lua_State *L) {
  const char *tag = vx_checkstringarg(L, 2, "tag", NULL);
  lua_pushboolean(L, vx_hastag(L, 1, tag));
  return 1;
}

/* error __tostring: "Tag: message" */
static int error_tostring(lua_State *L) {
  const char *tag = "Error", *msg = "";
  if (lua_type(L, 1) == LUA_TTABLE && vx_rawfield(L, 1, "tags") == LUA_TTABLE && VX_RAWGETI(L, -1, 1) == LUA_TSTRING)
    tag = lua_tostring(L, -1);
  if (lua_type(L, 1) == LUA_TTABLE && vx_rawfield(L, 1, "message") == LUA_TSTRING) msg = lua_tostring(L, -1);
  lua_pushfstring(L, "%s: %s", tag, msg);
  return 1;
}

/* libcurl result codes and the tags they carry; anything not listed is a ConnectionError. A
 * timeout carries ConnectionFailedError too when nothing was sent (retryable even for POST). */
static const struct {
  CURLcode rc;
  const char *const *tags;
} vx_curl_map[] = {
    {CURLE_COULDNT_RESOLVE_HOST, vx_tags_failed},   {CURLE_COULDNT_RESOLVE_PROXY, vx_tags_failed},
    {CURLE_COULDNT_CONNECT, vx_tags_failed},        {CURLE_SSL_CONNECT_ERROR, vx_tags_failed},
    {CURLE_PEER_FAILED_VERIFICATION, vx_tags_failed}, {CURLE_SSL_CACERT_BADFILE, vx_tags_failed},
    {CURLE_SSL_CERTPROBLEM, vx_tags_failed},        {CURLE_SSL_CIPHER, vx_tags_failed},
    {CURLE_SSL_ISSUER_ERROR, vx_tags_failed},       {CURLE_SSL_PINNEDPUBKEYNOTMATCH, vx_tags_failed},
    {CURLE_SSL_INVALIDCERTSTATUS, vx_tags_failed},  {CURLE_SSL_CRL_BADFILE, vx_tags_failed},
    {CURLE_UNSUPPORTED_PROTOCOL, vx_tags_failed},
};
const char *const *vx_curl_tags(CURLcode rc, long sent) {
  size_t i;
  if (rc == CURLE_OPERATION_TIMEDOUT) return sent == 0 ? vx_tags_failed_timeout : vx_tags_timeout;
  for (i = 0; i < sizeof vx_curl_map / sizeof vx_curl_map[0]; i++)
    if (vx_curl_map[i].rc == rc) return vx_curl_map[i].tags;
  return vx_tags_conn;
}

/* A server certificate that failed verification is not transient: retrying cannot make it pass.
 * Its ConnectionFailedError carries certificate = true (lua/vertexops/retry.lua never retries
 * it) and says how to pass a CA. Both transports classify here: libcurl by result code, the
 * cosocket transport by the handshake's error string ("N: reason", N an X509 verify result, as
 * lua-resty-core reports it, or OpenSSL's "certificate verify failed"). */
int vx_curl_certfailure(CURLcode rc) {
  return rc == CURLE_PEER_FAILED_VERIFICATION;
}

/* "N: " at s, N a nonzero X509 verify result */
static int vx_verifyresult(const char *s) {
  const char *p = s;
  while (*p >= '0' && *p <= '9') p++;
  return p > s && p[0] == ':' && p[1] == ' ' && !(p - s == 1 && s[0] == '0');
}

/* the text holds a verify result (at its start or after a ": ") or OpenSSL's words for one */
static int vx_text_certfailure(const char *s) {
  const char *p;
  if (vx_verifyresult(s)) return 1;
  for (p = strstr(s, ": "); p; p = strstr(p + 2, ": "))
    if (vx_verifyresult(p + 2)) return 1;
  return strstr(s, "certificate verify failed") != NULL;
}

void vx_pushcertfailure(lua_State *L, const char *detail) {
  const char *msg = lua_pushfstring(
      L,
      "certificate verify failed: %s; pass the CA that signed the server's certificate: "
      "--ca-file FILE (vertexops), the ca_file option (libcurl), lua_ssl_trusted_certificate (nginx)",
      detail);
  vx_pusherror(L, vx_tags_failed, msg);
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "certificate");
  lua_remove(L, -2);
}

/* core.certificate_error(detail) -> the error of a failed certificate verification when the
 * handshake error detail (a string) is one, else nil */
static int core_certificate_error(lua_State *L) {
  const char *detail = vx_checkstringarg(L, 1, "detail", NULL);
  if (!vx_text_certfailure(detail)) return 0;
  vx_pushcertfailure(L, detail);
  return 1;
}

static const luaL_Reg error_funcs[] = {
    {"error", core_error}, {"is", core_is}, {"certificate_error", core_certificate_error}, {NULL, NULL}};

/* The tag lists above, for the Lua side's transports (lua/vertexops/transport/cosocket.lua) so that
 * they tag as this core does: core.TAGS = {failed = {...}, failed_timeout, conn, timeout, response, http}.
 * core.error copies a list it is given; these tables are not to be changed. */
static const struct {
  const char *name;
  const char *const *tags;
} vx_tag_lists[] = {{"failed", vx_tags_failed},   {"failed_timeout", vx_tags_failed_timeout},
                    {"conn", vx_tags_conn},       {"timeout", vx_tags_timeout},
                    {"response", vx_tags_response}, {"http", vx_tags_http}};

static void vx_pushtaglists(lua_State *L) {
  size_t i;
  int j;
  lua_createtable(L, 0, (int)(sizeof vx_tag_lists / sizeof vx_tag_lists[0]));
  for (i = 0; i < sizeof vx_tag_lists / sizeof vx_tag_lists[0]; i++) {
    lua_newtable(L);
    for (j = 0; vx_tag_lists[i].tags[j]; j++) {
      lua_pushstring(L, vx_tag_lists[i].tags[j]);
      lua_rawseti(L, -2, j + 1);
    }
    lua_setfield(L, -2, vx_tag_lists[i].name);
  }
}

/* The error metatable (first: every other part raises through it), core.error, core.is, core.error_mt,
 * core.TAGS. */
void vx_error_open(lua_State *L) {
  luaL_newmetatable(L, VX_ERROR_MT);
  lua_pushcfunction(L, error_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "vertexops.error");
  lua_setfield(L, -2, "__name");
  lua_setfield(L, -2, "error_mt");
  vx_pushtaglists(L);
  lua_setfield(L, -2, "TAGS");
  luaL_setfuncs(L, error_funcs, 0);
}
