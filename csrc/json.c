/* json.c: JSON answers into Lua values, with the module's private lua-cjson instance; integers
 * stay integers (Lua 5.3+); nesting is bounded and the Lua stack checked at every level. */
#include <string.h>

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
/* Whether s (n bytes) is an empty JSON object: '{' and '}' with only JSON whitespace around them
 * (a cancel's answer): what the decoder would make of it is an empty table. */
static int vx_emptyobject(const char *s, size_t n) {
  const char *p = s, *end = s + n;
  int seen = 0; /* 0: before '{', 1: inside, 2: after '}' */
  for (; p < end; p++) {
    if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') continue;
    if (seen == 0 && *p == '{') seen = 1;
    else if (seen == 1 && *p == '}') seen = 2;
    else return 0;
  }
  return seen == 2;
}

int vx_pushjson(lua_State *L, const char *s, size_t n) {
  int st;
  if (vx_emptyobject(s, n)) { /* no decoder call for what it would answer with an empty table */
    lua_newtable(L);
    return 1;
  }
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

static int core_page_names(lua_State *L);

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
  lua_pushcfunction(L, core_page_names);
  lua_setfield(L, -2, "page_names");
  /* core.NAMES_PAGE: the metatable of the pages vx_pushpagenames makes (a decoded page has none) */
  luaL_newmetatable(L, VX_NAMES_PAGE_MT);
  lua_setfield(L, -2, "NAMES_PAGE");
}

/* --- A listing page, names only (cancel_all's listing: lua/vertexops/fleet.lua) ---------------
 * cancel_all reads nothing of a listed operation but its name, yet decoding a page of 1,000 into
 * tables (and checking each) cost a fifth of a cancel. vx_pushpagenames reads such a page and
 * pushes what decoding it and keeping each operation's name would: {operations = {{name = s}, ...},
 * nextPageToken = s}. It takes only pages it can read exactly as the decoder and the operation
 * check (lua/vertexops/operation.lua) would, and leaves every other one to them (returns 0, pushing
 * nothing): a repeated key it reads, any \u escape, a control character in a string, a number or
 * token outside strict JSON, nesting past VX_PAGE_DEPTH, an operation without a name or with an
 * error, a null, or a field of the wrong type. So each ResponseTypeError the contract gives for a
 * malformed page is still given, by the same code. A page it made has the metatable core.NAMES_PAGE
 * (no decoded page has one): the caller knows it needs no check of its operations. */

#define VX_PAGE_DEPTH 64 /* below the decoder's VX_MAX_DEPTH: past it, the decoder decides */

typedef struct {
  const char *p, *end;
} vx_scan;

static void vx_skipws(vx_scan *s) {
  while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t')) s->p++;
}

/* The bytes a JSON string holds as they are: not a quote, a backslash or a control character. */
static const unsigned char vx_plain[256] = {
#define VX_P16 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x20-0x2F: '"' is 0x22 */
    VX_P16, VX_P16,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 0x50-0x5F: '\\' is 0x5C */
    VX_P16, VX_P16, VX_P16, VX_P16, VX_P16, VX_P16, VX_P16, VX_P16, VX_P16, VX_P16 /* 0x60-0xFF */
#undef VX_P16
};

/* A string at s->p (the opening quote): its end past the closing quote. Into b, when given, its
 * text with the escapes undone. 0 for what is left to the decoder: \u, a control character, a bad
 * escape, no end. *esc: whether it held an escape. */
static int vx_scanstring(vx_scan *s, luaL_Buffer *b, int *esc) {
  const char *p = s->p + 1, *run = p;
  *esc = 0;
  for (; p < s->end; p++) {
    unsigned char c;
    while (p < s->end && vx_plain[(unsigned char)*p]) p++; /* the common run, one test a byte */
    if (p >= s->end) break;
    c = (unsigned char)*p;
    if (c == '"') {
      if (b) luaL_addlstring(b, run, (size_t)(p - run));
      s->p = p + 1;
      return 1;
    }
    if (c < 0x20) return 0;
    if (c == '\\') {
      char out;
      if (p + 1 >= s->end) return 0;
      switch (p[1]) {
        case '"': out = '"'; break;
        case '\\': out = '\\'; break;
        case '/': out = '/'; break;
        case 'b': out = '\b'; break;
        case 'f': out = '\f'; break;
        case 'n': out = '\n'; break;
        case 'r': out = '\r'; break;
        case 't': out = '\t'; break;
        default: return 0; /* \u (surrogates, NUL: the decoder's rules) or not JSON */
      }
      *esc = 1;
      if (b) {
        luaL_addlstring(b, run, (size_t)(p - run));
        luaL_addchar(b, out);
      }
      p++;
      run = p + 1;
    }
  }
  return 0;
}

