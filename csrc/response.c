/* response.c: answer classification -- status + header block + body -> true, decoded[, headers]
 * or false, a tagged error (HttpError, ResponseTypeError). Pure: no libcurl. Every transport
 * ends here (handle:call, handle:finish) and so do core.classify and the fuzzers. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "vx.h"

/* Pushes the header block (raw "Name: value" lines of the last response) as a table with
 * lower-case names; repeated headers are joined with ", " (collected as lists first, so a block
 * of many repeats costs linear time). The status line, lines without a name and names longer
 * than 127 bytes are skipped. */
static void vx_pushheaders(lua_State *L, const char *data, size_t len) {
  const char *p = data, *end = data + len;
  int t;
  lua_newtable(L);
  t = lua_gettop(L);
  while (p && p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *colon, *v, *ve;
    size_t i, nlen;
    if (!eol) eol = end;
    colon = memchr(p, ':', (size_t)(eol - p));
    if (colon && colon > p && !((size_t)(eol - p) >= 5 && memcmp(p, "HTTP/", 5) == 0)) {
      char name[128];
      nlen = (size_t)(colon - p);
      if (nlen < sizeof name) {
        for (i = 0; i < nlen; i++) name[i] = (char)VX_TOLOWER(p[i]);
        v = colon + 1;
        ve = eol;
        while (v < ve && (*v == ' ' || *v == '\t')) v++;
        while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
        lua_pushlstring(L, name, nlen);
        lua_pushvalue(L, -1);
        lua_rawget(L, t);
        if (lua_isnil(L, -1)) { /* first: the value itself */
          lua_pop(L, 1);
          lua_pushlstring(L, v, (size_t)(ve - v));
          lua_rawset(L, t);
        } else {
          if (lua_type(L, -1) == LUA_TSTRING) { /* second: a list of both */
            lua_createtable(L, 4, 0);
            lua_insert(L, -2);
            lua_rawseti(L, -2, 1);
            lua_pushvalue(L, -2);
            lua_pushvalue(L, -2);
            lua_rawset(L, t);
          }
          lua_pushlstring(L, v, (size_t)(ve - v));
          lua_rawseti(L, -2, (int)lua_rawlen(L, -2) + 1);
          lua_pop(L, 2);
        }
      }
    }
    p = eol + 1;
  }
  /* lists become "a, b, c" (assigning to an existing key is allowed during lua_next) */
  lua_pushnil(L);
  while (lua_next(L, t)) {
    if (lua_type(L, -1) == LUA_TTABLE) {
      luaL_Buffer b;
      int i, n = (int)lua_rawlen(L, -1), list = lua_gettop(L);
      lua_pushvalue(L, -2); /* the key, for the rawset below */
      luaL_buffinit(L, &b);
      for (i = 1; i <= n; i++) {
        if (i > 1) luaL_addlstring(&b, ", ", 2);
        lua_rawgeti(L, list, i);
        luaL_addvalue(&b);
      }
      luaL_pushresult(&b);
      lua_rawset(L, t);
    }
    lua_pop(L, 1);
  }
}

#define VX_MAX_MESSAGE 1024 /* bytes of a server's error message quoted in ours */
#define VX_MAX_DETAILS 64    /* entries of error.details looked at for the ErrorInfo */

/* 1 when the type URL s (a detail's "@type") names the message type name: the last segment of its
 * path is exactly name, "type.googleapis.com/google.rpc.ErrorInfo" for "google.rpc.ErrorInfo".
 * A bare name, "x/evilgoogle.rpc.ErrorInfo" or "x/y.google.rpc.ErrorInfo" is another type. The
 * one rule for every detail type: ErrorInfo here, RetryInfo in lua/vertexops/retry.lua (through
 * core.is_type). */
static int vx_istype(const char *s, size_t n, const char *name) {
  size_t m = strlen(name);
  return n > m && s[n - m - 1] == '/' && memcmp(s + n - m, name, m) == 0;
}

/* core.is_type(type_url, name) -> boolean: vx_istype; false when type_url is not a string */
static int core_is_type(lua_State *L) {
  size_t n;
  const char *name = vx_checkstringarg(L, 2, "name", NULL);
  const char *s = lua_type(L, 1) == LUA_TSTRING ? lua_tolstring(L, 1, &n) : NULL;
  lua_pushboolean(L, s && vx_istype(s, n, name));
  return 1;
}

/* 1 when the decoded JSON value at idx is a non-empty list. cjson decodes a list to a table with
 * keys 1..n and an object to one with string keys only (its length is 0); an empty [] and an
 * empty {} decode alike, and neither has a detail to read. */
