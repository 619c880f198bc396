/*
 * vertexops.core: the wire layer of vertexops.
 *
 * Mechanism only: validated requests, libcurl handles with connection reuse,
 * tagged error objects, a monotonic clock and sleep. Retry, polling and
 * credentials policy live in lua/vertexops/.
 *
 * Rules kept throughout (see csrc/compat.h for the Lua 5.1/LuaJIT shims):
 *  - no Lua API call that can raise runs inside a libcurl callback: the
 *    callbacks append to C buffers owned by the handle userdata;
 *  - everything allocated before a possible raise is owned by a userdata;
 *  - no mutable C globals except the pthread_once guard of curl_global_init.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "compat.h"

#define VX_VERSION "0.1.0"
#define VX_HANDLE_MT "vertexops.handle"
#define VX_ERROR_MT "vertexops.error"
#define VX_SHARE_MT "vertexops.share"
#define VX_MULTI_MT "vertexops.multi"
#define VX_JSON_KEY "vertexops.json"
#define VX_MAX_BODY ((size_t)32 << 20)   /* response bodies larger than this are refused */
#define VX_MAX_HEAD ((size_t)256 << 10)  /* response headers larger than this are refused */
#define VX_MAX_NAME 1024
#define VX_MAX_TIMEOUT 31536000.0        /* one year, the Workflows limit for long-running calls */
#define VX_MAX_DEPTH 128                 /* JSON nesting we decode (Google's parsers stop at 100) */

/* The oldest libcurl we run on: CURLOPT_PROTOCOLS_STR is 7.85.0 (curl_multi_poll 7.66,
 * CURLMOPT_MAX_CONCURRENT_STREAMS 7.67). Checked when building and again when loading. */
#define VX_MIN_CURL 0x075500
#define VX_MIN_CURL_TEXT "7.85.0"
#if LIBCURL_VERSION_NUM < VX_MIN_CURL
#error "vertexops needs libcurl 7.85.0 or newer"
#endif

/* Character classes are ASCII, never the locale's (isalnum & co. follow setlocale). */
#define VX_ISDIGIT(c) ((c) >= '0' && (c) <= '9')
#define VX_ISLOWER(c) ((c) >= 'a' && (c) <= 'z')
#define VX_ISUPPER(c) ((c) >= 'A' && (c) <= 'Z')
#define VX_ISALNUM(c) (VX_ISDIGIT(c) || VX_ISLOWER(c) || VX_ISUPPER(c))
#define VX_ISSPACE(c) ((c) == ' ' || (c) == '\t' || (c) == '\n' || (c) == '\r' || (c) == '\f' || (c) == '\v')
#define VX_ISXDIGIT(c) (VX_ISDIGIT(c) || ((c) >= 'a' && (c) <= 'f') || ((c) >= 'A' && (c) <= 'F'))
#define VX_TOLOWER(c) (VX_ISUPPER(c) ? (c) - 'A' + 'a' : (c))

/* Process-wide, written once under pthread_once (then only read): libcurl's global init and its
 * version string (curl_version_info writes static data, so it is asked once, here). */
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
static int vx_curl_ready(void) {
  pthread_once(&vx_curl_once, vx_curl_init);
  return vx_curl_init_result == CURLE_OK;
}

/* ------------------------------------------------------------------ */
/* Error objects                                                        */
/* ------------------------------------------------------------------ */

/* Pushes a new error table {tags = {...}, message = msg} with the shared
 * metatable. tags is a NULL-terminated list, most specific first. */
