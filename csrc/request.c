/* request.c: everything a request is made of, validated before any I/O -- resource names,
 * regions, endpoints (base URLs), query escaping -- and core.build, which turns a call
 * into {call, method, url, headers, body}. Nothing here does I/O or reads the environment. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <pthread.h>
#include <string.h>

#include "methods.h"
#include "vx.h"

static const char *vx_typename(lua_State *L, int idx) {
  return luaL_typename(L, idx);
}

/* What each byte is in a resource name: 1 unreserved (letters, digits, - _ . ~), 2 '/', 3 a line
 * break (CR, LF), 4 one of ? # % : (named in messages), 0 any other (bytes from 0x80 too). */
static const unsigned char vx_namebyte[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 4, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 4, 0, 0, 0, 0, 4,
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1,
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 0,
};

/* Appends s percent-encoded (everything but RFC 3986 unreserved). */
void vx_addescaped(luaL_Buffer *b, const char *s, size_t n) {
  static const char hex[] = "0123456789ABCDEF";
  size_t i;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (vx_namebyte[c] == 1) { /* unreserved */
      luaL_addchar(b, (char)c);
    } else {
      luaL_addchar(b, '%');
      luaL_addchar(b, hex[c >> 4]);
      luaL_addchar(b, hex[c & 15]);
    }
  }
}

/* The faults of a resource name's bytes and segments, in the order vx_checkpath tells them: the
 * length, then the first bad byte, then the first bad segment. */
enum { VX_NAME_OK, VX_NAME_LONG, VX_NAME_BREAK, VX_NAME_SPECIAL, VX_NAME_BYTE, VX_NAME_EMPTY, VX_NAME_DOT };

/* vx_checkpath's reading in one pass, raising nothing: returns the number of segments (filled in
 * seg / seglen up to max) and sets *fault (VX_NAME_*) and *bad (the byte of a byte's fault). s is
 * a Lua string's bytes (a '\0' follows the last). */
static int vx_scanpath(const char *s, size_t len, const char **seg, size_t *seglen, int max, int *fault,
                       unsigned char *bad) {
  size_t i = 0, start = 0, n;
  int nseg = 0, segfault = VX_NAME_OK;
  unsigned k;
  *fault = VX_NAME_OK;
  if (len > VX_MAX_NAME) return *fault = VX_NAME_LONG, 0;
  for (;;) {
    /* a Lua string ends with a '\0', which is no unreserved byte: it stops this loop (at len, or
     * past it for bytes given short of their string's end) */
    while (vx_namebyte[(unsigned char)s[i]] == 1) i++;
    if (i > len) i = len;
    k = i < len ? vx_namebyte[(unsigned char)s[i]] : 2; /* the end closes the last segment */
    if (k != 2) {
      *bad = (unsigned char)s[i];
      *fault = k == 3 ? VX_NAME_BREAK : k == 4 ? VX_NAME_SPECIAL : VX_NAME_BYTE;
      return 0;
    }
    n = i - start;
    if (segfault == VX_NAME_OK) {
      if (n == 0) segfault = VX_NAME_EMPTY;
      else if (s[start] == '.' && (n == 1 || (n == 2 && s[start + 1] == '.'))) segfault = VX_NAME_DOT;
    }
    if (nseg < max) {
      seg[nseg] = s + start;
      seglen[nseg] = n;
    }
    nseg++;
    if (i >= len) break;
    start = ++i;
  }
  *fault = segfault;
  return nseg;
}

/* The bytes and segments of every resource name (an operation's, a list parent's, a job's): at
 * most VX_MAX_NAME bytes of letters, digits, - _ . ~ and '/', no empty, '.' or '..' segment;
 * what names it in messages. Fills seg / seglen with its '/'-separated segments (at most max)
 * and returns how many; 0 when there are more than max. */
int vx_checkpath(lua_State *L, const char *what, const char *s, size_t len, const char **seg,
                 size_t *seglen, int max) {
  int fault;
  unsigned char c = 0;
  int nseg = vx_scanpath(s, len, seg, seglen, max, &fault, &c);
  switch (fault) {
    case VX_NAME_LONG: vx_valueerror(L, "%s is longer than %d bytes", what, VX_MAX_NAME); break;
    case VX_NAME_BREAK: vx_valueerror(L, "%s contains a line break (CR or LF)", what); break;
    case VX_NAME_SPECIAL:
      vx_valueerror(L, "%s contains '%c', which cannot appear in a resource name", what, c);
      break;
    case VX_NAME_BYTE: {
      char hex[8];
      snprintf(hex, sizeof hex, "0x%02X", (unsigned)c);
      vx_valueerror(L, "%s contains byte %s; resource names are letters, digits and - _ . ~", what, hex);
      break;
    }
    case VX_NAME_EMPTY: vx_valueerror(L, "%s has an empty segment", what); break;
    case VX_NAME_DOT: vx_valueerror(L, "%s has a '.' or '..' segment", what); break;
  }
  return nseg <= max ? nseg : 0;
}

/* Whether segment k of a name is the literal lit. */
#define VX_SEGIS(segs, seglen, nseg, k, lit)                                                        \
  ((k) >= 0 && (k) < (nseg) && (seglen)[k] == sizeof(lit) - 1 &&                                  \
   memcmp((segs)[k], lit, sizeof(lit) - 1) == 0)

/* The fault of a name's segments (read by vx_checkpath) in Google's generic grammar of kind 'o'
 * or 'p' (vx_checkname's): 0 none, 1 a location without a project or the reverse, 2 a list
 * parent that names operations, 3 not an operation's name. */
static int vx_namegrammar(int kind, const char *const *segs, const size_t *seglen, int nseg) {
  int located = VX_SEGIS(segs, seglen, nseg, 0, "projects");
  if (located ? nseg < 4 || !VX_SEGIS(segs, seglen, nseg, 2, "locations")
              : VX_SEGIS(segs, seglen, nseg, 0, "locations") || VX_SEGIS(segs, seglen, nseg, 2, "locations"))
    return 1;
  if (kind == 'p')
    return VX_SEGIS(segs, seglen, nseg, nseg - 1, "operations") ||
                   VX_SEGIS(segs, seglen, nseg, nseg - 2, "operations")
               ? 2
               : 0;
  return !VX_SEGIS(segs, seglen, nseg, nseg - 2, "operations") || nseg < (located ? 6 : 3) ? 3 : 0;
}

/* Checks that argument idx is a resource name of the given kind, Google's generic grammar, and
 * returns it; *loc / *loclen receive its location segment (NULL, 0: a name without
 * projects/{project}/locations/{location}, which has no location and goes to the global host).
 * kind 'o', an operation: [projects/P/locations/L/] then collections -- collection/id pairs or
 * singletons (ragEngineConfig) -- then operations/O; without projects/P/locations/L at least one
 * collection (reasoningEngines/R/sessions/S/operations/O).
 * kind 'p', a list parent: projects/P/locations/L then any collections, or collections alone;
 * never an operation's name nor one ending in "operations" (list appends /operations).
 * Which methods a name's shape has is vx_checkmethod's (the table of csrc/methods.h). */