static int vx_isdigit(char c) { return c >= '0' && c <= '9'; }

/* A number of strict JSON at s->p. */
static int vx_scannumber(vx_scan *s) {
  const char *p = s->p, *e = s->end;
  if (p < e && *p == '-') p++;
  if (p < e && *p == '0') p++;
  else if (p < e && *p >= '1' && *p <= '9') while (p < e && vx_isdigit(*p)) p++;
  else return 0;
  if (p < e && *p == '.') {
    p++;
    if (!(p < e && vx_isdigit(*p))) return 0;
    while (p < e && vx_isdigit(*p)) p++;
  }
  if (p < e && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < e && (*p == '+' || *p == '-')) p++;
    if (!(p < e && vx_isdigit(*p))) return 0;
    while (p < e && vx_isdigit(*p)) p++;
  }
  /* what may follow a number: the decoder reads "1x" as one bad token */
  if (p < e && !(*p == ',' || *p == '}' || *p == ']' || *p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
    return 0;
  s->p = p;
  return 1;
}

/* After a member or an element: 1 past a ',' (another follows), 0 past the container's close, -1
 * for anything else. */
static int vx_scannext(vx_scan *s, char close) {
  vx_skipws(s);
  if (s->p < s->end && *s->p == ',') {
    s->p++;
    return 1;
  }
  if (s->p < s->end && *s->p == close) {
    s->p++;
    return 0;
  }
  return -1;
}

/* A string at s->p (the opening quote) pushed with its escapes undone: 1, or 0 pushing nothing. */
static int vx_pushscanned(lua_State *L, vx_scan *s) {
  luaL_Buffer b;
  int esc, ok;
  luaL_buffinit(L, &b);
  ok = vx_scanstring(s, &b, &esc);
  luaL_pushresult(&b);
  if (!ok) lua_pop(L, 1);
  return ok;
}

static int vx_scanword(vx_scan *s, const char *w, size_t n) {
  if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0) return 0;
  s->p += n;
  return 1;
}

/* Any value at s->p (after whitespace), skipped; depth: the containers it sits in. */
static int vx_skipvalue(vx_scan *s, int depth) {
  int esc;
  vx_skipws(s);
  if (s->p >= s->end) return 0;
  switch (*s->p) {
    case '"': return vx_scanstring(s, NULL, &esc);
    case 't': return vx_scanword(s, "true", 4);
    case 'f': return vx_scanword(s, "false", 5);
    case 'n': return vx_scanword(s, "null", 4);
    case '{':
    case '[': {
      char close = *s->p == '{' ? '}' : ']';
      int obj = close == '}', next;
      if (depth + 1 > VX_PAGE_DEPTH) return 0;
      s->p++;
      vx_skipws(s);
      if (s->p < s->end && *s->p == close) {
        s->p++;
        return 1;
      }
      for (;;) {
        if (obj) {
          vx_skipws(s);
          if (s->p >= s->end || *s->p != '"' || !vx_scanstring(s, NULL, &esc)) return 0;
          vx_skipws(s);
          if (s->p >= s->end || *s->p != ':') return 0;
          s->p++;
        }
        if (!vx_skipvalue(s, depth + 1)) return 0;
        next = vx_scannext(s, close);
        if (next <= 0) return next == 0;
      }
    }
    default: return vx_scannumber(s);
  }
}

/* A key at s->p (after whitespace) and its colon: 1 and its text in *k, *n (0 for a key with an
 * escape: the caller cannot compare it, the decoder decides). */
static int vx_scankey(vx_scan *s, const char **k, size_t *n) {
  int esc;
  const char *start;
  vx_skipws(s);
  if (s->p >= s->end || *s->p != '"') return 0;
  start = s->p + 1;
  if (!vx_scanstring(s, NULL, &esc) || esc) return 0;
  *k = start;
  *n = (size_t)(s->p - 1 - start);
  vx_skipws(s);
  if (s->p >= s->end || *s->p != ':') return 0;
  s->p++;
  vx_skipws(s);
  return s->p < s->end;
}