static void vx_pusherror(lua_State *L, const char *const *tags, const char *msg) {
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

static int vx_raise(lua_State *L, const char *tag, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vx_raisev(L, tag, fmt, ap);
  va_end(ap);
  return 0;
}

#define vx_typeerror(L, ...) vx_raise((L), "TypeError", __VA_ARGS__)
#define vx_valueerror(L, ...) vx_raise((L), "ValueError", __VA_ARGS__)
/* libcurl or the system could not give us a resource: the exchange fails (nothing was sent) */
#define vx_curlerror(L, ...) vx_raise((L), "ConnectionError", __VA_ARGS__)
/* every libcurl option is checked: a refused one fails the request (closed), never ignored */
#define VX_SETOPT(L, e, opt, val)                                                             \
  do {                                                                                        \
    if (curl_easy_setopt((e), (opt), (val)) != CURLE_OK)                                      \
      vx_curlerror((L), "libcurl refused option " #opt);                                      \
  } while (0)

/* Argument checks that raise tagged errors (luaL_check* raise plain strings). */
static const char *vx_checkstringarg(lua_State *L, int idx, const char *what, size_t *len) {
  if (lua_type(L, idx) != LUA_TSTRING)
    vx_typeerror(L, "%s must be a string, got %s", what, luaL_typename(L, idx));
  return lua_tolstring(L, idx, len);
}

static lua_Number vx_checknumberarg(lua_State *L, int idx, const char *what) {
  if (lua_type(L, idx) != LUA_TNUMBER)
    vx_typeerror(L, "%s must be a number, got %s", what, luaL_typename(L, idx));
  return lua_tonumber(L, idx);
}

static void vx_checktablearg(lua_State *L, int idx, const char *what) {
  if (lua_type(L, idx) != LUA_TTABLE)
    vx_typeerror(L, "%s must be a table, got %s", what, luaL_typename(L, idx));
}

/* Pushes t[k] of the table at idx without metamethods (options are validated with raw reads, so
 * they are read the same way) and returns its type. */
static int vx_rawfield(lua_State *L, int idx, const char *k) {
  idx = lua_absindex(L, idx);
  lua_pushstring(L, k);
  lua_rawget(L, idx);
  return lua_type(L, -1);
}

/* The userdata at idx when its metatable is mt's; else TypeError naming what was expected. */
static void *vx_checkudarg(lua_State *L, int idx, const char *mt, const char *what) {
  void *p = lua_touserdata(L, idx);
  if (p && lua_getmetatable(L, idx)) {
    int same;
    luaL_getmetatable(L, mt);
    same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
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

/* ------------------------------------------------------------------ */
/* Validation                                                           */
/* ------------------------------------------------------------------ */

static int vx_unreserved(int c) {
  return VX_ISALNUM(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

/* Appends s percent-encoded (everything but RFC 3986 unreserved). */
static void vx_addescaped(luaL_Buffer *b, const char *s, size_t n) {
  static const char hex[] = "0123456789ABCDEF";
  size_t i;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (vx_unreserved(c)) {
      luaL_addchar(b, (char)c);
    } else {
      luaL_addchar(b, '%');
      luaL_addchar(b, hex[c >> 4]);
      luaL_addchar(b, hex[c & 15]);
    }
  }
}

static const char *vx_typename(lua_State *L, int idx) {
  return luaL_typename(L, idx);
}

/* Checks that argument idx is a resource name of the given kind and
 * returns it; *loc / *loclen receive its location segment.
 * kind o: projects/P/locations/L/operations/ID, with any number of
 * collection/id pairs before "operations"
 * kind 'p': projects/P/locations/L */
static const char *vx_checkname(lua_State *L, int idx, const char *what, int kind,
                                const char **loc, size_t *loclen) {
  size_t len, i, start = 0;
  int nseg = 0;
  const char *segs[VX_MAX_NAME / 2 + 1];
  size_t seglen[VX_MAX_NAME / 2 + 1];
  const char *s;
  if (lua_type(L, idx) != LUA_TSTRING)
    vx_typeerror(L, "%s must be a string, got %s", what, vx_typename(L, idx));
  s = lua_tolstring(L, idx, &len);
  if (len == 0) vx_valueerror(L, "%s is empty", what);
  if (len > VX_MAX_NAME) vx_valueerror(L, "%s is longer than %d bytes", what, VX_MAX_NAME);
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\r' || c == '\n') vx_valueerror(L, "%s contains a line break (CR or LF)", what);
    if (c == '?' || c == '#' || c == '%' || c == ':')
      vx_valueerror(L, "%s contains '%c', which cannot appear in a resource name", what, c);
    if (c != '/' && !vx_unreserved(c)) {
      char hex[8];
      snprintf(hex, sizeof hex, "0x%02X", (unsigned)c);
      vx_valueerror(L, "%s contains byte %s; resource names are letters, digits and - _ . ~", what,
                    hex);
    }
  }
  for (i = 0; i <= len; i++) {
    if (i == len || s[i] == '/') {
      size_t n = i - start;
      if (n == 0) vx_valueerror(L, "%s has an empty segment", what);
      if ((n == 1 && s[start] == '.') || (n == 2 && s[start] == '.' && s[start + 1] == '.'))
        vx_valueerror(L, "%s has a '.' or '..' segment", what);
      segs[nseg] = s + start;
      seglen[nseg] = n;
      nseg++;
      start = i + 1;
    }
  }
#define SEGIS(k, lit) (seglen[k] == sizeof(lit) - 1 && memcmp(segs[k], lit, sizeof(lit) - 1) == 0)
  if (kind == 'p') {
    if (nseg != 4 || !SEGIS(0, "projects") || !SEGIS(2, "locations"))
      vx_valueerror(L, "%s must look like projects/{project}/locations/{location}", what);
  } else {
    if (nseg < 6 || nseg % 2 != 0 || !SEGIS(0, "projects") || !SEGIS(2, "locations") ||
        !SEGIS(nseg - 2, "operations"))
      vx_valueerror(L, "%s must look like projects/{project}/locations/{location}/operations/{id}",
                    what);
  }
#undef SEGIS
  *loc = segs[3];
  *loclen = seglen[3];
  return s;
}

/* A region is lower-case letters, digits and '-', starting with a letter. */
static int vx_regionok(const char *r, size_t n) {
  size_t i;
  if (n == 0 || n > 63 || !VX_ISLOWER(r[0]) || r[n - 1] == '-') return 0;
  for (i = 0; i < n; i++)
    if (!(VX_ISLOWER(r[i]) || VX_ISDIGIT(r[i]) || r[i] == '-')) return 0;
  return 1;
}

/* Resolves the region from argument idx (string or nil) and the name's
 * location; pushes the region string. */
static void vx_pushregion(lua_State *L, int idx, const char *loc, size_t loclen) {
  size_t n;
  const char *r;
  if (lua_isnoneornil(L, idx)) {
    if (!vx_regionok(loc, loclen))
      vx_valueerror(L, "the name's location is not a region; pass region explicitly");
    lua_pushlstring(L, loc, loclen);
    return;
  }
  if (lua_type(L, idx) != LUA_TSTRING)
    vx_typeerror(L, "region must be a string, got %s", vx_typename(L, idx));
  r = lua_tolstring(L, idx, &n);
  if (!vx_regionok(r, n))
    vx_valueerror(L, "region must look like us-central1 (lower-case letters, digits, '-')");
  if (n != loclen || memcmp(r, loc, n) != 0)
    vx_valueerror(L, "region '%s' does not match the name's location", r);
  lua_pushvalue(L, idx);
}

static int vx_isloopback(const char *h, size_t n) {
  size_t i = 0;
  int parts = 0;
  if (n == 9) {
    for (i = 0; i < 9 && VX_TOLOWER(h[i]) == "localhost"[i]; i++) {
    }
    if (i == 9) return 1;
  }
  if (n == 5 && memcmp(h, "[::1]", 5) == 0) return 1;
  /* a dotted quad 127.a.b.c, each part 0-255 in plain decimal (no octal, no short forms) */
  i = 0;
  while (i < n) {
    size_t start = i;
    unsigned v = 0;
    while (i < n && VX_ISDIGIT(h[i]) && i - start < 3) v = v * 10 + (unsigned)(h[i++] - '0');
    if (i == start || v > 255 || (i - start > 1 && h[start] == '0')) return 0;
    if (parts++ == 0 && v != 127) return 0;
    if (i == n) break;
    if (h[i] != '.' || parts == 4 || i + 1 == n) return 0;
    i++;
  }
  return parts == 4;
}

/* Expands the endpoint template at idx for region (a string on the stack
 * top) and checks the result; replaces the region on the stack top by the
 * base URL (no trailing slash). */
static void vx_pushbase(lua_State *L, int idx, const char *region) {
  const char *t, *p, *host, *end;
  size_t tlen, hostlen;
  int https;
  luaL_Buffer b;
  t = lua_tolstring(L, idx, &tlen);
  luaL_buffinit(L, &b);
  for (p = t; p < t + tlen;) {
    if ((size_t)(t + tlen - p) >= 8 && memcmp(p, "{region}", 8) == 0) {
      luaL_addstring(&b, region);
      p += 8;
    } else {
      luaL_addchar(&b, *p++);
    }
  }
  luaL_pushresult(&b);
  t = lua_tolstring(L, -1, &tlen);
  while (tlen > 0 && t[tlen - 1] == '/') tlen--;
  if (strncmp(t, "https://", 8) == 0) {
    https = 1;
    host = t + 8;
  } else if (strncmp(t, "http://", 7) == 0) {
    https = 0;
    host = t + 7;
  } else {
    vx_valueerror(L, "endpoint must start with https:// (or http:// for a loopback host)");
    return;
  }
  end = t + tlen;
  for (p = host; p < end; p++) {
    unsigned char c = (unsigned char)*p;
    if (c == '@' || c == '?' || c == '#' || c == '%' || c == '\\' || c <= ' ' || c >= 0x7f ||
        c == '{' || c == '}')
      vx_valueerror(L, "endpoint contains '%c' (user info, query, fragment and templates other "
                       "than {region} are not allowed)",
                    c > ' ' && c < 0x7f ? c : '?');
  }
  if (host < end && *host == '[') { /* an IPv6 literal: hex digits, ':' and '.' */
    const char *q;
    p = memchr(host, ']', (size_t)(end - host));
    if (!p) vx_valueerror(L, "endpoint has an unterminated IPv6 address");
    for (q = host + 1; q < p; q++)
      if (!(VX_ISXDIGIT(*q) || *q == ':' || *q == '.'))
        vx_valueerror(L, "endpoint has an invalid IPv6 address");
    if (p - host < 3) vx_valueerror(L, "endpoint has an invalid IPv6 address");
    p++;
  } else { /* a host name or IPv4 address */
    for (p = host; p < end && *p != ':' && *p != '/'; p++)
      if (!(VX_ISALNUM(*p) || *p == '-' || *p == '.' || *p == '_'))
        vx_valueerror(L, "endpoint host contains '%c' (letters, digits, '-', '.' and '_' only)", *p);
  }
  hostlen = (size_t)(p - host);
  if (hostlen == 0) vx_valueerror(L, "endpoint has no host");
  if (p < end && *p == ':') { /* a port: 1 to 65535 */
    const char *digits = ++p;
    unsigned long port = 0;
    while (p < end && VX_ISDIGIT(*p) && port <= 65535) port = port * 10 + (unsigned long)(*p++ - '0');
    if (p == digits || port == 0 || port > 65535 || (p < end && *p != '/'))
      vx_valueerror(L, "endpoint has an invalid port (a number from 1 to 65535)");
  } else if (p < end && *p != '/') {
    vx_valueerror(L, "endpoint has something other than a port or a path after its host");
  }
  if (!https && !vx_isloopback(host, hostlen))
    vx_valueerror(L, "endpoint uses plain http:// for a host that is not loopback; use https://");
  lua_pushlstring(L, t, tlen);
  lua_replace(L, -3);
  lua_pop(L, 1);
}

/* core.check_url(url): raises ValueError unless url is https:// (or http:// to loopback) with no
 * user info, query or fragment; returns it. For URLs that come from elsewhere (token_uri). */
static int core_check_url(lua_State *L) {
  vx_checkstringarg(L, 1, "url", NULL);
  lua_settop(L, 1);
  lua_pushliteral(L, "");
  vx_pushbase(L, 1, "");
  lua_pushvalue(L, 1);
  return 1;
}

/* --- options --- */

/* Checks that a token can go in a header: visible ASCII only (RFC 6750 b64token and more). */
static int vx_tokenok(const char *t, size_t n) {
  size_t i;
  if (n == 0) return 0;
  for (i = 0; i < n; i++)
    if ((unsigned char)t[i] <= ' ' || (unsigned char)t[i] >= 0x7f) return 0;
  return 1;
}


static double vx_checknumber(lua_State *L, int idx, const char *key, double lo, int lo_open,
                             double hi) {
  double v;
  if (lua_type(L, idx) != LUA_TNUMBER)
    vx_typeerror(L, "option '%s' must be a number, got %s", key, vx_typename(L, idx));
  v = (double)lua_tonumber(L, idx);
  if (v != v) vx_valueerror(L, "option '%s' is NaN", key);
  if (lo_open ? v <= lo : v < lo)
    vx_valueerror(L, "option '%s' must be %s %f, got %f", key, lo_open ? ">" : ">=", lo, v);
  if (v > hi) vx_valueerror(L, "option '%s' must be at most %f, got %f", key, hi, v);
  return v;
}

static void vx_checktype(lua_State *L, int idx, const char *key, int t1, int t2) {
  int t = lua_type(L, idx);
  if (t != t1 && t != t2) {
    if (t2 != t1)
      vx_typeerror(L, "option '%s' must be a %s or %s, got %s", key, lua_typename(L, t1),
                   lua_typename(L, t2), vx_typename(L, idx));
    vx_typeerror(L, "option '%s' must be a %s, got %s", key, lua_typename(L, t1),
                 vx_typename(L, idx));
  }
}

static void vx_checkheaderstring(lua_State *L, int idx, const char *key) {
  size_t n, i;
  const char *s;
  vx_checktype(L, idx, key, LUA_TSTRING, LUA_TSTRING);
  s = lua_tolstring(L, idx, &n);
  for (i = 0; i < n; i++)
    if ((unsigned char)s[i] < ' ' || (unsigned char)s[i] >= 0x7f)
      vx_valueerror(L, "option '%s' contains a control character or a non-ASCII byte", key);
}

/* Checks a policy sub-table (retry, polling) against its known keys. */
static void vx_checkpolicy(lua_State *L, int idx, const char *key, int retry) {
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    if (!k) vx_valueerror(L, "option '%s' has a key that is not a string", key);
    if (retry && strcmp(k, "max_retries") == 0) {
      if (!lua_isinteger(L, -1))
        vx_typeerror(L, "option '%s.max_retries' must be an integer", key);
      vx_checknumber(L, -1, "retry.max_retries", 0, 0, 1000);
    } else if (strcmp(k, "initial_delay") == 0 || strcmp(k, "max_delay") == 0) {
      vx_checknumber(L, -1, k, 0, !retry, VX_MAX_TIMEOUT);
    } else if (strcmp(k, "multiplier") == 0) {
      vx_checknumber(L, -1, k, 1, 0, 1000);
    } else {
      vx_valueerror(L, "unknown key '%s' in option '%s'", k, key);
    }
    lua_pop(L, 1);
  }
}

/* Raises TypeError/ValueError for any bad key of the options at idx. */
static void vx_checkoptions(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_isnoneornil(L, idx)) return;
  if (lua_type(L, idx) != LUA_TTABLE)
    vx_typeerror(L, "options must be a table, got %s", vx_typename(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    const char *k;
    if (lua_type(L, -2) != LUA_TSTRING) vx_valueerror(L, "option keys must be strings");
    k = lua_tostring(L, -2);
    if (strcmp(k, "timeout") == 0) {
      vx_checknumber(L, -1, k, 0, 1, VX_MAX_TIMEOUT);
    } else if (strcmp(k, "request_timeout") == 0 || strcmp(k, "connect_timeout") == 0) {
      vx_checknumber(L, -1, k, 0, 1, VX_MAX_TIMEOUT);
    } else if (strcmp(k, "endpoint") == 0) {
      vx_checktype(L, -1, k, LUA_TSTRING, LUA_TSTRING);
      lua_pushliteral(L, "us-central1");
      vx_pushbase(L, -2, "us-central1");
      lua_pop(L, 1);
    } else if (strcmp(k, "token") == 0) {
      vx_checktype(L, -1, k, LUA_TSTRING, LUA_TFUNCTION);
      if (lua_type(L, -1) == LUA_TSTRING && !vx_tokenok(lua_tostring(L, -1), lua_rawlen(L, -1)))
        vx_valueerror(L, "option 'token' is empty or contains a space, a control character or a "
                         "non-ASCII byte");
    } else if (strcmp(k, "user_project") == 0) {
      vx_checkheaderstring(L, -1, k);
    } else if (strcmp(k, "ca_file") == 0 || strcmp(k, "filter") == 0 ||
               strcmp(k, "page_token") == 0) {
      vx_checktype(L, -1, k, LUA_TSTRING, LUA_TSTRING);
    } else if (strcmp(k, "page_size") == 0) {
      if (!lua_isinteger(L, -1)) vx_typeerror(L, "option 'page_size' must be an integer");
      vx_checknumber(L, -1, k, 1, 0, 1e9);
    } else if (strcmp(k, "retry") == 0) {
      if (lua_type(L, -1) != LUA_TBOOLEAN || lua_toboolean(L, -1)) {
        vx_checktype(L, -1, k, LUA_TTABLE, LUA_TBOOLEAN);
        if (lua_type(L, -1) == LUA_TBOOLEAN) vx_valueerror(L, "option 'retry' must be a table or false");
        vx_checkpolicy(L, -1, k, 1);
      }
    } else if (strcmp(k, "polling") == 0) {
      vx_checktype(L, -1, k, LUA_TTABLE, LUA_TTABLE);
      vx_checkpolicy(L, -1, k, 0);
    } else if (strcmp(k, "sleep") == 0 || strcmp(k, "clock") == 0 || strcmp(k, "progress") == 0) {
      vx_checktype(L, -1, k, LUA_TFUNCTION, LUA_TFUNCTION);
    } else if (strcmp(k, "credentials") == 0) {
      vx_checktype(L, -1, k, LUA_TSTRING, LUA_TTABLE);
    } else if (strcmp(k, "scopes") == 0) {
      vx_checktype(L, -1, k, LUA_TTABLE, LUA_TSTRING);
    } else if (strcmp(k, "self_signed_jwt") == 0) {
      vx_checktype(L, -1, k, LUA_TBOOLEAN, LUA_TBOOLEAN);
    } else if (strcmp(k, "concurrency") == 0) {
      if (!lua_isinteger(L, -1)) vx_typeerror(L, "option 'concurrency' must be an integer");
      vx_checknumber(L, -1, k, 1, 0, 100000);
    } else if (strcmp(k, "thread_pool") == 0) {
      vx_checktype(L, -1, k, LUA_TSTRING, LUA_TSTRING);
    } else if (strcmp(k, "strategy") == 0) {
      const char *s;
      vx_checktype(L, -1, k, LUA_TSTRING, LUA_TSTRING);
      s = lua_tostring(L, -1);
      if (strcmp(s, "auto") && strcmp(s, "poll") && strcmp(s, "server"))
        vx_valueerror(L, "option 'strategy' must be \"auto\", \"poll\" or \"server\"");
    } else {
      vx_valueerror(L, "unknown option '%s'", k);
    }
    lua_pop(L, 1);
  }
}

/* core.check_options(opts) */
static int core_check_options(lua_State *L) {
  vx_checkoptions(L, 1);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Request building                                                     */
/* ------------------------------------------------------------------ */

enum { CALL_CANCEL, CALL_GET, CALL_DELETE, CALL_LIST, CALL_WAIT };
static const char *const vx_calls[] = {"cancel", "get", "delete", "list", "wait", NULL};

static void vx_addheader(lua_State *L, int t, int *n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_rawseti(L, t, ++*n);
}

/* Pushes the string field k of table idx (or nil); returns it or NULL. */
static const char *vx_optfield(lua_State *L, int idx, const char *k, size_t *len) {
  if (lua_isnoneornil(L, idx)) {
    lua_pushnil(L);
    return NULL;
  }
  vx_rawfield(L, idx, k);
  return lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, len) : NULL;
}

static int vx_checkcall(lua_State *L, int idx) {
  int i;
  const char *c = vx_checkstringarg(L, idx, "call", NULL);
  for (i = 0; vx_calls[i]; i++)
    if (strcmp(vx_calls[i], c) == 0) return i;
  return vx_valueerror(L, "call must be cancel, get, delete, list or wait");
}

/* The seconds of a :wait: nil (the server's default) or a finite number from 0 to a year. */
static void vx_checkwaitseconds(lua_State *L, int idx) {
  lua_Number s;
  if (lua_isnoneornil(L, idx)) return;
  if (lua_type(L, idx) != LUA_TNUMBER)
    vx_typeerror(L, "seconds must be a number, got %s", luaL_typename(L, idx));
  s = lua_tonumber(L, idx);
  if (!(s >= 0 && s <= VX_MAX_TIMEOUT))
    vx_valueerror(L, "seconds must be a finite number from 0 to %d", (int)VX_MAX_TIMEOUT);
}

/* Writes secs (> 0, at most VX_MAX_TIMEOUT) as a google.protobuf.Duration: "5s", "0.25s",
 * "0.000000001s" -- rounded up to whole nanoseconds, never to zero. */
static void vx_duration(char *out, size_t size, double secs) {
  long long ns = (long long)ceil(secs * 1e9);
  long long whole = ns / 1000000000LL, frac = ns % 1000000000LL;
  size_t n;
  if (frac == 0) {
    snprintf(out, size, "%llds", whole);
    return;
  }
  snprintf(out, size, "%lld.%09lld", whole, frac);
  n = strlen(out);
  while (n > 0 && out[n - 1] == '0') out[--n] = '\0';
  if (n + 1 < size) {
    out[n] = 's';
    out[n + 1] = '\0';
  }
}

/* core.build(call, name, region, opts [, wait_seconds]) -> request table
 * {call, method, url, headers = {...}, body}. Validates everything;
 * the token is added by handle:call from req.token. */
static int core_build(lua_State *L) {
  int call = vx_checkcall(L, 1);
  const char *name, *loc, *region, *s;
  size_t loclen, namelen, n;
  int t, hd, nh = 0;
  luaL_Buffer b;

  lua_settop(L, 5);
  if (call == CALL_WAIT) vx_checkwaitseconds(L, 5);
  vx_checkoptions(L, 4);
  name = vx_checkname(L, 2, call == CALL_LIST ? "parent" : "name", call == CALL_LIST ? 'p' : 'o',
                      &loc, &loclen);
  namelen = lua_rawlen(L, 2);
  vx_pushregion(L, 3, loc, loclen); /* 6: region */
  region = lua_tostring(L, 6);

  /* 7: base URL */
  if (vx_optfield(L, 4, "endpoint", NULL) == NULL) {
    lua_pop(L, 1);
    s = getenv("VERTEXOPS_ENDPOINT");
    if (s && *s) lua_pushstring(L, s);
    else if (strcmp(region, "global") == 0) lua_pushliteral(L, "https://aiplatform.googleapis.com");
    else lua_pushliteral(L, "https://{region}-aiplatform.googleapis.com");
  }
  lua_pushvalue(L, 6);
  vx_pushbase(L, -2, region);
  lua_remove(L, -2);

  lua_createtable(L, 0, 6); /* 8: request */
  t = lua_gettop(L);
  lua_pushstring(L, vx_calls[call]);
  lua_setfield(L, t, "call");
  lua_pushstring(L, call == CALL_CANCEL || call == CALL_WAIT ? "POST"
                    : call == CALL_DELETE                    ? "DELETE"
                                                             : "GET");
  lua_setfield(L, t, "method");
  lua_pushvalue(L, 6);
  lua_setfield(L, t, "region");

  {
    /* optional list parameters are fetched before the URL buffer starts */
    const char *filter = NULL, *ptoken = NULL;
    size_t flen = 0, plen = 0;
    long long psize = 0;
    if (call == CALL_LIST && !lua_isnoneornil(L, 4)) {
      filter = vx_optfield(L, 4, "filter", &flen);
      ptoken = vx_optfield(L, 4, "page_token", &plen);
      if (vx_rawfield(L, 4, "page_size") == LUA_TNUMBER) psize = (long long)lua_tonumber(L, -1);
    }
    luaL_buffinit(L, &b);
    lua_pushvalue(L, 7);
    luaL_addvalue(&b);
    luaL_addstring(&b, "/v1beta1/");
    luaL_addlstring(&b, name, namelen);
    if (call == CALL_CANCEL) {
      luaL_addstring(&b, ":cancel");
    } else if (call == CALL_WAIT) {
      luaL_addstring(&b, ":wait");
      if (!lua_isnoneornil(L, 5) && lua_tonumber(L, 5) > 0) {
        char dur[64];
        vx_duration(dur, sizeof dur, (double)lua_tonumber(L, 5));
        luaL_addstring(&b, "?timeout=");
        luaL_addstring(&b, dur);
      }
    } else if (call == CALL_LIST) {
      char sep = '?';
      luaL_addstring(&b, "/operations");
      if (filter) {
        luaL_addchar(&b, sep);
        sep = '&';
        luaL_addstring(&b, "filter=");
        vx_addescaped(&b, filter, flen);
      }
      if (psize > 0) {
        char num[40];
        snprintf(num, sizeof num, "%cpageSize=%lld", sep, psize);
        luaL_addstring(&b, num);
        sep = '&';
      }
      if (ptoken) {
        luaL_addchar(&b, sep);
        luaL_addstring(&b, "pageToken=");
        vx_addescaped(&b, ptoken, plen);
      }
    }
    luaL_pushresult(&b);
    lua_setfield(L, t, "url");
  }

  lua_createtable(L, 8, 0);
  hd = lua_gettop(L);
  vx_addheader(L, hd, &nh, "Accept: application/json");
  if (call == CALL_CANCEL || call == CALL_WAIT)
    vx_addheader(L, hd, &nh, "Content-Type: application/json");
  vx_addheader(L, hd, &nh, "User-Agent: vertexops/" VX_VERSION " libcurl/%s", vx_curl_version);
  vx_addheader(L, hd, &nh, "x-goog-api-client: gl-lua/%s vertexops/" VX_VERSION,
               LUA_VERSION_NUM >= 504 ? "5.4" : LUA_VERSION_NUM == 503 ? "5.3" : "5.1");
  luaL_buffinit(L, &b);
  luaL_addstring(&b, call == CALL_LIST ? "x-goog-request-params: parent=" : "x-goog-request-params: name=");
  vx_addescaped(&b, name, namelen);
  luaL_pushresult(&b);
  lua_rawseti(L, hd, ++nh);
  s = vx_optfield(L, 4, "user_project", NULL);
  lua_pop(L, 1);
  if (!s) s = getenv("GOOGLE_CLOUD_QUOTA_PROJECT");
  if (s && *s) {
    for (n = 0; s[n]; n++)
      if ((unsigned char)s[n] < ' ') vx_valueerror(L, "quota project contains a control character");
    vx_addheader(L, hd, &nh, "x-goog-user-project: %s", s);
  }
  lua_setfield(L, t, "headers");
  if (call == CALL_CANCEL || call == CALL_WAIT) {
    lua_pushliteral(L, "");
    lua_setfield(L, t, "body");
  }
  lua_settop(L, t);
  return 1;
}

/* ------------------------------------------------------------------ */
/* libcurl handles                                                      */
/* ------------------------------------------------------------------ */

typedef struct {
  char *data;
  size_t len, cap, limit;
  int overflow;
} vx_buf;

struct vx_multi;

/* A connection cache (with DNS and TLS sessions) shared by the handles of one client, so its
 * blocking calls and its non-blocking transfers use the same connections. Allocated apart from
 * its userdata: it lives until both the userdata and every handle using it are gone, in
 * whatever order the garbage collector finalizes them. */
typedef struct vx_sharestate {
  CURLSH *sh;
  int refs;   /* handles using it */
  int orphan; /* its userdata was closed or collected */
} vx_sharestate;

typedef struct {
  vx_sharestate *st; /* NULL when closed */
} vx_share;


static void vx_share_release(vx_sharestate *st) {
  if (st && st->orphan && st->refs == 0) {
    curl_share_cleanup(st->sh);
    free(st);
  }
}

typedef struct vx_handle {
  CURL *easy;                /* NULL when closed */
  struct curl_slist *hdrs;   /* headers of the request in flight */
  vx_buf body, head;
  char *default_cainfo, *default_capath;
  long requests, connects;
  /* non-blocking transfers: the multi handle it runs in, its place in that multi's list */
  struct vx_multi *multi;
  struct vx_handle *prev, *next;
  int state;                 /* VX_IDLE, VX_RUNNING, VX_DONE */
  int want_headers;          /* return the headers of a successful answer too */
  vx_sharestate *share;      /* the connection cache it uses, if shared */
  CURLcode rc;               /* result of a finished non-blocking transfer */
  char errbuf[CURL_ERROR_SIZE];
} vx_handle;

enum { VX_IDLE, VX_RUNNING, VX_DONE };

typedef struct vx_multi {
  CURLM *multi;              /* NULL when closed */
  vx_handle *head;           /* transfers added and not yet removed */
} vx_multi;


/* Takes h out of its multi handle (if it is in one). Safe from __gc of either side. */
static void vx_detach(vx_handle *h) {
  vx_multi *m = h->multi;
  if (!m) return;
  /* from __gc too, where nothing can be raised: a failure here leaves nothing to undo */
  if (m->multi && h->easy) (void)curl_multi_remove_handle(m->multi, h->easy);
  if (h->prev) h->prev->next = h->next;
  else m->head = h->next;
  if (h->next) h->next->prev = h->prev;
  h->prev = h->next = NULL;
  h->multi = NULL;
}


static size_t vx_bufappend(vx_buf *b, const char *p, size_t n) {
  if (b->len + n > b->limit) {
    b->overflow = 1;
    return 0; /* makes libcurl stop with CURLE_WRITE_ERROR */
  }
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    char *d;
    while (cap < b->len + n + 1) cap *= 2;
    d = realloc(b->data, cap);
    if (!d) {
      b->overflow = 2;
      return 0;
    }
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return n;
}

static void vx_bufreset(vx_buf *b) {
  b->len = 0;
  b->overflow = 0;
  if (b->cap > ((size_t)1 << 20)) { /* give a large buffer back after use */
    free(b->data);
    b->data = NULL;
    b->cap = 0;
  }
}

/* Drops the request's header list (the Authorization header among them), wiping it first: a
 * token lives in the handle only for its exchange. */
static void vx_forget_headers(vx_handle *h) {
  struct curl_slist *l;
  if (!h->hdrs) return;
  if (h->easy) (void)curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
  for (l = h->hdrs; l; l = l->next) OPENSSL_cleanse(l->data, strlen(l->data));
  curl_slist_free_all(h->hdrs);
  h->hdrs = NULL;
}

static size_t vx_onbody(char *p, size_t size, size_t n, void *ud) {
  vx_buf *b = ud;
  return vx_bufappend(b, p, size * n) == size * n ? size * n : 0;
}

static size_t vx_onheader(char *p, size_t size, size_t n, void *ud) {
  vx_buf *b = ud;
  size_t len = size * n;
  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) b->len = 0; /* a new response starts */
  return vx_bufappend(b, p, len) == len ? len : 0;
}

static vx_handle *vx_checkhandle(lua_State *L, int idx) {
  vx_handle *h = vx_checkudarg(L, idx, VX_HANDLE_MT, "vertexops handle");
  if (!h->easy) vx_valueerror(L, "attempt to use a closed vertexops handle");
  return h;
}

static char *vx_strdup(const char *s) {
  char *d;
  size_t n;
  if (!s) return NULL;
  n = strlen(s) + 1;
  d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

/* __gc and __close and close(): idempotent */
static int handle_close(lua_State *L) {
  vx_handle *h = vx_checkudarg(L, 1, VX_HANDLE_MT, "vertexops handle");
  vx_sharestate *st = h->share;
  vx_detach(h);
  if (h->easy) curl_easy_cleanup(h->easy);
  h->easy = NULL;
  h->share = NULL;
  if (st) {
    st->refs--;
    vx_share_release(st);
  }
  vx_forget_headers(h);
  free(h->body.data);
  free(h->head.data);
  memset(&h->body, 0, sizeof h->body);
  memset(&h->head, 0, sizeof h->head);
  free(h->default_cainfo);
  free(h->default_capath);
  h->default_cainfo = h->default_capath = NULL;
  return 0;
}

/* core.handle() -> a new open handle */
static int core_handle(lua_State *L) {
  vx_handle *h;
  CURL *e;
  char *info = NULL;
  h = lua_newuserdata(L, sizeof *h);
  memset(h, 0, sizeof *h); /* born closed */
  luaL_getmetatable(L, VX_HANDLE_MT);
  lua_setmetatable(L, -2);
  if (!vx_curl_ready()) return vx_curlerror(L, "curl_global_init failed");
  e = curl_easy_init();
  if (!e) return vx_curlerror(L, "curl_easy_init failed");
  h->easy = e;
  h->body.limit = VX_MAX_BODY;
  h->head.limit = VX_MAX_HEAD;
  /* the system store libcurl was built with (restored when a request names no ca_file) */
  if (curl_easy_getinfo(e, CURLINFO_CAINFO, &info) != CURLE_OK) info = NULL;
  h->default_cainfo = vx_strdup(info);
  info = NULL;
  if (curl_easy_getinfo(e, CURLINFO_CAPATH, &info) != CURLE_OK) info = NULL;
  h->default_capath = vx_strdup(info);
  VX_SETOPT(L, e, CURLOPT_NOSIGNAL, 1L);
  VX_SETOPT(L, e, CURLOPT_FOLLOWLOCATION, 0L);
  VX_SETOPT(L, e, CURLOPT_PROTOCOLS_STR, "http,https");
  VX_SETOPT(L, e, CURLOPT_SSL_VERIFYPEER, 1L);
  VX_SETOPT(L, e, CURLOPT_SSL_VERIFYHOST, 2L);
  VX_SETOPT(L, e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
  VX_SETOPT(L, e, CURLOPT_TCP_KEEPALIVE, 1L);
  VX_SETOPT(L, e, CURLOPT_ERRORBUFFER, h->errbuf);
  VX_SETOPT(L, e, CURLOPT_WRITEFUNCTION, vx_onbody);
  VX_SETOPT(L, e, CURLOPT_WRITEDATA, &h->body);
  VX_SETOPT(L, e, CURLOPT_HEADERFUNCTION, vx_onheader);
  VX_SETOPT(L, e, CURLOPT_HEADERDATA, &h->head);
  return 1;
}

/* ------------------------------------------------------------------ */
/* Answer classification: status + header block + body -> result or tagged error.            */
/* Pure (no libcurl): handle:call, handle:finish and core.classify all end here.             */
/* ------------------------------------------------------------------ */

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

/* Decodes s as JSON with the module's cjson.safe instance. Pushes the decoded table and returns
 * 1, or pushes a reason (a string) and returns 0: not JSON, not an object or array, nested more
 * than VX_MAX_DEPTH levels. */
static int vx_pushjson(lua_State *L, const char *s, size_t n) {
  lua_getfield(L, LUA_REGISTRYINDEX, VX_JSON_KEY);
  lua_getfield(L, -1, "decode");
  lua_remove(L, -2);
  lua_pushlstring(L, s, n);
  lua_call(L, 1, 2);
  if (lua_type(L, -2) != LUA_TTABLE) {
    if (lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 1);
      lua_pushliteral(L, "not a JSON object");
    }
    lua_remove(L, -2);
    return 0;
  }
  lua_pop(L, 1);
#if LUA_VERSION_NUM >= 503
  if (!vx_fixints(L, lua_gettop(L))) {
    lua_pop(L, 1);
    lua_pushliteral(L, "JSON nested too deeply");
    return 0;
  }
#endif
  return 1;
}

static const char *const TAGS_FAILED[] = {"ConnectionFailedError", "ConnectionError", NULL};
static const char *const TAGS_FAILED_TIMEOUT[] = {"ConnectionFailedError", "ConnectionError",
                                                  "TimeoutError", NULL};
static const char *const TAGS_CONN[] = {"ConnectionError", NULL};
static const char *const TAGS_TIMEOUT[] = {"TimeoutError", NULL};
static const char *const TAGS_RESPONSE[] = {"ResponseTypeError", NULL};
static const char *const TAGS_HTTP[] = {"HttpError", NULL};

#define VX_MAX_MESSAGE 1024 /* bytes of a server's error message quoted in ours */

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
  vx_pusherror(L, TAGS_HTTP, lua_tostring(L, -1));
  lua_remove(L, -2);
  lua_pushinteger(L, (lua_Integer)status);
  lua_setfield(L, -2, "code");
  lua_pushvalue(L, err + 1);
  lua_setfield(L, -2, "status");
  lua_pushvalue(L, err);
  lua_setfield(L, -2, "body");
  lua_pushvalue(L, hidx);
  lua_setfield(L, -2, "headers");
  lua_replace(L, err);
  lua_settop(L, err);
}

/* Classifies an answer: pushes true, decoded[, headers] (headers only with want_headers) or
 * false, err and returns how many values it pushed. Any status outside 2xx is an HttpError; a
 * 2xx whose body is not a JSON object (empty counts as {}) is a ResponseTypeError. */
static int vx_classify(lua_State *L, long status, const char *head, size_t hlen, const char *body,
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
    vx_pusherror(L, TAGS_RESPONSE, lua_tostring(L, -2));
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

/* libcurl result codes and the tags they carry; anything not listed is a ConnectionError. A
 * timeout carries ConnectionFailedError too when nothing was sent (retryable even for POST). */
static const struct {
  CURLcode rc;
  const char *const *tags;
} vx_curl_map[] = {
    {CURLE_COULDNT_RESOLVE_HOST, TAGS_FAILED},   {CURLE_COULDNT_RESOLVE_PROXY, TAGS_FAILED},
    {CURLE_COULDNT_CONNECT, TAGS_FAILED},        {CURLE_SSL_CONNECT_ERROR, TAGS_FAILED},
    {CURLE_PEER_FAILED_VERIFICATION, TAGS_FAILED}, {CURLE_SSL_CACERT_BADFILE, TAGS_FAILED},
    {CURLE_SSL_CERTPROBLEM, TAGS_FAILED},        {CURLE_SSL_CIPHER, TAGS_FAILED},
    {CURLE_SSL_ISSUER_ERROR, TAGS_FAILED},       {CURLE_SSL_PINNEDPUBKEYNOTMATCH, TAGS_FAILED},
    {CURLE_SSL_INVALIDCERTSTATUS, TAGS_FAILED},  {CURLE_SSL_CRL_BADFILE, TAGS_FAILED},
    {CURLE_UNSUPPORTED_PROTOCOL, TAGS_FAILED},
};

static const char *const *vx_curl_tags(CURLcode rc, long sent) {
  size_t i;
  if (rc == CURLE_OPERATION_TIMEDOUT) return sent == 0 ? TAGS_FAILED_TIMEOUT : TAGS_TIMEOUT;
  for (i = 0; i < sizeof vx_curl_map / sizeof vx_curl_map[0]; i++)
    if (vx_curl_map[i].rc == rc) return vx_curl_map[i].tags;
  return TAGS_CONN;
}

/* An answer over one of libcurl's own size limits (a header line over CURL_MAX_HTTP_HEADER,
 * 100 KB): CURLE_TOO_LARGE from 8.6 on; before, CURLE_OUT_OF_MEMORY, with "Rejected N bytes
 * header" or nothing in the error buffer. Once the status line has arrived, out of memory while
 * receiving headers is taken for that limit (a real shortage would fail our own buffers first). */
static int vx_curl_toolarge(CURLcode rc, const vx_handle *h) {
#if LIBCURL_VERSION_NUM >= 0x080600
  if (rc == CURLE_TOO_LARGE) return 1;
#endif
  return rc == CURLE_OUT_OF_MEMORY && (strstr(h->errbuf, "header") != NULL || h->head.len > 0);
}

/* Pushes the transport error for a failed exchange (status: what the server had answered, if
 * anything; an answer refused for its size keeps it as code). */
static void vx_pushcurlerror(lua_State *L, vx_handle *h, CURLcode rc, long status) {
  long sent = 0;
  char msg[CURL_ERROR_SIZE + 64];
  const char *detail = h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc);
  if (curl_easy_getinfo(h->easy, CURLINFO_REQUEST_SIZE, &sent) != CURLE_OK) sent = 1;
  if (rc == CURLE_WRITE_ERROR && (h->body.overflow == 1 || h->head.overflow == 1)) {
    if (h->body.overflow == 1)
      snprintf(msg, sizeof msg, "response body is larger than %d MiB", (int)(VX_MAX_BODY >> 20));
    else
      snprintf(msg, sizeof msg, "response headers are larger than %d KiB", (int)(VX_MAX_HEAD >> 10));
  } else if (vx_curl_toolarge(rc, h)) {
    snprintf(msg, sizeof msg, "a response header line is larger than libcurl's limit (100 KB)");
  } else {
    snprintf(msg, sizeof msg, "%s (curl error %d)", detail, (int)rc);
    vx_pusherror(L, vx_curl_tags(rc, sent), msg);
    return;
  }
  if (status) snprintf(msg + strlen(msg), sizeof msg - strlen(msg), " (HTTP %ld)", status);
  vx_pusherror(L, TAGS_RESPONSE, msg);
  if (status) {
    lua_pushinteger(L, (lua_Integer)status);
    lua_setfield(L, -2, "code");
  }
}

static double vx_fieldnumber(lua_State *L, int t, const char *k, double dflt) {
  double v = dflt;
  if (vx_rawfield(L, t, k) == LUA_TNUMBER) v = (double)lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}

static long vx_ms(double secs) {
  double ms = ceil(secs * 1000.0);
  if (!(ms >= 1)) ms = 1; /* NaN too */
  if (ms > 2147483647.0) ms = 2147483647.0;
  return (long)ms;
}

/* Sets the easy handle up for the request table at index 2 (method, url, headers, body, timeout,
 * connect_timeout, ca_file, want_headers) and the token at index tokidx (a string; else
 * req.token). Raises for bad arguments, fails closed when libcurl refuses an option; allocates
 * only into h. The token is copied into the handle's header list only, which goes with the
 * exchange (vx_forget_headers). */
static void vx_prepare(lua_State *L, vx_handle *h, int tokidx) {
  CURL *e = h->easy;
  const char *method, *url, *body = NULL, *token = NULL, *ca = NULL;
  size_t bodylen = 0, i, n, tlen = 0;
  struct curl_slist *l;

  int top = lua_gettop(L);
  vx_checktablearg(L, 2, "request");
  if (vx_rawfield(L, 2, "method") != LUA_TSTRING) vx_typeerror(L, "request method must be a string");
  method = lua_tostring(L, -1);
  if (vx_rawfield(L, 2, "url") != LUA_TSTRING) vx_typeerror(L, "request url must be a string");
  url = lua_tostring(L, -1);
  if (vx_rawfield(L, 2, "body") == LUA_TSTRING) body = lua_tolstring(L, -1, &bodylen);
  if (lua_type(L, tokidx) == LUA_TSTRING) token = lua_tolstring(L, tokidx, &tlen);
  else if (!lua_isnoneornil(L, tokidx)) vx_typeerror(L, "token must be a string");
  else if (vx_rawfield(L, 2, "token") == LUA_TSTRING) token = lua_tolstring(L, -1, &tlen);
  if (vx_rawfield(L, 2, "ca_file") == LUA_TSTRING) ca = lua_tostring(L, -1);
  vx_rawfield(L, 2, "want_headers");
  h->want_headers = lua_toboolean(L, -1);
  if (token && !vx_tokenok(token, tlen))
    vx_raise(L, "AuthError", "access token is empty or contains a character not allowed in a header");
  if (strcmp(method, "GET") && strcmp(method, "DELETE") && strcmp(method, "POST"))
    vx_valueerror(L, "request method must be GET, POST or DELETE");

  vx_forget_headers(h);
  VX_SETOPT(L, e, CURLOPT_URL, url); /* libcurl copies strings it is given ... */
  if (method[0] != 'P') {
    VX_SETOPT(L, e, CURLOPT_HTTPGET, 1L);
    VX_SETOPT(L, e, CURLOPT_CUSTOMREQUEST, method[0] == 'D' ? "DELETE" : (const char *)NULL);
  } else {
    VX_SETOPT(L, e, CURLOPT_CUSTOMREQUEST, (const char *)NULL);
    VX_SETOPT(L, e, CURLOPT_POST, 1L);
    VX_SETOPT(L, e, CURLOPT_POSTFIELDSIZE, (long)bodylen);
    /* ... but not POSTFIELDS: copy the body, which may outlive this call in a multi transfer */
    VX_SETOPT(L, e, CURLOPT_COPYPOSTFIELDS, body ? body : "");
  }
  VX_SETOPT(L, e, CURLOPT_TIMEOUT_MS, vx_ms(vx_fieldnumber(L, 2, "timeout", 60)));
  VX_SETOPT(L, e, CURLOPT_CONNECTTIMEOUT_MS, vx_ms(vx_fieldnumber(L, 2, "connect_timeout", 10)));
  VX_SETOPT(L, e, CURLOPT_CAINFO, ca ? ca : h->default_cainfo);
  VX_SETOPT(L, e, CURLOPT_CAPATH, ca ? (const char *)NULL : h->default_capath);

  /* headers last: built into h->hdrs, which the handle owns (and wipes) if we raise */
  if (vx_rawfield(L, 2, "headers") == LUA_TTABLE) {
    n = lua_rawlen(L, -1);
    for (i = 1; i <= n; i++) {
      const char *s;
      size_t sl, j;
      if (VX_RAWGETI(L, -1, (int)i) != LUA_TSTRING) vx_typeerror(L, "request headers must be strings");
      s = lua_tolstring(L, -1, &sl);
      for (j = 0; j < sl; j++)
        if (s[j] == '\r' || s[j] == '\n' || s[j] == '\0')
          vx_valueerror(L, "request header contains a line break");
      l = curl_slist_append(h->hdrs, s);
      if (!l) vx_curlerror(L, "not enough memory for the request headers");
      h->hdrs = l;
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  if (token) {
    /* built in C memory (no Lua string holds the header), wiped after the copy */
    static const char prefix[] = "Authorization: Bearer ";
    size_t hlen = sizeof prefix - 1 + tlen + 1;
    char *hdr = malloc(hlen);
    if (!hdr) vx_curlerror(L, "not enough memory for the request headers");
    memcpy(hdr, prefix, sizeof prefix - 1);
    memcpy(hdr + sizeof prefix - 1, token, tlen);
    hdr[hlen - 1] = '\0';
    l = curl_slist_append(h->hdrs, hdr);
    OPENSSL_cleanse(hdr, hlen);
    free(hdr);
    if (!l) vx_curlerror(L, "not enough memory for the request headers");
    h->hdrs = l;
  }
  if (curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->hdrs) != CURLE_OK) {
    vx_forget_headers(h);
    vx_curlerror(L, "libcurl refused option CURLOPT_HTTPHEADER");
  }

  vx_bufreset(&h->body);
  vx_bufreset(&h->head);
  h->errbuf[0] = '\0';
  lua_settop(L, top);
}

/* Turns a finished transfer (rc, status, buffers) into true, decoded[, headers] | false, err.
 * The request's headers (the token among them) and large buffers go with the exchange. */
static int vx_result(lua_State *L, vx_handle *h, CURLcode rc) {
  long status = 0, conns = 0;
  int n;
  h->requests++;
  if (curl_easy_getinfo(h->easy, CURLINFO_NUM_CONNECTS, &conns) == CURLE_OK) h->connects += conns;
  if (curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK) status = 0;
  vx_forget_headers(h);
  if (h->body.overflow == 2 || h->head.overflow == 2) {
    vx_bufreset(&h->body);
    vx_bufreset(&h->head);
    lua_pushboolean(L, 0);
    vx_pusherror(L, TAGS_CONN, "out of memory while receiving the response");
    return 2;
  }
  if (rc != CURLE_OK) {
    lua_pushboolean(L, 0);
    vx_pushcurlerror(L, h, rc, status);
    n = 2;
  } else {
    n = vx_classify(L, status, h->head.data, h->head.len, h->body.data, h->body.len,
                    h->want_headers);
  }
  vx_bufreset(&h->body);
  vx_bufreset(&h->head);
  return n;
}

/* handle:call(req [, token]) -> true, decoded[, headers] | false, err
 * (the headers of a successful answer only when req.want_headers is true)
 * One blocking HTTP exchange. Transport, HTTP and shape failures are returned as error objects;
 * bad arguments raise. */
static int handle_call(lua_State *L) {
  vx_handle *h = vx_checkhandle(L, 1);
  CURLcode rc;
  if (h->state == VX_RUNNING) return vx_valueerror(L, "vertexops handle is busy with a transfer");
  lua_settop(L, 3);
  vx_prepare(L, h, 3);
  rc = curl_easy_perform(h->easy); /* the callbacks only fill h->body and h->head */
  return vx_result(L, h, rc);
}

/* --- shared connection caches --- */

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

/* handle:share(share): the handle uses share's connection cache from now on */
static int handle_share(lua_State *L) {
  vx_handle *h = vx_checkhandle(L, 1);
  vx_share *u = vx_checkudarg(L, 2, VX_SHARE_MT, "vertexops share");
  vx_sharestate *old = h->share;
  if (!u->st) return vx_valueerror(L, "attempt to use a closed vertexops share");
  if (old == u->st) return 0;
  if (h->state == VX_RUNNING) return vx_valueerror(L, "vertexops handle is busy with a transfer");
  VX_SETOPT(L, h->easy, CURLOPT_SHARE, u->st->sh);
  u->st->refs++;
  h->share = u->st;
  if (old) {
    old->refs--;
    vx_share_release(old);
  }
  return 0;
}

/* --- non-blocking transfers (libcurl multi) --- */

static vx_multi *vx_checkmulti(lua_State *L, int idx) {
  vx_multi *m = vx_checkudarg(L, idx, VX_MULTI_MT, "vertexops multi handle");
  if (!m->multi) vx_valueerror(L, "attempt to use a closed vertexops multi handle");
  return m;
}

/* core.multi() -> a new multi handle (HTTP/2 multiplexing on) */
static int core_multi(lua_State *L) {
  vx_multi *m = lua_newuserdata(L, sizeof *m);
  memset(m, 0, sizeof *m); /* born closed */
  luaL_getmetatable(L, VX_MULTI_MT);
  lua_setmetatable(L, -2);
  if (!vx_curl_ready()) return vx_curlerror(L, "curl_global_init failed");
  m->multi = curl_multi_init();
  if (!m->multi) return vx_curlerror(L, "curl_multi_init failed");
  /* libcurl caps streams per connection at 100 and opens more connections past that; let the
   * server's own limit (SETTINGS_MAX_CONCURRENT_STREAMS) decide instead */
  if (curl_multi_setopt(m->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX) != CURLM_OK ||
      curl_multi_setopt(m->multi, CURLMOPT_MAX_CONCURRENT_STREAMS, 1000L) != CURLM_OK)
    return vx_curlerror(L, "libcurl refused the multiplexing options");
  return 1;
}

/* __gc, __close and close(): idempotent; takes every running transfer out first */
static int multi_close(lua_State *L) {
  vx_multi *m = vx_checkudarg(L, 1, VX_MULTI_MT, "vertexops multi handle");
  while (m->head) vx_detach(m->head);
  if (m->multi) curl_multi_cleanup(m->multi);
  m->multi = NULL;
  return 0;
}

/* handle:start(req, multi [, token]): starts the request as a non-blocking transfer in multi. */
static int handle_start(lua_State *L) {
  vx_handle *h = vx_checkhandle(L, 1);
  vx_multi *m;
  lua_settop(L, 4);
  vx_checkmulti(L, 3);
  if (h->state == VX_RUNNING) return vx_valueerror(L, "vertexops handle is busy with a transfer");
  vx_prepare(L, h, 4); /* keeps the multi at index 3 alive on the stack */
  m = vx_checkmulti(L, 3);
  VX_SETOPT(L, h->easy, CURLOPT_PRIVATE, (void *)h);
  VX_SETOPT(L, h->easy, CURLOPT_PIPEWAIT, 1L); /* wait to multiplex rather than open more */
  if (curl_multi_add_handle(m->multi, h->easy) != CURLM_OK) {
    vx_forget_headers(h);
    return vx_curlerror(L, "curl_multi_add_handle failed");
  }
  h->multi = m;
  h->prev = NULL;
  h->next = m->head;
  if (m->head) m->head->prev = h;
  m->head = h;
  h->state = VX_RUNNING;
  return 0;
}

/* multi:perform() -> transfers still running. Marks finished handles done (handle:done()). */
static int multi_perform(lua_State *L) {
  vx_multi *m = vx_checkmulti(L, 1);
  int running = 0, left = 0;
  CURLMsg *msg;
  CURLMcode mc = curl_multi_perform(m->multi, &running);
  if (mc != CURLM_OK) return vx_curlerror(L, "curl_multi_perform: %s", curl_multi_strerror(mc));
  while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
    vx_handle *h = NULL;
    if (msg->msg != CURLMSG_DONE) continue;
    if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&h) != CURLE_OK || !h) continue;
    h->rc = msg->data.result;
    h->state = VX_DONE;
    vx_detach(h);
  }
  lua_pushinteger(L, running);
  return 1;
}