const char *vx_checkname(lua_State *L, int idx, const char *what, int kind, const char **loc,
                         size_t *loclen) {
  size_t len;
  int nseg, located;
  const char *segs[VX_MAX_NAME / 2 + 1];
  size_t seglen[VX_MAX_NAME / 2 + 1];
  const char *s;
  if (lua_type(L, idx) != LUA_TSTRING)
    vx_typeerror(L, "%s must be a string, got %s", what, vx_typename(L, idx));
  s = lua_tolstring(L, idx, &len);
  if (len == 0) vx_valueerror(L, "%s is empty", what);
  nseg = vx_checkpath(L, what, s, len, segs, seglen, VX_MAX_NAME / 2 + 1);
  switch (vx_namegrammar(kind, segs, seglen, nseg)) {
    case 1:
      vx_valueerror(L, "%s has a location without projects/{project} before it, or a project without "
                       "locations/{location} after it: it must look like %s", what,
                    kind == 'p' ? "projects/{project}/locations/{location}[/{collection}/{id}...]"
                                : "[projects/{project}/locations/{location}/][{collection}/{id}/...]"
                                  "operations/{id}");
      break;
    case 2:
      vx_valueerror(L, "%s names operations: pass what they are under (projects/{project}/"
                       "locations/{location}[/{collection}/{id}...]); list adds /operations", what);
      break;
    case 3:
      vx_valueerror(L, "%s must look like [projects/{project}/locations/{location}/]"
                       "[{collection}/{id}/...]operations/{id}", what);
      break;
  }
  located = VX_SEGIS(segs, seglen, nseg, 0, "projects");
  *loc = located ? segs[3] : NULL;
  *loclen = located ? seglen[3] : 0;
  return s;
}

/* Whether the segments of s (n bytes) match the shape pattern p (m bytes; '*' a whole segment). */
static int vx_shapematch(const char *p, size_t m, const char *s, size_t n) {
  size_t i = 0, j = 0;
  while (i < m && j < n) {
    size_t pe = i, se = j;
    while (pe < m && p[pe] != '/') pe++;
    while (se < n && s[se] != '/') se++;
    if (!(pe - i == 1 && p[i] == '*') && (pe - i != se - j || memcmp(p + i, s + j, pe - i) != 0))
      return 0;
    i = pe + 1;
    j = se + 1;
  }
  return i == m + 1 && j == n + 1; /* both ran out together */
}

/* The shape of csrc/methods.h an operation name has (list: the parent of operations), or NULL when
 * Google defines none like it (a resource type added since: every method is allowed). */
/* Each shape's length and '/' count, and whether no shape before it matches a name it matches
 * (none of as many segments has, at each, the same literal or a '*' on either side): counted once
 * per process (pthread_once: read-only after). */
#define VX_NSHAPES (sizeof vx_method_shapes / sizeof vx_method_shapes[0])
static size_t vx_shapelen[VX_NSHAPES];
static unsigned vx_shapeslashes[VX_NSHAPES];
static unsigned char vx_shapealone[VX_NSHAPES];
/* each shape's segments: where each starts and its length (0: a '*') */
#define VX_SHAPESEGS 16
static unsigned char vx_shapesegat[VX_NSHAPES][VX_SHAPESEGS], vx_shapeseglen[VX_NSHAPES][VX_SHAPESEGS];
static pthread_once_t vx_shapes_once = PTHREAD_ONCE_INIT;

/* Whether some name matches both shape patterns p and q (as many segments, and at each the same
 * literal or a '*' in either). */
static int vx_shapesoverlap(const char *p, const char *q) {
  for (;;) {
    size_t m = strcspn(p, "/"), n = strcspn(q, "/");
    if (!(m == 1 && *p == '*') && !(n == 1 && *q == '*') && (m != n || memcmp(p, q, m) != 0)) return 0;
    p += m;
    q += n;
    if (!*p || !*q) return !*p && !*q;
    p++;
    q++;
  }
}

/* Fills vx_shapesegat / vx_shapeseglen of shape k (the generator's shapes have at most 14
 * segments of at most 84 bytes in all: methods.h). */
static void vx_splitshape(size_t k) {
  const char *shape = vx_method_shapes[k].shape;
  size_t i, start = 0, j = 0;
  for (i = 0; j < VX_SHAPESEGS; i++) {
    if (shape[i] == '/' || shape[i] == '\0') {
      vx_shapesegat[k][j] = (unsigned char)start;
      vx_shapeseglen[k][j] = i - start == 1 && shape[start] == '*' ? 0 : (unsigned char)(i - start);
      j++;
      start = i + 1;
      if (shape[i] == '\0') break;
    }
  }
}

static void vx_countshapes(void) {
  size_t k, j;
  for (k = 0; vx_method_shapes[k].shape; k++) {
    const char *p = vx_method_shapes[k].shape;
    for (; *p; p++) vx_shapeslashes[k] += *p == '/';
    vx_shapelen[k] = (size_t)(p - vx_method_shapes[k].shape);
    vx_splitshape(k);
    vx_shapealone[k] = 1;
    for (j = 0; j < k; j++)
      if (vx_shapeslashes[j] == vx_shapeslashes[k] &&
          vx_shapesoverlap(vx_method_shapes[j].shape, vx_method_shapes[k].shape))
        vx_shapealone[k] = 0;
  }
}

/* vx_findshape for a name of slashes '/' (counted by the caller). */
static const vx_method_shape *vx_findshapeof(const char *name, size_t n, int list, unsigned slashes) {
  size_t k;
  if (list) slashes += 2; /* a parent: two segments of the shape (operations, its id) beyond it */
  pthread_once(&vx_shapes_once, vx_countshapes);
  for (k = 0; vx_method_shapes[k].shape; k++) {
    size_t len = vx_shapelen[k];
    /* only a shape of as many segments can match (a bulk call looks up every name it lists:
     * bench/RESULTS.md, "Fleet") */
    if (vx_shapeslashes[k] != slashes) continue;
    if (list) len -= sizeof("/operations/*") - 1; /* every shape ends so (the generator checks) */
    if (vx_shapematch(vx_method_shapes[k].shape, len, name, n)) return &vx_method_shapes[k];
  }
  return NULL;
}

static const vx_method_shape *vx_findshape(const char *name, size_t n, int list) {
  size_t i;
  unsigned slashes = 0;
  for (i = 0; i < n; i++) slashes += name[i] == '/';
  return vx_findshapeof(name, n, list, slashes);
}

/* Whether the name of segments segs / seglen (nseg of them) has shape k (vx_shapematch's answer). */
static int vx_shapehas(size_t k, const char *const *segs, const size_t *seglen, int nseg) {
  const char *shape = vx_method_shapes[k].shape;
  int j;
  if ((unsigned)nseg != vx_shapeslashes[k] + 1 || nseg > VX_SHAPESEGS) return 0;
  for (j = 0; j < nseg; j++) {
    size_t n = vx_shapeseglen[k][j];
    if (n && (n != seglen[j] || memcmp(shape + vx_shapesegat[k][j], segs[j], n) != 0)) return 0;
  }
  return 1;
}

/* The shape of an operation's name (not a list's: name, n) of segments segs / seglen, as
 * vx_findshape finds it, trying first the shape last found (last: in and out; a page's names mostly
 * share one). */
static const vx_method_shape *vx_findshapefrom(const char *name, size_t n, const char *const *segs,
                                               const size_t *seglen, int nseg, const vx_method_shape **last) {
  size_t k;
  if (nseg > VX_SHAPESEGS) return vx_findshapeof(name, n, 0, (unsigned)nseg - 1); /* none so long today */
  pthread_once(&vx_shapes_once, vx_countshapes);
  if (*last) {
    k = (size_t)(*last - vx_method_shapes);
    if (vx_shapealone[k] && vx_shapehas(k, segs, seglen, nseg)) return *last;
  }
  for (k = 0; vx_method_shapes[k].shape; k++)
    if (vx_shapehas(k, segs, seglen, nseg)) return *last = &vx_method_shapes[k];
  return NULL;
}