static int vx_islist(lua_State *L, int idx) {
  return lua_rawlen(L, idx) > 0;
}

/* Google's error.details (the decoded envelope's table at gidx): sets err.details (the list as
 * decoded) when it is a non-empty JSON list and, from the first
 * google.rpc.ErrorInfo in it, err.reason, err.domain (strings) and err.metadata (a table) on the
 * error object on the stack top. Anything of another type or shape is left out: a server's answer
 * never raises here. */
static void vx_seterrordetails(lua_State *L, int gidx) {
  int err = lua_gettop(L), details, i, n, found = 0;
  lua_checkstack(L, 8);
  if (vx_rawfield(L, gidx, "details") != LUA_TTABLE || !vx_islist(L, lua_gettop(L))) {
    lua_settop(L, err);
    return;
  }
  details = lua_gettop(L);
  lua_pushvalue(L, details);
  lua_setfield(L, err, "details");
  n = (int)(lua_rawlen(L, details) > VX_MAX_DETAILS ? VX_MAX_DETAILS : lua_rawlen(L, details));
  for (i = 1; i <= n && !found; i++) {
    if (VX_RAWGETI(L, details, i) == LUA_TTABLE) {
      int d = lua_gettop(L);
      size_t tlen = 0;
      const char *t = vx_rawfield(L, d, "@type") == LUA_TSTRING ? lua_tolstring(L, -1, &tlen) : NULL;
      if (t && vx_istype(t, tlen, "google.rpc.ErrorInfo")) {
        found = 1;
        if (vx_rawfield(L, d, "reason") == LUA_TSTRING) lua_setfield(L, err, "reason");
        else lua_pop(L, 1);
        if (vx_rawfield(L, d, "domain") == LUA_TSTRING) lua_setfield(L, err, "domain");
        else lua_pop(L, 1);
        if (vx_rawfield(L, d, "metadata") == LUA_TTABLE) lua_setfield(L, err, "metadata");
        else lua_pop(L, 1);
      }
    }
    lua_settop(L, details);
  }
  lua_settop(L, err);
}

/* Pushes the HttpError for a non-2xx answer; headers table at hidx. */
static void vx_pushhttperror(lua_State *L, long status, const char *body, size_t blen, int hidx) {
  const char *gmsg = NULL;
  size_t gmsglen = 0;
  int err;
  hidx = lua_absindex(L, hidx);
  if (!vx_pushjson(L, body, blen)) { /* not JSON: the body as it came */
    lua_pop(L, 1);
    lua_pushlstring(L, body, blen);
  }
  err = lua_gettop(L); /* body */
  lua_pushnil(L);      /* err + 1: status name */
  if (lua_type(L, err) == LUA_TTABLE && VX_GETFIELD(L, err, "error") == LUA_TTABLE) {
    if (VX_GETFIELD(L, -1, "message") == LUA_TSTRING) gmsg = lua_tolstring(L, -1, &gmsglen);
    if (VX_GETFIELD(L, -2, "status") == LUA_TSTRING) lua_replace(L, err + 1);
    else lua_pop(L, 1);
    /* the message string stays referenced by the body table */
    lua_pop(L, 2);
  } else if (lua_type(L, err) == LUA_TTABLE) {
    lua_pop(L, 1);
  }
  if (gmsg) {
    int cut = gmsglen > VX_MAX_MESSAGE;
    lua_pushfstring(L, "HTTP server responded with error code %d: ", (int)status);
    lua_pushlstring(L, gmsg, cut ? VX_MAX_MESSAGE : gmsglen);
    lua_pushstring(L, cut ? "..." : "");
    lua_concat(L, 3);
  } else {
    lua_pushfstring(L, "HTTP server responded with error code %d", (int)status);
  }
  vx_pusherror(L, vx_tags_http, lua_tostring(L, -1));
  lua_remove(L, -2);
  lua_pushinteger(L, (lua_Integer)status);
  lua_setfield(L, -2, "code");
  lua_pushvalue(L, err + 1);
  lua_setfield(L, -2, "status");
  lua_pushvalue(L, err);
  lua_setfield(L, -2, "body");
  lua_pushvalue(L, hidx);
  lua_setfield(L, -2, "headers");
  if (lua_type(L, err) == LUA_TTABLE) {
    if (vx_rawfield(L, err, "error") == LUA_TTABLE) {
      lua_insert(L, -2); /* the envelope's error under the error object */
      vx_seterrordetails(L, lua_gettop(L) - 1);
      lua_remove(L, -2);
    } else {
      lua_pop(L, 1);
    }
  }
  lua_replace(L, err);
  lua_settop(L, err);
}