/* multi:wait(seconds): blocks until a transfer has something to do, or seconds have passed. */
static int multi_wait(lua_State *L) {
  vx_multi *m = vx_checkmulti(L, 1);
  double secs = lua_isnoneornil(L, 2) ? 1 : vx_checknumberarg(L, 2, "seconds");
  int ms = !(secs > 0) ? 0 : secs > 60 ? 60000 : (int)(secs * 1000 + 0.5); /* NaN: 0 */
  CURLMcode mc = curl_multi_poll(m->multi, NULL, 0, ms, NULL);
  if (mc != CURLM_OK) return vx_curlerror(L, "curl_multi_poll: %s", curl_multi_strerror(mc));
  return 0;
}

/* handle:done() -> true once a non-blocking transfer has finished */
static int handle_done(lua_State *L) {
  vx_handle *h = vx_checkudarg(L, 1, VX_HANDLE_MT, "vertexops handle");
  lua_pushboolean(L, h->state == VX_DONE);
  return 1;
}

/* handle:finish() -> the results of a finished non-blocking transfer, as handle:call gives them */
static int handle_finish(lua_State *L) {
  vx_handle *h = vx_checkhandle(L, 1);
  if (h->state != VX_DONE) return vx_valueerror(L, "vertexops handle: no finished transfer");
  h->state = VX_IDLE;
  lua_settop(L, 1);
  return vx_result(L, h, h->rc);
}

