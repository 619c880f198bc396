/* url.c: the one grammar of the URLs vertexops sends requests to, read by vx_scanurl for both
 * its users -- endpoints (vx_pushbase, core.check_url: request.c) and the URL of a request a
 * transport is given (vx_readrequest: reader.c) -- so a host and a port are parsed in one place.
 *
 *   url       = ("https://" | "http://") host [":" port] ["/" anything]
 *   host      = 1*(ALPHA | DIGIT | "-" | "." | "_")          a name or IPv4 address
 *             | "[" 2*(HEXDIG | ":" | ".") "]"               an IPv6 literal
 *   port      = 1*DIGIT, from 1 to 65535
 *
 * The scanner only reads: no Lua, no allocation, no message. It stops at the first fault and
 * says which (VX_URL_*) and where (u->stop); each caller words the faults in a table of its own
 * (an endpoint's, a request url's), raised by vx_urlfault, and adds its own rules about what may
 * follow the host (an endpoint has no query, a request url no space or control byte). */
#include <string.h>

#include "vx.h"

static int vx_ishostchar(int c) { return VX_ISALNUM(c) || c == '-' || c == '.' || c == '_'; }
static int vx_isv6char(int c) { return VX_ISXDIGIT(c) || c == ':' || c == '.'; }

int vx_scanurl(const char *s, size_t n, vx_url *u) {
  size_t p;
  memset(u, 0, sizeof *u);
  if (n >= 8 && memcmp(s, "https://", 8) == 0) u->https = 1, p = 8;
  else if (n >= 7 && memcmp(s, "http://", 7) == 0) p = 7;
  else return VX_URL_SCHEME;
  u->authority = u->stop = p;
  u->port = u->https ? 443 : 80;
  if (p < n && s[p] == '[') { /* an IPv6 literal: the first ']' closes it */
    const char *close = memchr(s + p, ']', n - p);
    size_t q, end;
    if (!close) return VX_URL_V6_OPEN;
    end = (size_t)(close - s);
    for (q = p + 1; q < end; q++)
      if (!vx_isv6char((unsigned char)s[q])) return u->stop = q, VX_URL_V6_BAD;
    if (end - p < 3) return VX_URL_V6_BAD; /* "::" is the shortest */
    u->v6 = u->ip = 1;
    u->host = p + 1;
    u->hostlen = end - p - 1;
    p = end + 1;
  } else { /* a name or an IPv4 address */
    u->host = p;
    u->ip = 1;
    for (; p < n && s[p] != ':' && s[p] != '/'; p++) {
      if (!vx_ishostchar((unsigned char)s[p])) return u->stop = p, VX_URL_HOSTCHAR;
      if (!VX_ISDIGIT(s[p]) && s[p] != '.') u->ip = 0;
    }
    u->hostlen = p - u->host;
    if (u->hostlen == 0) return u->stop = p, VX_URL_NOHOST;
  }
  u->stop = p;
  if (p < n && s[p] == ':') {
    size_t digits = ++p;
    unsigned long port = 0;
    while (p < n && VX_ISDIGIT(s[p]) && port <= 65535) port = port * 10 + (unsigned long)(s[p++] - '0');
    u->stop = p;
    if (p == digits || port == 0 || port > 65535) return VX_URL_PORT;
    if (p < n && s[p] != '/') return VX_URL_PORTEND;
    u->port = (unsigned)port;
  } else if (p < n && s[p] != '/') {
    return VX_URL_AFTERHOST;
  }
  u->authlen = p - u->authority;
  u->path = p;
  return VX_URL_OK;
}

/* Raises the ValueError words[rc] for the fault rc of vx_scanurl on s; a message may name the
 * byte where the scan stopped with one %c. */
int vx_urlfault(lua_State *L, const char *const *words, int rc, const char *s, const vx_url *u) {
  return vx_valueerror(L, words[rc], s[u->stop]);
}