#define VX_KEY(k, n, lit) ((n) == sizeof(lit) - 1 && memcmp((k), (lit), sizeof(lit) - 1) == 0)

/* One operation at s->p: pushes {name = s} (1), or 0 leaving the stack as it was. */
static int vx_scanop(lua_State *L, vx_scan *s) {
  int named = 0, done = 0, meta = 0, resp = 0, next;
  const char *k;
  size_t n;
  vx_skipws(s);
  if (s->p >= s->end || *s->p != '{') return 0;
  s->p++;
  vx_skipws(s);
  lua_createtable(L, 0, 1);
  if (s->p < s->end && *s->p == '}') goto fail; /* no name */
  for (;;) {
    if (!vx_scankey(s, &k, &n)) goto fail;
    if (VX_KEY(k, n, "name")) {
      if (named++ || *s->p != '"' || !vx_pushscanned(L, s)) goto fail;
      lua_setfield(L, -2, "name");
    } else if (VX_KEY(k, n, "done")) {
      if (done++ || !(vx_scanword(s, "true", 4) || vx_scanword(s, "false", 5))) goto fail;
    } else if (VX_KEY(k, n, "metadata") || VX_KEY(k, n, "response")) {
      int *seen = k[0] == 'm' ? &meta : &resp;
      if ((*seen)++ || *s->p != '{' || !vx_skipvalue(s, 3)) goto fail; /* in the page, its list, the operation */
    } else if (VX_KEY(k, n, "error")) {
      goto fail; /* its code and message are the check's to read */
    } else if (!vx_skipvalue(s, 3)) {
      goto fail;
    }
    next = vx_scannext(s, '}');
    if (next < 0 || (next == 0 && !named)) goto fail;
    if (next == 0) return 1;
  }
fail:
  lua_pop(L, 1);
  return 0;
}

int vx_pushpagenames(lua_State *L, const char *body, size_t len) {
  vx_scan s;
  int top = lua_gettop(L), ops = 0, token = 0, n = 0, next;
  const char *k;
  size_t kn;
  if (!lua_checkstack(L, 8)) return 0;
  s.p = body;
  s.end = body + len;
  vx_skipws(&s);
  if (s.p >= s.end || *s.p != '{') return 0;
  s.p++;
  lua_createtable(L, 0, 2);
  vx_skipws(&s);
  if (s.p < s.end && *s.p == '}') {
    s.p++;
    goto end;
  }
  for (;;) {
    if (!vx_scankey(&s, &k, &kn)) goto fail;
    if (VX_KEY(k, kn, "operations")) {
      if (ops++ || *s.p != '[') goto fail;
      s.p++;
      lua_createtable(L, 0, 0);
      vx_skipws(&s);
      if (s.p < s.end && *s.p == ']') {
        s.p++;
      } else {
        do {
          if (!vx_scanop(L, &s)) goto fail;
          lua_rawseti(L, -2, ++n);
        } while ((next = vx_scannext(&s, ']')) > 0);
        if (next < 0) goto fail;
      }
      lua_setfield(L, top + 1, "operations");
    } else if (VX_KEY(k, kn, "nextPageToken")) {
      if (token++ || *s.p != '"' || !vx_pushscanned(L, &s)) goto fail;
      lua_setfield(L, top + 1, "nextPageToken");
    } else if (!vx_skipvalue(&s, 1)) {
      goto fail;
    }
    next = vx_scannext(&s, '}');
    if (next < 0) goto fail;
    if (next == 0) break;
  }
end:
  vx_skipws(&s);
  if (s.p != s.end) goto fail;
  luaL_getmetatable(L, VX_NAMES_PAGE_MT);
  lua_setmetatable(L, top + 1);
  return 1;
fail:
  lua_settop(L, top);
  return 0;
}

/* core.page_names(body) -> {operations = {{name = s}, ...}, nextPageToken = s}, or nil for a page
 * left to the decoder: what a listing's answer gives cancel_all (spec/13_core_page_names_spec.lua
 * holds it to the decoder and the operation check). */
static int core_page_names(lua_State *L) {
  size_t n;
  const char *body = vx_checkstringarg(L, 1, "body", &n);
  if (!vx_pushpagenames(L, body, n)) lua_pushnil(L);
  return 1;
}