/* The methods (VX_M_*) a shape has in version, or -1 when the table does not know the shape
 * there (a shape of the other version only, or a version the table has not). */
static int vx_shapemethods(const vx_method_shape *m, const char *version) {
  int bits = -1;
  if (m && strcmp(version, "v1") == 0) bits = m->v1;
  else if (m && strcmp(version, "v1beta1") == 0) bits = m->v1beta1;
  return bits == 0 ? -1 : bits;
}

/* A region is lower-case letters, digits and '-', starting with a letter. */
static int vx_regionok(const char *r, size_t n) {
  size_t i;
  if (n == 0 || n > 63 || !VX_ISLOWER(r[0]) || r[n - 1] == '-') return 0;
  for (i = 0; i < n; i++)
    if (!(VX_ISLOWER(r[i]) || VX_ISDIGIT(r[i]) || r[i] == '-')) return 0;
  return 1;
}

/* Resolves the region from argument idx (string or nil) and the name's location (NULL: none, the
 * global host); pushes the region string ("global" for a name without a location). */
static void vx_pushregion(lua_State *L, int idx, const char *what, const char *loc, size_t loclen) {
  size_t n;
  const char *r;
  if (!loc) {
    if (lua_isnoneornil(L, idx)) {
      lua_pushliteral(L, "global");
      return;
    }
    if (lua_type(L, idx) != LUA_TSTRING)
      vx_typeerror(L, "region must be a string, got %s", vx_typename(L, idx));
    vx_valueerror(L, "region must be nil: the %s has no projects/{project}/locations/{location}, "
                     "so it has no location and goes to the global host", what);
  }
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

/* A loopback host (plain http:// is allowed to it): localhost, ::1, or a dotted quad 127.a.b.c. */
static int vx_isloopback(const char *h, size_t n, int v6) {
  size_t i = 0;
  int parts = 0;
  if (v6) return n == 3 && memcmp(h, "::1", 3) == 0;
  if (n == 9) {
    for (i = 0; i < 9 && VX_TOLOWER(h[i]) == "localhost"[i]; i++) {
    }
    if (i == 9) return 1;
  }
  /* each part 0-255 in plain decimal (no octal, no short forms) */
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

/* How an endpoint's faults of url.c's grammar are told. */
static const char *const vx_endpoint_words[VX_URL_FAULTS] = {
    [VX_URL_SCHEME] = "endpoint must start with https:// (or http:// for a loopback host)",
    [VX_URL_V6_OPEN] = "endpoint has an unterminated IPv6 address",
    [VX_URL_V6_BAD] = "endpoint has an invalid IPv6 address",
    [VX_URL_HOSTCHAR] = "endpoint host contains '%c' (letters, digits, '-', '.' and '_' only)",
    [VX_URL_NOHOST] = "endpoint has no host",
    [VX_URL_PORT] = "endpoint has an invalid port (a number from 1 to 65535)",
    [VX_URL_PORTEND] = "endpoint has an invalid port (a number from 1 to 65535)",
    [VX_URL_AFTERHOST] = "endpoint has something other than a port or a path after its host",
};

/* Expands the endpoint template at idx for region (a string on the stack
 * top) and checks the result: url.c's grammar, no user info, query, fragment, escape or
 * template left, plain http:// only to a loopback host. Replaces the region on the stack top by
 * the base URL (no trailing slash). */
static void vx_pushbase(lua_State *L, int idx, const char *region) {
  const char *t, *p;
  size_t tlen;
  int rc;
  vx_url u;
  luaL_Buffer b;
  size_t whole, authority;
  t = lua_tolstring(L, idx, &tlen);
  luaL_buffinit(L, &b);
  for (p = t; p < t + tlen;) { /* the bytes up to each '{' as they are, each "{region}" expanded */
    const char *brace = memchr(p, '{', (size_t)(t + tlen - p));
    if (!brace) brace = t + tlen;
    luaL_addlstring(&b, p, (size_t)(brace - p));
    p = brace;
    if (p == t + tlen) break;
    if ((size_t)(t + tlen - p) >= 8 && memcmp(p, "{region}", 8) == 0) {
      luaL_addstring(&b, region);
      p += 8;
    } else {
      luaL_addchar(&b, *p++);
    }
  }
  luaL_pushresult(&b);
  t = lua_tolstring(L, -1, &tlen);
  whole = tlen;
  /* where the host starts (vx_scanurl's u.authority: 0 without a scheme): trailing '/' go, the
   * scheme's stay */
  authority = tlen >= 8 && memcmp(t, "https://", 8) == 0 ? 8 : tlen >= 7 && memcmp(t, "http://", 7) == 0 ? 7 : 0;
  while (tlen > authority && t[tlen - 1] == '/') tlen--;
  rc = vx_scanurl(t, tlen, &u);
  if (rc == VX_URL_SCHEME) vx_urlfault(L, vx_endpoint_words, rc, t, &u);
  for (p = t + u.authority; p < t + tlen; p++) {
    unsigned char c = (unsigned char)*p;
    if (c == '@' || c == '?' || c == '#' || c == '%' || c == '\\' || c <= ' ' || c >= 0x7f ||
        c == '{' || c == '}') {
      char shown[16]; /* the character, or the byte's value when it does not print */
      if (c > ' ' && c < 0x7f) snprintf(shown, sizeof shown, "'%c'", c);
      else snprintf(shown, sizeof shown, "byte 0x%02X", (unsigned)c);
      vx_valueerror(L, "endpoint contains %s (user info, query, fragment and templates other "
                       "than {region} are not allowed)",
                    shown);
    }
  }
  if (rc != VX_URL_OK) vx_urlfault(L, vx_endpoint_words, rc, t, &u);
  if (!u.https && !vx_isloopback(t + u.host, u.hostlen, u.v6))
    vx_valueerror(L, "endpoint uses plain http:// for a host that is not loopback; use https://");
  if (tlen == whole) lua_pushvalue(L, -1); /* no trailing '/': the expansion is the base URL */
  else lua_pushlstring(L, t, tlen);
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

/* Checks that a token can go in a header: visible ASCII only (RFC 6750 b64token and more). */
int vx_tokenok(const char *t, size_t n) {
  size_t i;
  if (n == 0) return 0;
  for (i = 0; i < n; i++)
    if ((unsigned char)t[i] <= ' ' || (unsigned char)t[i] >= 0x7f) return 0;
  return 1;
}

/* Raises ValueError unless the string at idx is an endpoint template (vx_pushbase's checks). */
void vx_checkendpoint(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_pushliteral(L, "us-central1");
  vx_pushbase(L, idx, "us-central1");
  lua_pop(L, 1);
}

enum { CALL_CANCEL, CALL_GET, CALL_DELETE, CALL_LIST, CALL_WAIT };
static const char *const vx_calls[] = {"cancel", "get", "delete", "list", "wait", NULL};
static const char *const vx_methods[] = {"POST", "GET", "DELETE", "GET", "POST"}; /* by call */

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

/* Google's host of each kind of location, in universe ud (option universe_domain, default
 * googleapis.com), as Google's clients build them (google-genai's _api_client.py, the Vertex SDK's
 * initializer.py and utils.mrep_endpoint):
 *   global                        https://aiplatform.{ud}
 *   us, eu (multi-regions)        https://aiplatform.{loc}.rep.{ud}  (representative endpoints)
 *   a region (us-central1, ...)   https://{region}-aiplatform.{ud}
 * Outside googleapis.com the multi-regions keep the same form with the universe's domain after
 * "rep." (utils.mrep_endpoint splits the service host the same way). */
static const char *const vx_multiregions[] = {"us", "eu", NULL};

static void vx_pushgooglehost(lua_State *L, const char *region, const char *ud, int mtls) {
  int i;
  if (mtls && strcmp(ud, "googleapis.com") != 0)
    vx_valueerror(L, "Google's mTLS hosts are in universe googleapis.com only, not %s (a client_cert "
                     "with option mtls_endpoint \"auto\", or \"always\"): give an endpoint, or "
                     "mtls_endpoint = \"never\"", ud);
  if (strcmp(region, "global") == 0) {
    lua_pushfstring(L, mtls ? "https://aiplatform.mtls.%s" : "https://aiplatform.%s", ud);
    return;
  }
  /* the representative endpoints have no mTLS name (google-api-core's _get_default_mtls_endpoint
   * leaves a host it cannot split as it is) */
  for (i = 0; vx_multiregions[i]; i++)
    if (strcmp(region, vx_multiregions[i]) == 0) {
      lua_pushfstring(L, "https://aiplatform.%s.rep.%s", region, ud);
      return;
    }
  lua_pushfstring(L, mtls ? "https://{region}-aiplatform.mtls.%s" : "https://{region}-aiplatform.%s", ud);
}

/* Whether Google's mTLS hosts apply (option mtls_endpoint, as GOOGLE_API_USE_MTLS_ENDPOINT in
 * Google's clients): "always", or "auto" (the default) with a client_cert. */
static int vx_usemtls(lua_State *L, int opts) {
  const char *mode = vx_optfield(L, opts, "mtls_endpoint", NULL);
  int cert = vx_optfield(L, opts, "client_cert", NULL) != NULL;
  int on;
  if (!mode) mode = "auto";
  on = strcmp(mode, "always") == 0 || (strcmp(mode, "auto") == 0 && cert);
  lua_pop(L, 2);
  return on;
}

/* Pushes the base URL of a call (no trailing slash): the endpoint option expanded for the region
 * at regidx and checked (it overrides every host: Private Service Connect, private VIPs), else
 * Google's host for that kind of location in the options' universe. */
static void vx_pushbaseurl(lua_State *L, int opts, int regidx) {
  const char *region = lua_tostring(L, regidx);
  if (vx_optfield(L, opts, "endpoint", NULL) == NULL) {
    /* Google's hosts (the environment's defaults are the Lua front's: lua/vertexops/options.lua) */
    const char *ud = vx_optfield(L, opts, "universe_domain", NULL);
    if (!ud) ud = vx_optiondefault("universe_domain");
    vx_pushgooglehost(L, region, ud, vx_usemtls(L, opts));
    lua_replace(L, -3);
    lua_pop(L, 1);
  }
  lua_pushvalue(L, regidx);
  vx_pushbase(L, -2, region);
  lua_remove(L, -2);
}

/* The REST version of the options at opts (checked already): pushes the value read, returns it. */
const char *vx_version(lua_State *L, int opts) {
  const char *version = vx_optfield(L, opts, "api_version", NULL);
  return version ? version : vx_optiondefault("api_version");
}

/* The query of a list call (its options checked already); the strings are the options table's. */
typedef struct {
  const char *filter, *ptoken;
  size_t flen, plen;
  long long psize;
} vx_listquery;

/* Reads the list query of the options at opts; leaves the values it read on the stack. */
static void vx_readlistquery(lua_State *L, int opts, vx_listquery *q) {
  if (lua_isnoneornil(L, opts)) return;
  q->filter = vx_optfield(L, opts, "filter", &q->flen);
  q->ptoken = vx_optfield(L, opts, "page_token", &q->plen);
  if (vx_rawfield(L, opts, "page_size") == LUA_TNUMBER) q->psize = (long long)lua_tonumber(L, -1);
}

/* Appends "/" collection and the list query: ?filter=..&pageSize=..&pageToken=.. (escaped). */
static void vx_addlistquery(luaL_Buffer *b, const char *collection, const vx_listquery *q) {
  char sep = '?';
  luaL_addchar(b, '/');
  luaL_addstring(b, collection);
  if (q->filter) {
    luaL_addchar(b, sep);
    sep = '&';
    luaL_addstring(b, "filter=");
    vx_addescaped(b, q->filter, q->flen);
  }
  if (q->psize > 0) {
    char num[40];
    snprintf(num, sizeof num, "%cpageSize=%lld", sep, q->psize);
    luaL_addstring(b, num);
    sep = '&';
  }
  if (q->ptoken) {
    luaL_addchar(b, sep);
    luaL_addstring(b, "pageToken=");
    vx_addescaped(b, q->ptoken, q->plen);
  }
}

/* Writes ":wait" and, for seconds > 0, ?timeout= as a Duration. */
static void vx_waitsuffix(char *out, size_t size, double seconds) {
  char dur[64];
  if (!(seconds > 0)) {
    snprintf(out, size, ":wait");
    return;
  }
  vx_duration(dur, sizeof dur, seconds);
  snprintf(out, size, ":wait?timeout=%s", dur);
}

/* Pushes the URL of a call (every kind: operations, jobs, publisher models' operations):
 * base/version/path, then suffix (":cancel", ":wait?timeout=..", ":fetchPredictOperation"; NULL:
 * none) and, for a list (collection non-NULL), /collection and the list query of the options. */
void vx_pushurl(lua_State *L, int base, int opts, const char *path, size_t pathlen, const char *suffix,
                const char *collection) {
  int top = lua_gettop(L);
  const char *version;
  vx_listquery q;
  luaL_Buffer b;
  version = vx_version(L, opts); /* the string stays referenced by the options table */
  lua_pop(L, 1);
  memset(&q, 0, sizeof q);
  if (collection) vx_readlistquery(L, opts, &q); /* before the buffer starts */
  luaL_buffinit(L, &b);
  lua_pushvalue(L, base);
  luaL_addvalue(&b);
  luaL_addchar(&b, '/');
  luaL_addstring(&b, version);
  luaL_addchar(&b, '/');
  luaL_addlstring(&b, path, pathlen);
  if (suffix) luaL_addstring(&b, suffix);
  if (collection) vx_addlistquery(&b, collection, &q);
  luaL_pushresult(&b);
  if (lua_gettop(L) > top + 1) { /* the URL, without the query values read for it */
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
  }
}

/* Pushes the header lines of a call: Accept, Content-Type (body: a body goes with it), User-Agent,
 * x-goog-api-client, x-goog-request-params (the routing key: the request message's field rkey,
 * its value rval escaped), and from the options at opts x-goog-user-project and x-goog-api-key. */
static void vx_pushheaders(lua_State *L, int body, const char *rkey, const char *rval, size_t rlen,
                           int opts) {
  int hd, nh = 0;
  size_t n;
  const char *s;
  luaL_Buffer b;
  lua_createtable(L, 8, 0);
  hd = lua_gettop(L);
  /* the constant lines pushed as they are (no format to read: they are in every request) */
  lua_pushliteral(L, "Accept: application/json");
  lua_rawseti(L, hd, ++nh);
  if (body) {
    lua_pushliteral(L, "Content-Type: application/json");
    lua_rawseti(L, hd, ++nh);
  }
  vx_addheader(L, hd, &nh, "User-Agent: vertexops/" VX_VERSION " libcurl/%s", vx_curlversion());
  lua_pushliteral(L, "x-goog-api-client: gl-lua/" VX_LUA_VERSION " vertexops/" VX_VERSION);
  lua_rawseti(L, hd, ++nh);
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "x-goog-request-params: ");
  luaL_addstring(&b, rkey);
  luaL_addchar(&b, '=');
  vx_addescaped(&b, rval, rlen);
  luaL_pushresult(&b);
  lua_rawseti(L, hd, ++nh);
  s = vx_optfield(L, opts, "user_project", NULL);
  lua_pop(L, 1);
  if (s && *s) {
    for (n = 0; s[n]; n++)
      if ((unsigned char)s[n] < ' ') vx_valueerror(L, "quota project contains a control character");
    vx_addheader(L, hd, &nh, "x-goog-user-project: %s", s);
  }
  /* express mode: the API key is the credential (no Authorization header goes beside it). It was
   * checked (csrc/options.c: visible ASCII); no message ever shows it. */
  s = vx_optfield(L, opts, "api_key", NULL);
  lua_pop(L, 1);
  if (s) vx_addheader(L, hd, &nh, "x-goog-api-key: %s", s);
}

/* The bit of each call in csrc/methods.h's table (by call). */
static const int vx_callbits[] = {VX_M_CANCEL, VX_M_GET, VX_M_DELETE, VX_M_LIST, VX_M_WAIT};

/* Raises ValueError when the name's shape is one Google defines, in the request's version, without
 * this call's method (csrc/methods.h): the generic grammar accepts, the table only takes away. */
static void vx_checkmethod(lua_State *L, int call, const char *name, size_t namelen, int opts) {
  const vx_method_shape *m = vx_findshape(name, namelen, call == CALL_LIST);
  const char *version = vx_version(L, opts);
  int bits = vx_shapemethods(m, version);
  if (bits != -1 && !(bits & vx_callbits[call]))
    vx_valueerror(L, "%s has no %s method in %s", m->shape, vx_calls[call], version);
  lua_pop(L, 1);
}

/* core.shape(name [, api_version]) -> shape or nil, calls: the shape of csrc/methods.h the
 * operation name has in that version (default: api_version's) and {get=, cancel=, delete=,
 * wait=, list=} (booleans: the methods Google defines for it); nil and every call true for a
 * shape the table does not know there. An operation of a publisher model (csrc/jobs.c) has its
 * shape and get alone (read with fetchPredictOperation). */
static int core_shape(lua_State *L) {
  const char *name, *loc, *version;
  size_t loclen, n;
  int bits, i;
  lua_settop(L, 2);
  name = vx_checkname(L, 1, "name", 'o', &loc, &loclen);
  n = lua_rawlen(L, 1);
  lua_createtable(L, 0, 1); /* 3: the version as an option, checked as one */
  if (!lua_isnil(L, 2)) {
    if (lua_type(L, 2) != LUA_TSTRING)
      vx_typeerror(L, "api_version must be a string, got %s", vx_typename(L, 2));
    lua_pushvalue(L, 2);
    lua_setfield(L, 3, "api_version");
  }
  vx_checkoptions(L, 3);
  version = vx_version(L, 3);
  {
    const vx_method_shape *m = vx_findshape(name, n, 0);
    bits = vx_shapemethods(m, version);
    if (bits == -1 && vx_ispublisherop(name, n)) { /* csrc/jobs.c: fetchPredictOperation only */
      bits = VX_M_GET;
      lua_pushliteral(L, "projects/*/locations/*/publishers/*/models/*/operations/*");
    } else if (bits == -1) {
      lua_pushnil(L);
    } else {
      lua_pushstring(L, m->shape);
    }
  }
  lua_createtable(L, 0, 5);
  for (i = 0; vx_calls[i]; i++) {
    lua_pushboolean(L, bits == -1 || (bits & vx_callbits[i]) != 0);
    lua_setfield(L, -2, vx_calls[i]);
  }
  return 2;
}

/* The fields a request table is made with room for: core.build's (up to 8: call, method, region,
 * url, headers, body, kind, rules...) and what an attempt fills in before it is sent (timeout,
 * connect_timeout, ca_file: Client:_fill; rate_key: lua/vertexops/rate.lua and fleet.lua), so
 * filling them does not grow the table. */
#define VX_REQUEST_SLOTS 12

/* --- building many requests with the same call and options (core.build_many; core.build too) ---
 * What depends only on the call and the options is made once, before the names: the REST version,
 * the suffix, the header lines from the options (the constant lines, the calls' strings and the
 * fields' names are upvalues, made once per Lua state); a region's base URL is kept while the
 * names' location repeats (a page's names share it), the last shape found tried first. A name (an
 * operation's; a job's cancel and get) is built on this path only when every check of core.build
 * passes on it; for any other (a list, a job's wait or delete, a publisher model's operation, a
 * fault, a region to question, a base URL that raises) vx_fastbuild declines and core.build's own
 * path builds it, or raises what it raises: the requests and the errors are core.build's either
 * way (spec/13_core_build_same_spec.lua). */
typedef struct {
  int call, opts, regarg;
  int usable;                  /* 0: the options call for core.build's path for every name */
  int vbits;                   /* the version's column of csrc/methods.h: 1 v1, 2 v1beta1, 0 none */
  const char *version;         /* the REST version (a string of the options table, or the default) */
  size_t versionlen;
  const char *suffix;          /* after the name in the URL: ":cancel", ":wait..." or "" */
  size_t suffixlen;
  char suffixbuf[128];
  int body;                    /* a body goes with the request (cancel, wait) */
  int protect;                 /* make a base URL under lua_pcall (core.build_many: a name's error
                                  is its entry); core.build raises what its own path would */
  int slots;                   /* the stack slots below, from here */
  int ntail;                   /* header lines after the routing key's (VX_S_TAIL on) */
  const char *region;          /* the bytes of the region whose base URL is kept (NULL: none) */
  size_t regionlen;
  const char *base;            /* that base URL */
  size_t baselen;
  const vx_method_shape *shape; /* the last shape found */
} vx_buildctx;

/* The stack slots of a vx_buildctx, from ctx->slots: */
enum {
  VX_S_REGION, /* the kept region (or nil) */
  VX_S_BASE,   /* its base URL (or nil) */
  VX_S_TAIL,   /* x-goog-user-project, x-goog-api-key: the lines there are (ntail) */
  VX_S_COUNT = VX_S_TAIL + 2
};

/* The fields of a request, in the order core.build sets them. */
static const char *const vx_fields[] = {"call", "method", "region", "url", "headers", "body", NULL};

/* The upvalues of core.build and core.build_many: the lines of every request, "", the fields' names
 * (vx_fields), a job's, the calls' names (vx_calls) and their methods (vx_methods). */
enum {
  VX_U_ACCEPT = 1, VX_U_CONTENT, VX_U_AGENT, VX_U_CLIENT, VX_U_EMPTY,
  VX_U_CALLKEY, VX_U_METHODKEY, VX_U_REGIONKEY, VX_U_URLKEY, VX_U_HEADERSKEY, VX_U_BODYKEY,
  VX_U_KINDKEY, VX_U_JOB, VX_U_JOBBODY, /* "kind", "job", "{}": a job's request (csrc/jobs.c) */
  VX_U_CALLS,
  VX_U_METHODS = VX_U_CALLS + 5,
  VX_U_COUNT = VX_U_METHODS + 4
};
#define VX_UP(i) lua_upvalueindex(i)

/* Pushes the slots of a build of call with the options at opts (checked already) and the region
 * argument at regarg; waitidx: the :wait seconds (checked already; 0: none). The header lines
 * from the options are vx_pushheaders', made alike. */
static void vx_ctxinit(lua_State *L, vx_buildctx *c, int call, int opts, int regarg, int waitidx) {
  const char *up, *key;
  size_t n;
  memset(c, 0, sizeof *c);
  c->call = call;
  c->opts = lua_absindex(L, opts);
  c->regarg = lua_absindex(L, regarg);
  c->usable = call != CALL_LIST; /* a list reads its query and kind from the options: core.build's */
  c->body = call == CALL_CANCEL || call == CALL_WAIT;
  luaL_checkstack(L, VX_S_COUNT + 16, "building requests"); /* and vx_fastbuild's */
  c->version = vx_version(L, c->opts); /* the string stays referenced by the options table */
  lua_pop(L, 1);
  c->versionlen = strlen(c->version);
  c->vbits = strcmp(c->version, "v1") == 0 ? 1 : strcmp(c->version, "v1beta1") == 0 ? 2 : 0;
  if (call == CALL_CANCEL) {
    c->suffix = ":cancel";
  } else if (call == CALL_WAIT) {
    vx_waitsuffix(c->suffixbuf, sizeof c->suffixbuf,
                  waitidx == 0 || lua_isnoneornil(L, waitidx) ? 0 : (double)lua_tonumber(L, waitidx));
    c->suffix = c->suffixbuf;
  } else {
    c->suffix = "";
  }
  c->suffixlen = strlen(c->suffix);
  up = vx_optfield(L, c->opts, "user_project", NULL); /* the strings stay referenced by the options */
  lua_pop(L, 1);
  key = vx_optfield(L, c->opts, "api_key", NULL);
  lua_pop(L, 1);
  c->slots = lua_gettop(L) + 1;
  lua_pushnil(L);
  lua_pushnil(L);
  if (up && *up) {
    for (n = 0; up[n]; n++)
      if ((unsigned char)up[n] < ' ') c->usable = 0; /* core.build raises for each name */
    lua_pushfstring(L, "x-goog-user-project: %s", up);
    c->ntail++;
  }
  if (key) {
    lua_pushfstring(L, "x-goog-api-key: %s", key);
    c->ntail++;
  }
  lua_settop(L, c->slots + VX_S_COUNT - 1);
}

/* A region's base URL, made under lua_pcall: (opts, region) -> base URL. */
static int vx_basecall(lua_State *L) {
  vx_pushbaseurl(L, 1, 2);
  return 1;
}

/* The longest URL built in place (a longer one goes through a luaL_Buffer). */
#define VX_URLBUF 2048

/* An operation's or a job's name as vx_fastbuild takes it: its bytes and segments. */
typedef struct {
  const char *name;
  size_t namelen;
  int job;                     /* a job's name (csrc/jobs.c), not an operation's */
  int nseg;
  const char *segs[VX_MAX_NAME / 2 + 1];
  size_t seglen[VX_MAX_NAME / 2 + 1];
} vx_opname;

/* Whether a name of segments segs / seglen (checked) is a job's: projects/P/locations/L/{a
 * collection of jobs}/ID (csrc/jobs.c's vx_jobkind). */
static int vx_isjobname(const char *const *segs, const size_t *seglen, int nseg) {
  char kind[32];
  if (nseg != 6 || !VX_SEGIS(segs, seglen, nseg, 0, "projects") || !VX_SEGIS(segs, seglen, nseg, 2, "locations") ||
      seglen[4] >= sizeof kind)
    return 0;
  memcpy(kind, segs[4], seglen[4]);
  kind[seglen[4]] = '\0';
  return strcmp(kind, "operations") != 0 && vx_isjobkind(kind);
}

/* Reads the value at idx into o when it is a name vx_fastbuild can take: a string that passes
 * vx_checkpath, and is a job's name (o->job) or passes vx_checkname's checks of an operation's
 * name and is not a publisher model's operation (csrc/jobs.c's). For an operation csrc/jobs.c
 * has nothing to say, and core.build checks the seconds and options before it as its own path
 * does; a job's cancel and get check the options first too. Raises nothing. */
static int vx_readopname(lua_State *L, int idx, vx_opname *o) {
  int fault;
  unsigned char bad;
  if (lua_type(L, idx) != LUA_TSTRING) return 0;
  o->name = lua_tolstring(L, idx, &o->namelen);
  if (o->namelen == 0) return 0;
  o->nseg = vx_scanpath(o->name, o->namelen, o->segs, o->seglen, VX_MAX_NAME / 2 + 1, &fault, &bad);
  if (fault != VX_NAME_OK || o->nseg == 0) return 0;
  o->job = vx_isjobname(o->segs, o->seglen, o->nseg);
  if (o->job) return 1;
  if (vx_namegrammar('o', o->segs, o->seglen, o->nseg) != 0) return 0;
  return !(o->nseg == 10 && VX_SEGIS(o->segs, o->seglen, o->nseg, 0, "projects") &&
           VX_SEGIS(o->segs, o->seglen, o->nseg, 4, "publishers") &&
           VX_SEGIS(o->segs, o->seglen, o->nseg, 6, "models"));
}

/* Builds the request of the name o (read by vx_readopname) as core.build would with c's call,
 * options and region argument, and pushes it; returns 0 and leaves the stack as it was where
 * core.build's own path must decide (see above). Raises only when memory runs out (and, for
 * core.build, where its own path raises the same error at the same step: a base URL's). */
static int vx_fastbuild(lua_State *L, vx_buildctx *c, const vx_opname *o) {
  const char *name = o->name, *loc, *region;
  const char *const *segs = o->segs;
  const size_t *seglen = o->seglen;
  size_t namelen = o->namelen, loclen, regionlen, i, n;
  int nseg = o->nseg, located, bits, t, hd, k;
  const vx_method_shape *m;
  char line[sizeof "x-goog-request-params: name=" - 1 + 3 * VX_MAX_NAME];
  if (!c->usable || (o->job && c->call != CALL_CANCEL && c->call != CALL_GET)) return 0;
  located = VX_SEGIS(segs, seglen, nseg, 0, "projects");
  /* the methods of an operation's shape (vx_checkmethod; a job has cancel and get) */
  if (!o->job) {
    m = vx_findshapefrom(name, namelen, segs, seglen, nseg, &c->shape);
    bits = m && c->vbits == 1 ? m->v1 : m && c->vbits == 2 ? m->v1beta1 : 0;
    if (bits != 0 && !(bits & vx_callbits[c->call])) return 0;
  }
  /* the region (vx_pushregion) */
  loc = located ? segs[3] : NULL;
  loclen = located ? seglen[3] : 0;
  if (!loc) {
    if (!lua_isnoneornil(L, c->regarg)) return 0;
    region = "global";
    regionlen = 6;
  } else if (lua_isnoneornil(L, c->regarg)) {
    region = loc;
    regionlen = loclen;
  } else {
    if (lua_type(L, c->regarg) != LUA_TSTRING) return 0;
    region = lua_tolstring(L, c->regarg, &regionlen);
    if (regionlen != loclen || memcmp(region, loc, loclen) != 0) return 0;
  }
  /* its base URL (vx_pushbaseurl), kept while the region repeats */
  if (!c->region || regionlen != c->regionlen || memcmp(region, c->region, regionlen) != 0) {
    if (loc && !vx_regionok(region, regionlen)) return 0;
    lua_pushlstring(L, region, regionlen);
    if (!c->protect) {
      vx_pushbaseurl(L, c->opts, lua_gettop(L)); /* raises as core.build's path would, at that step */
    } else {
      lua_pushcfunction(L, vx_basecall);
      lua_pushvalue(L, c->opts);
      lua_pushvalue(L, -3);
      if (lua_pcall(L, 2, 1, 0) != 0) {
        lua_pop(L, 2); /* the error and the region: the slots keep what they held */
        return 0;
      }
    }
    lua_replace(L, c->slots + VX_S_BASE);
    lua_replace(L, c->slots + VX_S_REGION);
    c->region = lua_tolstring(L, c->slots + VX_S_REGION, &c->regionlen);
    c->base = lua_tolstring(L, c->slots + VX_S_BASE, &c->baselen);
  }
  /* the request (vx_newrequest's fields, then core.build's), keys and constant strings from the
   * upvalues; room for what an attempt fills in (VX_REQUEST_SLOTS) */
  lua_createtable(L, 0, VX_REQUEST_SLOTS);
  t = lua_gettop(L);
  lua_pushvalue(L, VX_UP(VX_U_CALLKEY));
  lua_pushvalue(L, VX_UP(VX_U_CALLS + c->call));
  lua_rawset(L, t);
  lua_pushvalue(L, VX_UP(VX_U_METHODKEY));
  lua_pushvalue(L, VX_UP(VX_U_METHODS + c->call));
  lua_rawset(L, t);
  lua_pushvalue(L, VX_UP(VX_U_REGIONKEY));
  lua_pushvalue(L, c->slots + VX_S_REGION);
  lua_rawset(L, t);
  if (o->job) { /* vx_buildjob's */
    lua_pushvalue(L, VX_UP(VX_U_KINDKEY));
    lua_pushvalue(L, VX_UP(VX_U_JOB));
    lua_rawset(L, t);
  }
  /* base/version/name[suffix] (vx_pushurl) */
  lua_pushvalue(L, VX_UP(VX_U_URLKEY));
  n = c->baselen + 1 + c->versionlen + 1 + namelen + c->suffixlen;
  if (n <= VX_URLBUF) {
    char url[VX_URLBUF], *p = url;
    memcpy(p, c->base, c->baselen), p += c->baselen;
    *p++ = '/';
    memcpy(p, c->version, c->versionlen), p += c->versionlen;
    *p++ = '/';
    memcpy(p, name, namelen), p += namelen;
    memcpy(p, c->suffix, c->suffixlen);
    lua_pushlstring(L, url, n);
  } else {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addlstring(&b, c->base, c->baselen);
    luaL_addchar(&b, '/');
    luaL_addlstring(&b, c->version, c->versionlen);
    luaL_addchar(&b, '/');
    luaL_addlstring(&b, name, namelen);
    luaL_addlstring(&b, c->suffix, c->suffixlen);
    luaL_pushresult(&b);
  }
  lua_rawset(L, t);
  /* the header lines (vx_pushheaders): the routing key's escaped in place (a checked name's bytes
   * are unreserved but its '/') */
  lua_pushvalue(L, VX_UP(VX_U_HEADERSKEY));
  lua_createtable(L, (c->body ? 5 : 4) + c->ntail, 0); /* as many as there are lines */
  hd = lua_gettop(L);
  k = 0;
  lua_pushvalue(L, VX_UP(VX_U_ACCEPT));
  lua_rawseti(L, hd, ++k);
  if (c->body) {
    lua_pushvalue(L, VX_UP(VX_U_CONTENT));
    lua_rawseti(L, hd, ++k);
  }
  lua_pushvalue(L, VX_UP(VX_U_AGENT));
  lua_rawseti(L, hd, ++k);
  lua_pushvalue(L, VX_UP(VX_U_CLIENT));
  lua_rawseti(L, hd, ++k);
  memcpy(line, "x-goog-request-params: name=", sizeof "x-goog-request-params: name=" - 1);
  n = sizeof "x-goog-request-params: name=" - 1;
  for (i = 0; i < namelen; i++) {
    if (name[i] == '/') {
      line[n++] = '%';
      line[n++] = '2';
      line[n++] = 'F';
    } else {
      line[n++] = name[i];
    }
  }
  lua_pushlstring(L, line, n);
  lua_rawseti(L, hd, ++k);
  for (i = 0; i < (size_t)c->ntail; i++) {
    lua_pushvalue(L, c->slots + VX_S_TAIL + (int)i);
    lua_rawseti(L, hd, ++k);
  }
  lua_rawset(L, t);
  if (c->body) {
    lua_pushvalue(L, VX_UP(VX_U_BODYKEY));
    lua_pushvalue(L, VX_UP(o->job ? VX_U_JOBBODY : VX_U_EMPTY)); /* a job's cancel sends {} */
    lua_rawset(L, t);
  }
  return 1;
}

/* core.build(call, name, region, opts [, wait_seconds]) -> request table
 * {call, method, url, region, headers = {...}, body}. Validates everything; holds no token:
 * handle:call / handle:start take it as an argument (csrc/handle.c, vx_prepare). */
/* core.build's own path, and each build of core.build_many that vx_fastbuild declines (checkopts 0:
 * opts were checked once for all) */
static int vx_build(lua_State *L, int checkopts) {
  int call = vx_checkcall(L, 1), t;
  const char *name, *loc;
  size_t loclen, namelen;
  char suffix[128];

  if (vx_buildjob(L)) return 1; /* jobs and publisher models' operations: csrc/jobs.c */
  lua_settop(L, 5);
  if (call == CALL_WAIT) vx_checkwaitseconds(L, 5);
  if (checkopts) vx_checkoptions(L, 4);
  name = vx_checkname(L, 2, call == CALL_LIST ? "parent" : "name", call == CALL_LIST ? 'p' : 'o',
                      &loc, &loclen);
  namelen = lua_rawlen(L, 2);
  vx_checkmethod(L, call, name, namelen, 4);
  vx_pushregion(L, 3, call == CALL_LIST ? "parent" : "name", loc, loclen); /* 6: region */
  vx_pushbaseurl(L, 4, 6); /* 7: base URL */

  t = vx_newrequest(L, vx_calls[call], vx_methods[call], 6); /* 8: request */
  if (call == CALL_WAIT)
    vx_waitsuffix(suffix, sizeof suffix, lua_isnoneornil(L, 5) ? 0 : (double)lua_tonumber(L, 5));
  vx_pushurl(L, 7, 4, name, namelen, call == CALL_CANCEL ? ":cancel" : call == CALL_WAIT ? suffix : NULL,
             call == CALL_LIST ? "operations" : NULL);
  lua_setfield(L, t, "url");
  /* the routing key is the request message's field: ListOperationsRequest names its parent
   * "name" too (google.longrunning), as Google's operations clients send it */
  vx_pushheaders(L, call == CALL_CANCEL || call == CALL_WAIT, "name", name, namelen, 4);
  lua_setfield(L, t, "headers");
  if (call == CALL_CANCEL || call == CALL_WAIT) {
    lua_pushliteral(L, "");
    lua_setfield(L, t, "body");
  }
  lua_settop(L, t);
  return 1;
}

static int core_build(lua_State *L) {
  int call = vx_checkcall(L, 1);
  vx_opname o;
  if (call != CALL_LIST && vx_readopname(L, 2, &o) && (!o.job || call == CALL_CANCEL || call == CALL_GET)) {
    vx_buildctx c;
    lua_settop(L, 5);
    if (call == CALL_WAIT) vx_checkwaitseconds(L, 5);
    vx_checkoptions(L, 4);
    vx_ctxinit(L, &c, call, 4, 3, 5);
    if (vx_fastbuild(L, &c, &o)) return 1;
    lua_settop(L, 5);
  }
  return vx_build(L, 1);
}

static int vx_build_checked(lua_State *L) { return vx_build(L, 0); }

/* core.build_many(call, names, region, opts) -> a list: for each string of the list names, the
 * request core.build(call, name, region, opts) returns, or the error it raises. The options are
 * checked once, before any name (a bad one raises as core.build does), and what depends on them
 * alone is made once (vx_ctxinit): the bulk calls build a request per name
 * (lua/vertexops/fleet.lua). */
static int core_build_many(lua_State *L) {
  lua_Integer i, n;
  int call = vx_checkcall(L, 1), res;
  vx_buildctx c;
  vx_opname o;
  lua_settop(L, 4);
  if (lua_type(L, 2) != LUA_TTABLE) vx_typeerror(L, "names must be a list of strings, got %s", luaL_typename(L, 2));
  vx_checkoptions(L, 4);
  n = (lua_Integer)lua_rawlen(L, 2);
  lua_createtable(L, n > 0 && n < (1 << 24) ? (int)n : 0, 0); /* 5: the results */
  res = lua_gettop(L);
  vx_ctxinit(L, &c, call, 4, 3, 0);
  c.protect = 1;
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, 2, i);
    if (!vx_readopname(L, -1, &o) || !vx_fastbuild(L, &c, &o)) { /* core.build's path: the request, or what it raises */
      lua_pushcfunction(L, vx_build_checked);
      lua_pushvalue(L, 1);
      lua_pushvalue(L, -3);
      lua_pushvalue(L, 3);
      lua_pushvalue(L, 4);
      (void)lua_pcall(L, 4, 1, 0);
    }
    lua_rawseti(L, res, i);
    lua_pop(L, 1);
  }
  lua_settop(L, res);
  return 1;
}