/* handle:stats() -> {requests = n, connects = n, buffered = bytes, held_headers = n}
 * buffered: answer buffers kept for the next exchange; held_headers: request header lines still
 * held (0 between exchanges: the token goes with its exchange). */
static int handle_stats(lua_State *L) {
  vx_handle *h = vx_checkudarg(L, 1, VX_HANDLE_MT, "vertexops handle");
  struct curl_slist *l;
  int held = 0;
  for (l = h->hdrs; l; l = l->next) held++;
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, (lua_Integer)h->requests);
  lua_setfield(L, -2, "requests");
  lua_pushinteger(L, (lua_Integer)h->connects);
  lua_setfield(L, -2, "connects");
  lua_pushinteger(L, (lua_Integer)(h->body.cap + h->head.cap));
  lua_setfield(L, -2, "buffered");
  lua_pushinteger(L, held);
  lua_setfield(L, -2, "held_headers");
  return 1;
}

static int handle_isclosed(lua_State *L) {
  vx_handle *h = vx_checkudarg(L, 1, VX_HANDLE_MT, "vertexops handle");
  lua_pushboolean(L, h->easy == NULL);
  return 1;
}

static int handle_tostring(lua_State *L) {
  vx_handle *h = vx_checkudarg(L, 1, VX_HANDLE_MT, "vertexops handle");
  if (h->easy) lua_pushfstring(L, "vertexops.handle (%p)", (void *)h);
  else lua_pushliteral(L, "vertexops.handle (closed)");
  return 1;
}

