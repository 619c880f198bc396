/* reader.c: a built request ({method, url, headers, body[, token]}, core.build's or a token request's)
 * as a transport reads it. vx_readrequest is the one check of a request before it goes on the
 * wire, for both transports: libcurl's (vx_prepare, handle.c) and the cosocket's HTTP/1.1 bytes
 * (core.h1_request, h1.c), so a request one refuses the other refuses alike -- same tag, same
 * message, before any I/O. It reads with raw reads, as options are read. */
#include <string.h>

#include "vx.h"

/* The methods a request may have, and whether a body goes with it (Content-Length, even 0). */
static const struct {
  const char *name;
  int body;
} vx_methods[] = {{"GET", 0}, {"POST", 1}, {"PUT", 1}, {"DELETE", 0}};
#define VX_METHODS "GET, POST, PUT or DELETE"

static void vx_readmethod(lua_State *L, int idx, vx_request *r) {
  size_t i;
  if (vx_rawfield(L, idx, "method") != LUA_TSTRING) vx_typeerror(L, "request method must be a string");
  r->method = lua_tostring(L, -1);
  for (i = 0; i < sizeof vx_methods / sizeof vx_methods[0]; i++)
    if (strcmp(r->method, vx_methods[i].name) == 0) {
      r->has_body = vx_methods[i].body;
      return;
    }
  vx_valueerror(L, "request method must be " VX_METHODS);
}

/* The token: the argument at tokidx if given, else req.token; none is fine (no Authorization). */
static void vx_readtoken(lua_State *L, int idx, int tokidx, vx_request *r) {
  if (lua_isnoneornil(L, tokidx)) vx_rawfield(L, idx, "token");
  else lua_pushvalue(L, tokidx);
  if (lua_type(L, -1) == LUA_TSTRING) {
    r->token = lua_gettop(L);
    r->tokentext = lua_tolstring(L, -1, &r->tokenlen);
    if (!vx_tokenok(r->tokentext, r->tokenlen))
      vx_raise(L, "AuthError", "access token is empty or contains a character not allowed in a header");
  } else if (!lua_isnil(L, -1)) {
    vx_typeerror(L, "token must be a string");
  }
}

/* Header lines: strings "Name: value", one line each (no CR, LF or NUL). */
static void vx_readheaders(lua_State *L, int idx, vx_request *r) {
  size_t i, n;
  int t = vx_rawfield(L, idx, "headers");
  if (t == LUA_TNIL) return;
  if (t != LUA_TTABLE) vx_typeerror(L, "request headers must be a table");
  r->headers = lua_gettop(L);
  n = lua_rawlen(L, r->headers);
  for (i = 1; i <= n; i++) {
    const char *s;
    size_t sl;
    if (VX_RAWGETI(L, r->headers, (int)i) != LUA_TSTRING) vx_typeerror(L, "request headers must be strings");
    s = lua_tolstring(L, -1, &sl);
    if (memchr(s, '\n', sl) || memchr(s, '\r', sl) || memchr(s, '\0', sl))
      vx_valueerror(L, "request header contains a line break");
    if (!memchr(s, ':', sl)) vx_valueerror(L, "request header has no ':'");
    lua_pop(L, 1);
  }
  r->nheaders = n;
}

/* The URL: the grammar of url.c, then a path (and query) of visible ASCII. */
static const char *const vx_url_words[VX_URL_FAULTS] = {
    [VX_URL_SCHEME] = "request url must start with https:// or http://",
    [VX_URL_V6_OPEN] = "request url has a bad IPv6 host",
    [VX_URL_V6_BAD] = "request url has a bad IPv6 host",
    [VX_URL_HOSTCHAR] = "request url has a bad host",
    [VX_URL_NOHOST] = "request url has no host",
    [VX_URL_PORT] = "request url has a bad port",
    [VX_URL_PORTEND] = "request url has a bad host",
    [VX_URL_AFTERHOST] = "request url has a bad host",
};

static void vx_readurl(lua_State *L, vx_request *r) {
  size_t i;
  int rc = vx_scanurl(r->url, r->urllen, &r->u);
  if (rc == VX_URL_HOSTCHAR && r->u.stop == r->u.authority) rc = VX_URL_NOHOST; /* "https://@h" */
  if (rc != VX_URL_OK) vx_urlfault(L, vx_url_words, rc, r->url, &r->u);
  for (i = r->u.path; i < r->urllen; i++)
    if ((unsigned char)r->url[i] <= ' ' || (unsigned char)r->url[i] >= 0x7f)
      vx_valueerror(L, "request url has a space, control byte or non-ASCII byte");
}

/* Reads and checks the request table at idx and the token at tokidx (a string, or nil for
 * req.token): TypeError for a field of the wrong type, ValueError for a bad method, header line,
 * URL or a body on a method without one, AuthError for a token that cannot go in a header. The
 * strings stay on the stack (pushed above it); r points into them. */
void vx_readrequest(lua_State *L, int idx, int tokidx, vx_request *r) {
  int t;
  idx = lua_absindex(L, idx);
  tokidx = lua_absindex(L, tokidx);
  memset(r, 0, sizeof *r);
  vx_checktablearg(L, idx, "request");
  vx_readmethod(L, idx, r);
  if (vx_rawfield(L, idx, "url") != LUA_TSTRING) vx_typeerror(L, "request url must be a string");
  r->url = lua_tolstring(L, -1, &r->urllen);
  t = vx_rawfield(L, idx, "body");
  if (t == LUA_TSTRING) {
    if (!r->has_body) vx_valueerror(L, "request method %s takes no body", r->method);
    r->body = lua_gettop(L);
    r->bodytext = lua_tolstring(L, -1, &r->bodylen);
  } else if (t != LUA_TNIL) {
    vx_typeerror(L, "request body must be a string");
  }
  vx_readtoken(L, idx, tokidx, r);
  vx_readheaders(L, idx, r);
  vx_readurl(L, r);
}