/* For csrc/jobs.c: pushes the region (from argument regidx and the name's location), the base URL
 * and the header lines of a call, as core_build makes them; body: a JSON body goes with the
 * request (Content-Type); rkey, rval: the routing key's field and value. */
void vx_pushcallparts(lua_State *L, int regidx, int opts, const char *loc, size_t loclen, int body,
                      const char *rkey, const char *rval, size_t rlen) {
  int region;
  vx_pushregion(L, regidx, "name", loc, loclen); /* jobs always have a location */
  region = lua_gettop(L);
  vx_pushbaseurl(L, opts, region);
  vx_pushheaders(L, body, rkey, rval, rlen, opts);
}

/* Pushes a new request table {call, method, region} (the region the string at regidx); returns its
 * index. core_build and csrc/jobs.c add the rest. */
int vx_newrequest(lua_State *L, const char *call, const char *method, int regidx) {
  int t;
  lua_createtable(L, 0, VX_REQUEST_SLOTS);
  t = lua_gettop(L);
  lua_pushstring(L, call);
  lua_setfield(L, t, "call");
  lua_pushstring(L, method);
  lua_setfield(L, t, "method");
  lua_pushvalue(L, regidx);
  lua_setfield(L, t, "region");
  return t;
}

/* core.name_key(s, from) -> what cancel_all's set of names seen keeps for the name s by what
 * follows its parent (from: the position of the '/' after it; lua/vertexops/fleet.lua): the
 * operation's id as a number when the rest is "/operations/" and the id's digits alone, without a
 * leading zero, exact as a Lua number (an integer on Lua 5.3+, below 2^53 where numbers are
 * doubles); else the rest of s from there, as s:sub(from) gives it. */