/* ------------------------------------------------------------------ */
/* Clock and sleep                                                      */
/* ------------------------------------------------------------------ */

static int core_clock(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  return 1;
}

static int core_sleep(lua_State *L) {
  double s = vx_checknumberarg(L, 1, "seconds");
  struct timespec req, rem;
  if (!(s > 0)) return 0;
  if (s > VX_MAX_TIMEOUT) s = VX_MAX_TIMEOUT;
  req.tv_sec = (time_t)s;
  req.tv_nsec = (long)((s - (double)req.tv_sec) * 1e9);
  while (nanosleep(&req, &rem) == -1 && errno == EINTR) req = rem;
  return 0;
}

/* core.isatty(fd) -> boolean (the command line shows progress only on a terminal) */
static int core_isatty(lua_State *L) {
  lua_Number fd = vx_checknumberarg(L, 1, "fd");
  lua_pushboolean(L, fd >= 0 && fd <= 1024 && isatty((int)fd) == 1);
  return 1;
}

/* ------------------------------------------------------------------ */
/* RS256 and base64url (service-account JWTs)                           */
/* ------------------------------------------------------------------ */

/* core.b64url(s) -> s in base64url without padding (RFC 7515) */
static int core_b64url(lua_State *L) {
  size_t n, i, out;
  const unsigned char *s = (const unsigned char *)vx_checkstringarg(L, 1, "data", &n);
  char *p;
  if (n > ((size_t)64 << 20)) return vx_valueerror(L, "b64url: input too large");
  p = lua_newuserdata(L, 4 * ((n + 2) / 3) + 1); /* scratch space the GC owns */
  out = (size_t)EVP_EncodeBlock((unsigned char *)p, s, (int)n);
  while (out > 0 && p[out - 1] == '=') out--;
  for (i = 0; i < out; i++) {
    if (p[i] == '+') p[i] = '-';
    else if (p[i] == '/') p[i] = '_';
  }
  lua_pushlstring(L, p, out);
  return 1;
}