/* Pushes the ResponseTypeError for an answer refused for its size (what: VX_OVER_BODY, VX_OVER_HEAD
 * or VX_OVER_LINE), keeping the status as code when a final one (not 1xx) was received. Every
 * transport ends here. */
void vx_pushoversize(lua_State *L, int what, long status) {
  char msg[128];
  if (status < 200) status = 0; /* an interim answer's status is not the answer's */
  if (what == VX_OVER_BODY)
    snprintf(msg, sizeof msg, "response body is larger than %d MiB", (int)(VX_MAX_BODY >> 20));
  else if (what == VX_OVER_HEAD)
    snprintf(msg, sizeof msg, "response headers are larger than %d KiB", (int)(VX_MAX_HEAD >> 10));
  else
    snprintf(msg, sizeof msg, "a response header line is larger than libcurl's limit (100 KB)");
  if (status) snprintf(msg + strlen(msg), sizeof msg - strlen(msg), " (HTTP %ld)", status);
  vx_pusherror(L, vx_tags_response, msg);
  if (status) {
    lua_pushinteger(L, (lua_Integer)status);
    lua_setfield(L, -2, "code");
  }
}

/* Classifies an answer: pushes true, decoded[, headers] (headers only with want_headers) or
 * false, err and returns how many values it pushed. Any status outside 2xx is an HttpError; a
 * 2xx whose body is not a JSON object (empty counts as {}) is a ResponseTypeError. */
int vx_classify(lua_State *L, long status, const char *head, size_t hlen, const char *body,
                       size_t blen, int want_headers) {
  size_t i;
  if (!head) head = "", hlen = 0;
  if (!body) body = "", blen = 0;
  if (status < 200 || status > 299) {
    vx_pushheaders(L, head, hlen);
    lua_pushboolean(L, 0);
    vx_pushhttperror(L, status, body, blen, -2);
    lua_remove(L, -3); /* the headers table, now inside the error */
    return 2;
  }
  lua_pushboolean(L, 1);
  for (i = 0; i < blen && VX_ISSPACE(body[i]); i++) {
  }
  if (i == blen) {
    lua_newtable(L); /* an empty body: an empty object */
  } else if (blen - i == 2 && body[i] == '{' && body[i + 1] == '}') {
    lua_newtable(L); /* "{}", what cancel and delete answer: no decoder needed */
  } else if (body[i] != '{' || !vx_pushjson(L, body, blen)) {
    if (body[i] != '{') lua_pushliteral(L, "not a JSON object");
    lua_pushfstring(L, "HTTP %d response is not a JSON object (%d bytes): ", (int)status,
                    (int)(blen > INT32_MAX ? INT32_MAX : blen));
    lua_insert(L, -2);
    lua_concat(L, 2);
    lua_remove(L, -2); /* the true */
    lua_pushboolean(L, 0);
    vx_pusherror(L, vx_tags_response, lua_tostring(L, -2));
    lua_remove(L, -3);
    lua_pushinteger(L, (lua_Integer)status);
    lua_setfield(L, -2, "code");
    lua_pushlstring(L, body, blen > 4096 ? 4096 : blen);
    lua_setfield(L, -2, "body");
    return 2;
  }
  if (!want_headers) return 2;
  vx_pushheaders(L, head, hlen);
  return 3;
}

/* core.classify(status, header_block, body [, want_headers]) -> what handle:call returns for
 * that answer. The same classification for every transport (and for the fuzzers). */
static int core_classify(lua_State *L) {
  size_t hlen, blen;
  lua_Number st = vx_checknumberarg(L, 1, "status");
  const char *head = vx_checkstringarg(L, 2, "header_block", &hlen);
  const char *body = vx_checkstringarg(L, 3, "body", &blen);
  int want = lua_toboolean(L, 4);
  if (!(st >= 100 && st <= 999) || st != floor(st))
    vx_valueerror(L, "status must be a whole number from 100 to 999");
  lua_settop(L, 3);
  return vx_classify(L, (long)st, head, hlen, body, blen, want);
}

static const luaL_Reg response_funcs[] = {{"classify", core_classify}, {"is_type", core_is_type}, {NULL, NULL}};

void vx_response_open(lua_State *L) { luaL_setfuncs(L, response_funcs, 0); }