static int core_name_key(lua_State *L) {
  static const char ops[] = "/operations/";
  size_t n, k = sizeof ops - 1, i;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_Integer from = luaL_checkinteger(L, 2);
  const char *rest;
  size_t len;
  luaL_argcheck(L, from >= 1, 2, "a position in the name (1 or more)");
  if (from - 1 >= (lua_Integer)n) { /* (compared as lua_Integer: a size_t may be narrower) */
    lua_pushliteral(L, "");
    return 1;
  }
  rest = s + from - 1;
  len = n - (size_t)from + 1;
  if (len > k && len - k <= 19 && memcmp(rest, ops, k) == 0 && rest[k] >= '1' && rest[k] <= '9') {
    unsigned long long v = 0; /* 19 digits at most: below 2^64 */
    for (i = k; i < len && rest[i] >= '0' && rest[i] <= '9'; i++) v = v * 10 + (unsigned)(rest[i] - '0');
#if LUA_VERSION_NUM >= 503
    if (i == len && v <= (unsigned long long)LUA_MAXINTEGER) {
      lua_pushinteger(L, (lua_Integer)v);
      return 1;
    }
#else
    if (i == len && v < (1ULL << 53)) {
      lua_pushnumber(L, (lua_Number)v);
      return 1;
    }
#endif
  }
  lua_pushlstring(L, rest, len);
  return 1;
}