/* The pass-phrase callback: there is none to give (an encrypted key fails at once). */
static int vx_nopassphrase(char *buf, int size, int rwflag, void *u) {
  (void)buf;
  (void)size;
  (void)rwflag;
  *(int *)u = 1;
  return -1;
}

/* core.rs256(pem, data) -> signature | nil, reason
 * Signs data with SHA-256 and the RSA private key in pem (PKCS#8 or PKCS#1). The reason never
 * contains key material. */
static int core_rs256(lua_State *L) {
  size_t pemlen, datalen, siglen = 0;
  const char *pem = vx_checkstringarg(L, 1, "pem", &pemlen);
  const char *data = vx_checkstringarg(L, 2, "data", &datalen);
  const char *why = NULL;
  BIO *bio = NULL;
  EVP_PKEY *key = NULL;
  EVP_MD_CTX *md = NULL;
  unsigned char *sig = NULL;
  unsigned char out[2048]; /* RSA keys up to 16384 bits */
  int encrypted = 0;
  if (pemlen > INT32_MAX) {
    lua_pushnil(L);
    lua_pushliteral(L, "private key too large");
    return 2;
  }
  bio = BIO_new_mem_buf(pem, (int)pemlen);
  /* never OpenSSL's default pass-phrase callback, which prompts on the terminal */
  if (bio) key = PEM_read_bio_PrivateKey(bio, NULL, vx_nopassphrase, &encrypted);
  if (!key && encrypted)
    why = "private_key is encrypted; vertexops never asks for a pass phrase (use an unencrypted key)";
  else if (!key) why = "private_key is not a PEM private key";
  else if (EVP_PKEY_base_id(key) != EVP_PKEY_RSA) why = "private_key is not an RSA key";
  if (!why) {
    md = EVP_MD_CTX_new();
    if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)data, datalen) != 1 ||
        (sig = OPENSSL_malloc(siglen)) == NULL ||
        EVP_DigestSign(md, sig, &siglen, (const unsigned char *)data, datalen) != 1)
      why = "signing with the private key failed";
  }
  ERR_clear_error(); /* OpenSSL's queue may name the PEM parser's state; never surface it */
  if (!why && siglen > sizeof out) why = "signature too large";
  if (!why) memcpy(out, sig, siglen);
  /* free everything before any Lua call that could raise */
  OPENSSL_free(sig);
  EVP_MD_CTX_free(md);
  EVP_PKEY_free(key);
  BIO_free(bio);
  if (why) {
    lua_pushnil(L);
    lua_pushstring(L, why);
    return 2;
  }
  lua_pushlstring(L, (const char *)out, siglen);
  return 1;
}