static const luaL_Reg request_funcs[] = {
    {"check_url", core_check_url}, {"shape", core_shape}, {"name_key", core_name_key}, {NULL, NULL}};

/* The upvalues of core.build and core.build_many (VX_U_*), made once per Lua state. */
static void vx_pushconstants(lua_State *L) {
  int i;
  lua_pushliteral(L, "Accept: application/json");
  lua_pushliteral(L, "Content-Type: application/json");
  (void)vx_curl_ready(); /* the version is read then (luaopen_vertexops_core raises if it failed) */
  lua_pushfstring(L, "User-Agent: vertexops/" VX_VERSION " libcurl/%s", vx_curlversion());
  lua_pushliteral(L, "x-goog-api-client: gl-lua/" VX_LUA_VERSION " vertexops/" VX_VERSION);
  lua_pushliteral(L, "");
  for (i = 0; vx_fields[i]; i++) lua_pushstring(L, vx_fields[i]);
  lua_pushliteral(L, "kind");
  lua_pushliteral(L, "job");
  lua_pushliteral(L, "{}");
  for (i = 0; vx_calls[i]; i++) lua_pushstring(L, vx_calls[i]);
  for (i = 0; vx_calls[i]; i++) lua_pushstring(L, vx_methods[i]);
}

void vx_request_open(lua_State *L) {
  luaL_setfuncs(L, request_funcs, 0);
  vx_pushconstants(L);
  lua_pushcclosure(L, core_build, VX_U_COUNT);
  lua_setfield(L, -2, "build");
  vx_pushconstants(L);
  lua_pushcclosure(L, core_build_many, VX_U_COUNT);
  lua_setfield(L, -2, "build_many");
}