/* ------------------------------------------------------------------ */
/* Stand-alone calls: core.cancel / get / delete / list                 */
/* ------------------------------------------------------------------ */

/* Resolves the access token from opts.token (string or function) or
 * GOOGLE_OAUTH_ACCESS_TOKEN and pushes it. */
static void vx_pushtoken(lua_State *L, int opts) {
  const char *env;
  if (!lua_isnoneornil(L, opts) && vx_rawfield(L, opts, "token") != LUA_TNIL) {
    if (lua_type(L, -1) == LUA_TFUNCTION) {
      lua_call(L, 0, 1);
      if (lua_type(L, -1) != LUA_TSTRING || lua_rawlen(L, -1) == 0)
        vx_raise(L, "AuthError", "the token function returned no token");
    }
  } else {
    if (!lua_isnoneornil(L, opts)) lua_pop(L, 1);
    env = getenv("GOOGLE_OAUTH_ACCESS_TOKEN");
    if (!env || !*env)
      vx_raise(L, "AuthError", "no access token: pass opts.token or set GOOGLE_OAUTH_ACCESS_TOKEN");
    lua_pushstring(L, env);
  }
}

static int vx_standalone(lua_State *L, const char *call) {
  int req, h, tok;
  lua_settop(L, 3);
  lua_pushcfunction(L, core_build);
  lua_pushstring(L, call);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_call(L, 4, 1);
  req = lua_gettop(L);
  vx_pushtoken(L, 3);
  tok = lua_gettop(L);
  if (!lua_isnil(L, 3)) {
    static const char *const keys[] = {"request_timeout", "connect_timeout", "ca_file", NULL};
    static const char *const dest[] = {"timeout", "connect_timeout", "ca_file", NULL};
    int i;
    for (i = 0; keys[i]; i++) {
      vx_rawfield(L, 3, keys[i]);
      lua_setfield(L, req, dest[i]);
    }
    /* the whole call is one request here: timeout bounds it too */
    if (vx_rawfield(L, 3, "timeout") == LUA_TNUMBER &&
        lua_tonumber(L, -1) < vx_fieldnumber(L, req, "timeout", 60))
      lua_setfield(L, req, "timeout");
    else
      lua_pop(L, 1);
  }
  lua_pushcfunction(L, core_handle);
  lua_call(L, 0, 1);
  h = lua_gettop(L);
  lua_pushcfunction(L, handle_call);
  lua_pushvalue(L, h);
  lua_pushvalue(L, req);
  lua_pushvalue(L, tok);
  lua_call(L, 3, 2);
  lua_pushcfunction(L, handle_close);
  lua_pushvalue(L, h);
  lua_call(L, 1, 0);
  if (!lua_toboolean(L, -2)) return lua_error(L);
  if (call[0] == 'c' || call[0] == 'd') lua_pushboolean(L, 1);
  return 1;
}

static int core_cancel(lua_State *L) { return vx_standalone(L, "cancel"); }
static int core_get(lua_State *L) { return vx_standalone(L, "get"); }
static int core_delete(lua_State *L) { return vx_standalone(L, "delete"); }
static int core_list(lua_State *L) { return vx_standalone(L, "list"); }

/* ------------------------------------------------------------------ */

static const luaL_Reg handle_methods[] = {
    {"call", handle_call},   {"start", handle_start}, {"done", handle_done},
    {"finish", handle_finish}, {"share", handle_share}, {"stats", handle_stats}, {"close", handle_close},
    {"is_closed", handle_isclosed}, {NULL, NULL}};

static const luaL_Reg multi_methods[] = {
    {"perform", multi_perform}, {"wait", multi_wait}, {"close", multi_close}, {NULL, NULL}};

static const luaL_Reg core_funcs[] = {
    {"cancel", core_cancel},
    {"get", core_get},
    {"delete", core_delete},
    {"list", core_list},
    {"build", core_build},
    {"classify", core_classify},
    {"check_options", core_check_options},
    {"check_url", core_check_url},
    {"handle", core_handle},
    {"multi", core_multi},
    {"share", core_share},
    {"error", core_error},
    {"is", core_is},
    {"clock", core_clock},
    {"sleep", core_sleep},
    {"isatty", core_isatty},
    {"b64url", core_b64url},
    {"rs256", core_rs256},
    {NULL, NULL}};

int luaopen_vertexops_core(lua_State *L) {
  /* error metatable */
  luaL_newmetatable(L, VX_ERROR_MT);
  lua_pushcfunction(L, error_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "vertexops.error");
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);

  /* handle metatable */
  luaL_newmetatable(L, VX_HANDLE_MT);
  lua_pushcfunction(L, handle_close); /* one function object for both */
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "__gc");
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, handle_tostring);
  lua_setfield(L, -2, "__tostring");
  luaL_newlib(L, handle_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);

  /* share metatable */
  luaL_newmetatable(L, VX_SHARE_MT);
  lua_pushcfunction(L, share_close);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "__gc");
  lua_setfield(L, -2, "__close");
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, share_close);
  lua_setfield(L, -2, "close");
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);

  /* multi metatable */
  luaL_newmetatable(L, VX_MULTI_MT);
  lua_pushcfunction(L, multi_close);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "__gc");
  lua_setfield(L, -2, "__close");
  luaL_newlib(L, multi_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);

  /* a private cjson.safe instance: its settings are ours alone */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "cjson.safe");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "new");
  lua_call(L, 0, 1);
  /* nesting deeper than this is refused while decoding (and bounds vx_fixints' recursion) */
  lua_getfield(L, -1, "decode_max_depth");
  lua_pushinteger(L, VX_MAX_DEPTH);
  lua_call(L, 1, 0);
  lua_setfield(L, LUA_REGISTRYINDEX, VX_JSON_KEY);
  lua_pop(L, 1);

  luaL_newlib(L, core_funcs);
  luaL_getmetatable(L, VX_ERROR_MT);
  lua_setfield(L, -2, "error_mt");
  lua_pushliteral(L, VX_VERSION);
  lua_setfield(L, -2, "version");
  /* curl_version() would initialise libldap, which leaks; the version number is enough */
  if (!vx_curl_ready()) return vx_curlerror(L, "curl_global_init failed");
  if (vx_curl_version_num < VX_MIN_CURL)
    return vx_curlerror(L, "libcurl %s is too old: vertexops needs %s or newer", vx_curl_version,
                        VX_MIN_CURL_TEXT);
  lua_pushstring(L, vx_curl_version);
  lua_setfield(L, -2, "curl_version");
  return 1;
}
