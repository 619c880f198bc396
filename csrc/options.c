/* options.c: the option schema -- one table (vx_options) of every option: its name, type, range,
 * default, environment variable and doc line -- and what is made from it: the check of an options
 * table (vx_checkoptions, core.check_options: TypeError or ValueError before any I/O) and
 * core.OPTIONS, the same table for Lua (lua/vertexops/options.lua takes the defaults, the
 * environment variables and the merge rules from it; spec/03_options_schema_spec.lua checks the
 * LuaCATS fields of lua/vertexops/init.lua and the Options table of docs/contract.md against it).
 * To add an option: one entry here (ARCHITECTURE.md, "How to add an option"). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "vx.h"

/* How a value is checked. */
enum {
  VX_K_NUMBER,   /* a number in [lo, hi] (lo excluded with VX_O_LOOPEN), never NaN */
  VX_K_INTEGER,  /* an integer in [lo, hi] */
  VX_K_STRING,   /* a string (then check(), if any) */
  VX_K_CHOICE,   /* one of the strings of choices */
  VX_K_BOOLEAN,
  VX_K_FUNCTION,
  VX_K_TYPES,    /* a value of Lua type t1 or t2 (then check(), if any) */
  VX_K_FIELDS    /* a table of known fields, each with its own entry (fields); see VX_O_MERGE */
};

/* Flags. */
#define VX_O_LOOPEN 1u  /* lo itself is refused: > lo */
#define VX_O_FALSE 2u   /* VX_K_FIELDS: false is accepted too (retry = false: none) */
#define VX_O_MERGE 4u   /* VX_K_FIELDS: a call's table merges with its client's field by field */
#define VX_O_COPY 8u    /* a table value is copied (raw reads) before it is checked and used */
#define VX_O_PLANNED 16u /* a kind an open issue adds: not accepted yet ("unknown option") */

/* What a default is. */
enum { VX_D_NONE, VX_D_NUMBER, VX_D_INTEGER, VX_D_STRING, VX_D_BOOLEAN, VX_D_FIELDS };

typedef struct vx_option {
  const char *name;
  int kind;
  unsigned flags;
  double lo, hi;                    /* VX_K_NUMBER, VX_K_INTEGER */
  const char *const *choices;       /* VX_K_CHOICE: NULL-terminated, 2 or 3 of them */
  int t1, t2;                       /* VX_K_TYPES */
  const struct vx_option *fields;   /* VX_K_FIELDS: ends with a NULL name */
  void (*check)(lua_State *L, int idx, const struct vx_option *o); /* after the type's check */
  const char *label;                /* the name in messages when not name (a field's) */
  int def;                          /* VX_D_*; VX_D_FIELDS: the fields' defaults */
  double defnum;
  const char *defstr;
  const char *defdoc;               /* a default that is not a value (computed, "the chain") */
  const char *env;                  /* the environment variable that supplies it */
  const char *const *envchoices;    /* when the variable's type is not the option's: its values */
  const char *cats;                 /* its LuaCATS type */
  const char *doc;                  /* its doc line (LuaCATS) */
} vx_option;

/* --- checks --- */

static const char *vx_label(const vx_option *o) { return o->label ? o->label : o->name; }

/* Writes the number at idx for a message: a whole number as digits ("0", not Lua 5.4's "0.0"),
 * anything else with %.14g ("0.5", "1e+300"), alike on every interpreter. */
static const char *vx_numtext(lua_State *L, int idx, char *buf, size_t n) {
  double v = (double)lua_tonumber(L, idx);
#if LUA_VERSION_NUM >= 503
  if (lua_isinteger(L, idx)) {
    snprintf(buf, n, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(L, idx));
    return buf;
  }
#endif
  if (v == floor(v) && fabs(v) < 1e15) snprintf(buf, n, "%.0f", v);
  else snprintf(buf, n, "%.14g", v);
  return buf;
}

static void vx_checknumber(lua_State *L, int idx, const char *key, double lo, int lo_open,
                           double hi) {
  double v;
  char got[48], bound[48];
  if (lua_type(L, idx) != LUA_TNUMBER)
    vx_typeerror(L, "option '%s' must be a number, got %s", key, luaL_typename(L, idx));
  v = (double)lua_tonumber(L, idx);
  if (v != v) vx_valueerror(L, "option '%s' is NaN", key);
  if (lo_open ? v <= lo : v < lo) {
    snprintf(bound, sizeof bound, "%.14g", lo); /* bounds are short whole numbers */
    vx_valueerror(L, "option '%s' must be %s %s, got %s", key, lo_open ? ">" : ">=", bound,
                  vx_numtext(L, idx, got, sizeof got));
  }
  if (v > hi) {
    snprintf(bound, sizeof bound, "%.14g", hi);
    vx_valueerror(L, "option '%s' must be at most %s, got %s", key, bound,
                  vx_numtext(L, idx, got, sizeof got));
  }
}

static void vx_checktype(lua_State *L, int idx, const char *key, int t1, int t2) {
  int t = lua_type(L, idx);
  if (t != t1 && t != t2) {
    if (t2 != t1)
      vx_typeerror(L, "option '%s' must be a %s or %s, got %s", key, lua_typename(L, t1),
                   lua_typename(L, t2), luaL_typename(L, idx));
    vx_typeerror(L, "option '%s' must be a %s, got %s", key, lua_typename(L, t1),
                 luaL_typename(L, idx));
  }
}

static void vx_checkchoice(lua_State *L, int idx, const char *key, const char *const *choices) {
  const char *s;
  int i;
  vx_checktype(L, idx, key, LUA_TSTRING, LUA_TSTRING);
  s = lua_tostring(L, idx);
  for (i = 0; choices[i]; i++)
    if (strcmp(s, choices[i]) == 0) return;
  if (i == 2) vx_valueerror(L, "option '%s' must be \"%s\" or \"%s\"", key, choices[0], choices[1]);
  vx_valueerror(L, "option '%s' must be \"%s\", \"%s\" or \"%s\"", key, choices[0], choices[1],
                choices[2]);
}

static const vx_option *vx_findoption(const vx_option *list, const char *k) {
  for (; list->name; list++) /* the first byte before strcmp: a core.build looks up every key */
    if (list->name[0] == k[0] && !(list->flags & VX_O_PLANNED) && strcmp(list->name, k) == 0) return list;
  return NULL;
}

static void vx_checkvalue(lua_State *L, int idx, const vx_option *o);

/* A table of known fields (retry, polling): each checked by its own entry. */
static void vx_checkfields(lua_State *L, int idx, const vx_option *o) {
  const char *key = vx_label(o);
  if (lua_type(L, idx) == LUA_TBOOLEAN && (o->flags & VX_O_FALSE)) {
    if (!lua_toboolean(L, idx)) return;
    vx_valueerror(L, "option '%s' must be a table or false", key);
  }
  vx_checktype(L, idx, key, LUA_TTABLE, (o->flags & VX_O_FALSE) ? LUA_TBOOLEAN : LUA_TTABLE);
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    const vx_option *f;
    if (lua_type(L, -2) != LUA_TSTRING) vx_valueerror(L, "option '%s' has a key that is not a string", key);
    f = vx_findoption(o->fields, lua_tostring(L, -2));
    if (!f) vx_valueerror(L, "unknown key '%s' in option '%s'", lua_tostring(L, -2), key);
    vx_checkvalue(L, -1, f);
    lua_pop(L, 1);
  }
}

/* Checks the value at idx against entry o (raises TypeError or ValueError naming it). */
static void vx_checkvalue(lua_State *L, int idx, const vx_option *o) {
  const char *key = vx_label(o);
  switch (o->kind) {
    case VX_K_NUMBER: vx_checknumber(L, idx, key, o->lo, (o->flags & VX_O_LOOPEN) != 0, o->hi); break;
    case VX_K_INTEGER:
      if (!lua_isinteger(L, idx)) vx_typeerror(L, "option '%s' must be an integer", key);
      vx_checknumber(L, idx, key, o->lo, 0, o->hi);
      break;
    case VX_K_STRING: vx_checktype(L, idx, key, LUA_TSTRING, LUA_TSTRING); break;
    case VX_K_CHOICE: vx_checkchoice(L, idx, key, o->choices); break;
    case VX_K_BOOLEAN: vx_checktype(L, idx, key, LUA_TBOOLEAN, LUA_TBOOLEAN); break;
    case VX_K_FUNCTION: vx_checktype(L, idx, key, LUA_TFUNCTION, LUA_TFUNCTION); break;
    case VX_K_TYPES: vx_checktype(L, idx, key, o->t1, o->t2); break;
    case VX_K_FIELDS: vx_checkfields(L, idx, o); break;
  }
  if (o->check) o->check(L, lua_absindex(L, idx), o);
}

/* Extra checks of some options, after their type's. */
static void vx_checkendpointopt(lua_State *L, int idx, const vx_option *o) {
  (void)o;
  vx_checkendpoint(L, idx);
}

static void vx_checktokenopt(lua_State *L, int idx, const vx_option *o) {
  (void)o;
  if (lua_type(L, idx) == LUA_TSTRING && !vx_tokenok(lua_tostring(L, idx), lua_rawlen(L, idx)))
    vx_valueerror(L, "option 'token' is empty or contains a space, a control character or a "
                     "non-ASCII byte");
}

/* A string that goes into a header line as it is: printable ASCII only. */
static void vx_checkprintable(lua_State *L, int idx, const vx_option *o) {
  size_t n, i;
  const char *s = lua_tolstring(L, idx, &n);
  for (i = 0; i < n; i++)
    if ((unsigned char)s[i] < ' ' || (unsigned char)s[i] >= 0x7f)
      vx_valueerror(L, "option '%s' contains a control character or a non-ASCII byte", vx_label(o));
}

/* A service account's email (impersonate_service_account): NAME@DOMAIN of letters, digits and
 * '.', '_', '-' (it goes into a URL path as it is), one '@', at most 254 bytes. */
static void vx_checkemail(lua_State *L, int idx, const vx_option *o) {
  size_t n, i, at = 0, ats = 0;
  const char *s = lua_tolstring(L, idx, &n);
  int ok = n > 0 && n <= 254;
  for (i = 0; ok && i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '@') {
      ats++;
      at = i;
    } else if (!(VX_ISALNUM(c) || c == '.' || c == '_' || c == '-')) {
      ok = 0;
    }
  }
  if (!ok || ats != 1 || at == 0 || at == n - 1)
    vx_valueerror(L, "option '%s' must be a service account's email (NAME@PROJECT.iam.gserviceaccount.com)",
                  o->name);
}

/* An API key goes into a header line as it is: visible ASCII, no space (its value is never shown). */
static void vx_checkapikey(lua_State *L, int idx, const vx_option *o) {
  (void)o;
  if (!vx_tokenok(lua_tostring(L, idx), lua_rawlen(L, idx)))
    vx_valueerror(L, "option 'api_key' is empty or contains a space, a control character or a "
                     "non-ASCII byte");
}

/* A universe domain is a DNS name: labels of letters, digits and '-' (not at either end of a
 * label), joined by '.', at least two labels, at most 253 bytes (googleapis.com, s3nsapis.fr). */
static void vx_checkdomain(lua_State *L, int idx, const vx_option *o) {
  size_t n, i, label = 0;
  int labels = 1;
  const char *s = lua_tolstring(L, idx, &n);
  int ok = n > 0 && n <= 253;
  for (i = 0; ok && i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '.') {
      ok = label > 0 && s[i - 1] != '-';
      label = 0;
      labels++;
    } else if (VX_ISALNUM(c) || (c == '-' && label > 0)) {
      if (++label > 63) ok = 0;
    } else {
      ok = 0;
    }
  }
  if (!ok || label == 0 || s[n - 1] == '-' || labels < 2)
    vx_valueerror(L, "option '%s' must be a domain name such as googleapis.com (letters, digits, "
                     "'-' and '.')", o->name);
}

static void vx_checkdictname(lua_State *L, int idx, const vx_option *o) {
  if (lua_rawlen(L, idx) == 0)
    vx_valueerror(L, "option '%s' must name a lua_shared_dict", vx_label(o));
}

/* kind: "operations" or a collection of jobs (csrc/jobs.c's list). */
static void vx_checkkindopt(lua_State *L, int idx, const vx_option *o) {
  if (!vx_isjobkind(lua_tostring(L, idx)))
    vx_valueerror(L, "option '%s' must be \"operations\" or a collection of jobs (%s)", o->name,
                  vx_jobkinds_doc);
}

/* --- the schema --- */

#define VX_MAX_COUNT 100000.0 /* the bound of every count of things at once */

static const char *const vx_strategies[] = {"auto", "poll", "server", NULL};
static const char *const vx_wait_bys[] = {"auto", "list", "get", NULL};
static const char *const vx_transports[] = {"curl", "cosocket", "thread", NULL};
static const char *const vx_versions[] = {"v1beta1", "v1", NULL};
static const char *const vx_mtls_modes[] = {"auto", "never", "always", NULL};
static const char *const vx_levels[] = {"debug", "info", "warn", "error", NULL};

#define NUM(lo_, hi_) .kind = VX_K_NUMBER, .lo = (lo_), .hi = (hi_)
#define INT(lo_, hi_) .kind = VX_K_INTEGER, .lo = (lo_), .hi = (hi_)
#define DNUM(v) .def = VX_D_NUMBER, .defnum = (v)
#define DINT(v) .def = VX_D_INTEGER, .defnum = (v)
#define DSTR(v) .def = VX_D_STRING, .defstr = (v)
#define DBOOL(v) .def = VX_D_BOOLEAN, .defnum = (v)

/* The fields of retry and polling (a policy). */
static const vx_option vx_retry_fields[] = {
    {"max_retries", INT(0, 1000), .label = "retry.max_retries", DINT(5), .cats = "integer",
     .doc = "retries after the first attempt, 0-1000 (default 5)"},
    {"initial_delay", NUM(0, VX_MAX_TIMEOUT), DNUM(1), .cats = "number",
     .doc = "seconds before the first retry, >= 0 (default 1)"},
    {"multiplier", NUM(1, 1000), DNUM(1.25), .cats = "number",
     .doc = "growth of the delay per retry, 1-1000 (default 1.25)"},
    {"max_delay", NUM(0, VX_MAX_TIMEOUT), DNUM(60), .cats = "number",
     .doc = "cap of one delay in seconds (default 60)"},
    {.name = NULL}};

static const vx_option vx_polling_fields[] = {
    {"initial_delay", NUM(0, VX_MAX_TIMEOUT), .flags = VX_O_LOOPEN, DNUM(1), .cats = "number",
     .doc = "seconds before the second poll, > 0 (default 1)"},
    {"multiplier", NUM(1, 1000), DNUM(1.25), .cats = "number",
     .doc = "growth of the delay per poll, 1-1000 (default 1.25)"},
    {"max_delay", NUM(0, VX_MAX_TIMEOUT), .flags = VX_O_LOOPEN, DNUM(60), .cats = "number",
     .doc = "cap of one delay in seconds (default 60)"},
    {.name = NULL}};

/* hooks: functions called at points of a call (lua/vertexops/hooks.lua, docs/contract.md "Hooks");
 * a call's table runs after its client's (both run: not merged field by field). log: a function
 * whose environment variable has another type (VERTEXOPS_LOG: a level, logging to stderr). */
static const vx_option vx_hooks_fields[] = {
    {"on_call", .kind = VX_K_FUNCTION, .label = "hooks.on_call", .cats = "fun(info: table)",
     .doc = "at the start and end of a logical call"},
    {"on_attempt", .kind = VX_K_FUNCTION, .label = "hooks.on_attempt", .cats = "fun(info: table)",
     .doc = "before and after each HTTP exchange (may add request headers at its start)"},
    {"on_retry", .kind = VX_K_FUNCTION, .label = "hooks.on_retry", .cats = "fun(info: table)",
     .doc = "before each retry's delay: why and how long"},
    {"on_token", .kind = VX_K_FUNCTION, .label = "hooks.on_token", .cats = "fun(info: table)",
     .doc = "at the start and end of a token fetch (never the token)"},
    {"on_poll", .kind = VX_K_FUNCTION, .label = "hooks.on_poll", .cats = "fun(info: table)",
     .doc = "after each round of a wait"},
    {.name = NULL}};

static int vx_ishex(const char *s, size_t n, int *allzero) {
  size_t i;
  *allzero = 1;
  for (i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return 0;
    if (c != '0') *allzero = 0;
  }
  return 1;
}

/* W3C Trace Context's traceparent: version-traceid-parentid-flags in lowercase hex, the trace and
 * parent ids not all zeros, version ff refused; version 00 exactly 55 bytes, a later version may
 * go on after a '-' (https://www.w3.org/TR/trace-context/#traceparent-header). */
static void vx_checktraceparent(lua_State *L, int idx, const vx_option *o) {
  size_t n;
  const char *s = lua_tolstring(L, idx, &n);
  int z1, z2, z3, z4;
  int ok = n >= 55 && s[2] == '-' && s[35] == '-' && s[52] == '-' && vx_ishex(s, 2, &z1) &&
           vx_ishex(s + 3, 32, &z2) && vx_ishex(s + 36, 16, &z3) && vx_ishex(s + 53, 2, &z4) &&
           !z2 && !z3 && !(s[0] == 'f' && s[1] == 'f');
  (void)z1;
  (void)z4;
  if (ok && n > 55) ok = !(s[0] == '0' && s[1] == '0') && s[55] == '-';
  if (ok && n > 55) {
    size_t i;
    for (i = 56; i < n; i++)
      if ((unsigned char)s[i] < ' ' || (unsigned char)s[i] >= 0x7f) ok = 0;
  }
  if (!ok)
    vx_valueerror(L, "option '%s' must be a W3C traceparent (00-<32 hex trace id>-<16 hex parent id>-<2 hex "
                  "flags>, lowercase, ids not all zeros)", vx_label(o));
}

/* W3C Trace Context's tracestate: at most 512 bytes of printable ASCII (its list members are the
 * vendors' business; it is sent as it is). */
static void vx_checktracestate(lua_State *L, int idx, const vx_option *o) {
  size_t n;
  lua_tolstring(L, idx, &n);
  if (n > 512) vx_valueerror(L, "option '%s' is longer than 512 bytes", vx_label(o));
  vx_checkprintable(L, idx, o);
}

/* rate: at most `requests` requests in any `per` seconds per project and location (Google's
 * quotas are keyed so; lua/vertexops/rate.lua). requests has no default: a rate names it. */
static void vx_checkredisprefix(lua_State *L, int idx, const vx_option *o) {
  size_t n, i;
  const char *s = lua_tolstring(L, idx, &n);
  if (n == 0 || n > 200) vx_valueerror(L, "option '%s' must be 1 to 200 bytes", vx_label(o));
  for (i = 0; i < n; i++)
    if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f || s[i] == '{' || s[i] == '}')
      vx_valueerror(L, "option '%s' must be visible ASCII without '{' or '}'", vx_label(o));
}

static void vx_checkredishost(lua_State *L, int idx, const vx_option *o) {
  size_t n, i;
  const char *s = lua_tolstring(L, idx, &n);
  int ok = n > 0 && n <= 253;
  for (i = 0; ok && i < n; i++)
    if (!(VX_ISALNUM((unsigned char)s[i]) || s[i] == '.' || s[i] == '-' || s[i] == ':' || s[i] == '_'))
      ok = 0;
  if (!ok) vx_valueerror(L, "option '%s' must be a host name or an IP address", vx_label(o));
}

/* rate.redis: the Redis server where processes on many hosts share the window
 * (lua/vertexops/rate_redis.lua). */
static const vx_option vx_rate_redis_fields[] = {
    {"host", .kind = VX_K_STRING, .check = vx_checkredishost, .label = "rate.redis.host",
     DSTR("127.0.0.1"), .cats = "string", .doc = "the Redis server's host name or address (default 127.0.0.1)"},
    {"port", INT(1, 65535), .label = "rate.redis.port", DINT(6379), .cats = "integer",
     .doc = "its port, 1-65535 (default 6379)"},
    {"password", .kind = VX_K_STRING, .label = "rate.redis.password", .cats = "string",
     .doc = "sent with AUTH when given"},
    {"db", INT(0, 1e6), .label = "rate.redis.db", DINT(0), .cats = "integer",
     .doc = "the database, SELECTed when not 0 (default 0)"},
    {"prefix", .kind = VX_K_STRING, .check = vx_checkredisprefix, .label = "rate.redis.prefix",
     DSTR("vertexops:rate:"), .cats = "string", .doc = "the start of every key (default vertexops:rate:)"},
    {"timeout", NUM(0, 60), .flags = VX_O_LOOPEN, .label = "rate.redis.timeout", DNUM(0.5),
     .cats = "number", .doc = "seconds for a connect or an exchange, > 0, at most 60 (default 0.5)"},
    {"participants", INT(1, 1e6), .label = "rate.redis.participants", .cats = "integer",
     .doc = "sharers expected before Redis counted them (default 1; in nginx its workers)"},
    {.name = NULL}};

static const vx_option vx_rate_fields[] = {
    {"requests", INT(1, 1e6), .label = "rate.requests", .cats = "integer",
     .doc = "requests at most in any `per` seconds, 1-1e6 (required)"},
    {"per", NUM(0, 86400), .flags = VX_O_LOOPEN, .label = "rate.per", DNUM(60), .cats = "number",
     .doc = "the window in seconds, > 0, at most a day (default 60)"},
    {"shared_dict", .kind = VX_K_STRING, .check = vx_checkdictname, .label = "rate.shared_dict",
     .cats = "string", .doc = "inside nginx: the lua_shared_dict where workers share the window"},
    {"redis", .kind = VX_K_FIELDS, .fields = vx_rate_redis_fields, .label = "rate.redis",
     .cats = "vertexops.RateRedis", .doc = "the Redis server where processes on many hosts share the window"},
    {.name = NULL}};

static const vx_option vx_options[] = {
    {"endpoint", .kind = VX_K_STRING, .check = vx_checkendpointopt,
     .defdoc = "Google's host of the location", .env = "VERTEXOPS_ENDPOINT",
     .cats = "string", .doc = "URL template with {region} (env VERTEXOPS_ENDPOINT)"},
    {"universe_domain", .kind = VX_K_STRING, .check = vx_checkdomain, DSTR("googleapis.com"),
     .env = "GOOGLE_CLOUD_UNIVERSE_DOMAIN", .cats = "string",
     .doc = "domain of Google's hosts, the credentials' universe (env GOOGLE_CLOUD_UNIVERSE_DOMAIN)"},
    {"api_key", .kind = VX_K_STRING, .check = vx_checkapikey, .cats = "string",
     .doc = "express mode: sent as x-goog-api-key, no OAuth token (not with token or credentials)"},
    {"token", .kind = VX_K_TYPES, .t1 = LUA_TSTRING, .t2 = LUA_TFUNCTION, .check = vx_checktokenopt,
     .defdoc = "the credentials chain", .cats = "string|fun():string",
     .doc = "access token, or a function returning one"},
    {"credentials", .kind = VX_K_TYPES, .t1 = LUA_TSTRING, .t2 = LUA_TTABLE, .defdoc = "the chain",
     .cats = "string|vertexops.auth.Provider",
     .doc = "key-file path, or a provider from vertexops.auth.provider"},
    {"scopes", .kind = VX_K_TYPES, .t1 = LUA_TTABLE, .t2 = LUA_TSTRING, .flags = VX_O_COPY,
     .defdoc = "https://www.googleapis.com/auth/cloud-platform", .cats = "string|string[]",
     .doc = "OAuth scopes (default cloud-platform)"},
    {"self_signed_jwt", .kind = VX_K_BOOLEAN, .cats = "boolean",
     .defdoc = "true when calls go to Google's hosts (no endpoint), else false",
     .doc = "service account: send a self-signed JWT, no token exchange"},
    {"metadata_server", .kind = VX_K_BOOLEAN, DBOOL(1), .cats = "boolean",
     .doc = "false: the credential search skips the metadata server (so does env NO_GCE_CHECK=True)"},
    {"impersonate_service_account", .kind = VX_K_STRING, .check = vx_checkemail, .cats = "string",
     .doc = "the credentials found impersonate this service account (generateAccessToken)"},
    {"iam_endpoint", .kind = VX_K_STRING, .check = vx_checkendpointopt,
     .defdoc = "https://iamcredentials.{universe_domain}", .cats = "string",
     .doc = "IAM Credentials' origin for impersonate_service_account"},
    {"timeout", NUM(0, VX_MAX_TIMEOUT), .flags = VX_O_LOOPEN, DNUM(1800), .cats = "number",
     .doc = "end-to-end seconds of the call, > 0, at most a year (default 1800)"},
    {"request_timeout", NUM(0, VX_MAX_TIMEOUT), .flags = VX_O_LOOPEN, DNUM(VX_EXCHANGE_TIMEOUT),
     .cats = "number", .doc = "seconds of one HTTP exchange (default 60)"},
    {"connect_timeout", NUM(0, VX_MAX_TIMEOUT), .flags = VX_O_LOOPEN, DNUM(VX_CONNECT_TIMEOUT),
     .cats = "number", .doc = "seconds to connect (default 10)"},
    {"retry", .kind = VX_K_FIELDS, .flags = VX_O_FALSE | VX_O_MERGE | VX_O_COPY,
     .fields = vx_retry_fields, .def = VX_D_FIELDS, .cats = "vertexops.RetryPolicy|false",
     .doc = "any subset of the policy, or false: no retry"},
    {"polling", .kind = VX_K_FIELDS, .flags = VX_O_MERGE | VX_O_COPY, .fields = vx_polling_fields,
     .def = VX_D_FIELDS, .cats = "vertexops.PollingPolicy", .doc = "any subset of the policy"},
    {"strategy", .kind = VX_K_CHOICE, .choices = vx_strategies, DSTR("auto"),
     .cats = "\"auto\"|\"server\"|\"poll\"", .doc = "how wait polls (default \"auto\")"},
    {"progress", .kind = VX_K_FUNCTION, .cats = "fun(op: vertexops.Operation, info: vertexops.WaitInfo)",
     .doc = "called after every answer while waiting"},
    {"ca_file", .kind = VX_K_STRING, .defdoc = "system store", .env = "VERTEXOPS_CA_FILE", .cats = "string",
     .doc = "PEM bundle to trust instead of the system store (env VERTEXOPS_CA_FILE)"},
    {"user_project", .kind = VX_K_STRING, .check = vx_checkprintable,
     .defdoc = "the credentials file's quota_project_id", .env = "GOOGLE_CLOUD_QUOTA_PROJECT",
     .cats = "string", .doc = "sent as x-goog-user-project (env GOOGLE_CLOUD_QUOTA_PROJECT)"},
    {"sleep", .kind = VX_K_FUNCTION, .defdoc = "built in", .cats = "fun(seconds: number)",
     .doc = "how to wait (default: nanosleep, or ngx.sleep inside nginx)"},
    {"clock", .kind = VX_K_FUNCTION, .defdoc = "built in", .cats = "fun():number",
     .doc = "a monotonic clock in seconds"},
    {"filter", .kind = VX_K_STRING, .cats = "string", .doc = "list: a filter such as \"done=false\""},
    {"page_size", INT(1, 1e9), .cats = "integer", .doc = "list: operations per page, 1-1e9"},
    {"page_token", .kind = VX_K_STRING, .cats = "string", .doc = "list: the page to start from"},
    {"concurrency", INT(1, VX_MAX_COUNT), DINT(100), .cats = "integer",
     .doc = "cancel_many: cancels in flight at once (default 100)"},
    {"max_in_flight", INT(1, VX_MAX_COUNT), DINT(100), .cats = "integer",
     .doc = "cancel_all: requests in flight at once, cancels and the page fetch (default 100)"},
    {"wait", .kind = VX_K_BOOLEAN, DBOOL(0), .cats = "boolean",
     .doc = "cancel_all: then wait for the cancelled operations (default false)"},
    {"wait_by", .kind = VX_K_CHOICE, .choices = vx_wait_bys, DSTR("auto"),
     .cats = "\"auto\"|\"list\"|\"get\"", .doc = "cancel_all with wait: how it waits (default \"auto\")"},
    {"dry_run", .kind = VX_K_BOOLEAN, DBOOL(0), .cats = "boolean",
     .doc = "cancel_all: list what would be cancelled, send no cancel (default false)"},
    {"kind", .kind = VX_K_STRING, .check = vx_checkkindopt, DSTR("operations"), .cats = "string",
     .doc = "list, operations, cancel_all: what to list, \"operations\" or a collection of jobs such as \"customJobs\""},
    {"api_version", .kind = VX_K_CHOICE, .choices = vx_versions, DSTR("v1beta1"),
     .cats = "\"v1beta1\"|\"v1\"", .doc = "REST version of every URL (default \"v1beta1\")"},
    {"thread_pool", .kind = VX_K_STRING, DSTR("vertexops"), .cats = "string",
     .doc = "nginx thread pool of transport \"thread\" (default \"vertexops\")"},
    {"thread_pool_size", INT(1, VX_MAX_COUNT), DINT(100), .cats = "integer",
     .doc = "transport \"thread\": exchanges at once per nginx worker (default 100; the rest queue)"},
    {"shared_dict", .kind = VX_K_STRING, .check = vx_checkdictname, .cats = "string",
     .doc = "inside nginx: the lua_shared_dict where workers share access tokens"},
    {"transport", .kind = VX_K_CHOICE, .choices = vx_transports,
     .defdoc = "\"cosocket\" in nginx phases where cosockets work, \"curl\" elsewhere",
     .cats = "\"curl\"|\"cosocket\"|\"thread\"",
     .doc = "how exchanges go (default \"cosocket\" in nginx phases with cosockets, else \"curl\")"},
    {"pool_size", INT(1, VX_MAX_COUNT), DINT(30), .cats = "integer",
     .doc = "cosocket: idle connections kept per pool (default 30)"},
    {"pool_backlog", INT(0, VX_MAX_COUNT), .cats = "integer",
     .doc = "cosocket: connects queued past pool_size (default none)"},
    {"keepalive_timeout", NUM(0, VX_MAX_TIMEOUT), .flags = VX_O_LOOPEN, DNUM(60), .cats = "number",
     .doc = "cosocket: idle seconds of a pooled connection (default 60)"},
    {"proxy", .kind = VX_K_STRING, .check = vx_checkprintable, .cats = "string",
     .doc = "HTTPS proxy http://[user:password@]host:port, CONNECT (\"\": none; env https_proxy, HTTPS_PROXY)"},
    {"no_proxy", .kind = VX_K_STRING, .check = vx_checkprintable, .cats = "string", .doc = "hosts reached without the proxy: exact, .suffix, *, comma-separated (env no_proxy, NO_PROXY)"},
    {"client_cert", .kind = VX_K_STRING, .cats = "string",
     .doc = "PEM file of the client certificate (mTLS); read once per client"},
    {"client_key", .kind = VX_K_STRING, .defdoc = "the client_cert file", .cats = "string",
     .doc = "PEM file of the client certificate's private key (default: the client_cert file)"},
    {"mtls_endpoint", .kind = VX_K_CHOICE, .choices = vx_mtls_modes, DSTR("auto"),
     .env = "GOOGLE_API_USE_MTLS_ENDPOINT", .cats = "\"auto\"|\"never\"|\"always\"",
     .doc = "Google's mTLS hosts (env GOOGLE_API_USE_MTLS_ENDPOINT)"},
    {"rate", .kind = VX_K_FIELDS, .flags = VX_O_FALSE | VX_O_MERGE | VX_O_COPY,
     .fields = vx_rate_fields, .cats = "vertexops.Rate|false",
     .doc = "at most rate.requests requests in any rate.per seconds per project and location"},
    {"hooks", .kind = VX_K_FIELDS, .flags = VX_O_COPY, .fields = vx_hooks_fields, .cats = "vertexops.Hooks",
     .doc = "functions called at points of a call; a call's run after its client's"},
    {"traceparent", .kind = VX_K_STRING, .check = vx_checktraceparent, .cats = "string",
     .doc = "W3C trace context: sent as traceparent on every attempt"},
    {"tracestate", .kind = VX_K_STRING, .check = vx_checktracestate, .cats = "string",
     .doc = "W3C trace context: sent as tracestate on every attempt (with traceparent)"},
    {"log", .kind = VX_K_FUNCTION, .env = "VERTEXOPS_LOG", .envchoices = vx_levels,
     .cats = "fun(level: string, line: string)",
     .doc = "gets the log lines (env VERTEXOPS_LOG: a level, logging to stderr)"},
    {.name = NULL}};

/* Raises TypeError/ValueError for any bad key of the options at idx. */
void vx_checkoptions(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_isnoneornil(L, idx)) return;
  if (lua_type(L, idx) != LUA_TTABLE)
    vx_typeerror(L, "options must be a table, got %s", luaL_typename(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    const vx_option *o;
    if (lua_type(L, -2) != LUA_TSTRING) vx_valueerror(L, "option keys must be strings");
    o = vx_findoption(vx_options, lua_tostring(L, -2));
    if (!o) vx_valueerror(L, "unknown option '%s'", lua_tostring(L, -2));
    vx_checkvalue(L, -1, o);
    lua_pop(L, 1);
  }
  /* an API key is the credential: no other one beside it (google-genai's client refuses both) */
  if (vx_rawfield(L, idx, "api_key") != LUA_TNIL) {
    if (vx_rawfield(L, idx, "credentials") != LUA_TNIL)
      vx_valueerror(L, "options 'api_key' and 'credentials' cannot be used together");
    if (vx_rawfield(L, idx, "token") != LUA_TNIL)
      vx_valueerror(L, "options 'api_key' and 'token' cannot be used together");
    if (vx_rawfield(L, idx, "impersonate_service_account") != LUA_TNIL)
      vx_valueerror(L, "options 'api_key' and 'impersonate_service_account' cannot be used together");
    lua_pop(L, 3);
  }
  /* a token is used as it is: nothing would impersonate */
  if (vx_rawfield(L, idx, "impersonate_service_account") != LUA_TNIL) {
    if (vx_rawfield(L, idx, "token") != LUA_TNIL)
      vx_valueerror(L, "options 'token' and 'impersonate_service_account' cannot be used together");
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_pop(L, 1);
}

/* The default of option name when it is a string (api_version: core.build's), else NULL. */
const char *vx_optiondefault(const char *name) {
  const vx_option *o = vx_findoption(vx_options, name);
  return o && o->def == VX_D_STRING ? o->defstr : NULL;
}

/* core.check_options(opts) */
static int core_check_options(lua_State *L) {
  vx_checkoptions(L, 1);
  return 0;
}

/* --- core.OPTIONS: the schema as Lua tables --- */

static const char *const vx_kindnames[] = {"number", "integer", "string", "choice",
                                           "boolean", "function", "types", "fields"};

static void vx_pushstrings(lua_State *L, const char *const *list) {
  int i;
  lua_newtable(L);
  for (i = 0; list[i]; i++) {
    lua_pushstring(L, list[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

static void vx_setstring(lua_State *L, const char *k, const char *v) {
  if (!v) return;
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

static void vx_setflag(lua_State *L, const char *k, int on) {
  if (!on) return;
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, k);
}

static void vx_pushschema(lua_State *L, const vx_option *list);

/* A whole number as an integer (1800, not Lua 5.4's 1800.0), anything else as a float. */
static void vx_pushnum(lua_State *L, double v) {
  if (v == floor(v) && fabs(v) < 9007199254740992.0) lua_pushinteger(L, (lua_Integer)v);
  else lua_pushnumber(L, (lua_Number)v);
}

/* Pushes the default of o as a Lua value (nil when none). */
static void vx_pushdefault(lua_State *L, const vx_option *o) {
  const vx_option *f;
  switch (o->def) {
    case VX_D_NUMBER: vx_pushnum(L, o->defnum); break;
    case VX_D_INTEGER: lua_pushinteger(L, (lua_Integer)o->defnum); break;
    case VX_D_STRING: lua_pushstring(L, o->defstr); break;
    case VX_D_BOOLEAN: lua_pushboolean(L, o->defnum != 0); break;
    case VX_D_FIELDS:
      lua_newtable(L);
      for (f = o->fields; f->name; f++) {
        vx_pushdefault(L, f);
        lua_setfield(L, -2, f->name);
      }
      break;
    default: lua_pushnil(L);
  }
}

/* Pushes entry o: {name, type, min, max, min_open, choices, types, fields, merge, copy, default,
 * default_doc, env, env_choices, cats, doc, label, planned}. */
static void vx_pushentry(lua_State *L, const vx_option *o) {
  lua_newtable(L);
  vx_setstring(L, "name", o->name);
  vx_setstring(L, "type", vx_kindnames[o->kind]);
  if (o->kind == VX_K_NUMBER || o->kind == VX_K_INTEGER) {
    vx_pushnum(L, o->lo);
    lua_setfield(L, -2, "min");
    vx_pushnum(L, o->hi);
    lua_setfield(L, -2, "max");
    vx_setflag(L, "min_open", (o->flags & VX_O_LOOPEN) != 0);
  }
  if (o->choices) {
    vx_pushstrings(L, o->choices);
    lua_setfield(L, -2, "choices");
  }
  if (o->kind == VX_K_TYPES) {
    const char *types[3];
    types[0] = lua_typename(L, o->t1);
    types[1] = lua_typename(L, o->t2);
    types[2] = NULL;
    vx_pushstrings(L, types);
    lua_setfield(L, -2, "types");
  }
  if (o->fields) {
    vx_pushschema(L, o->fields);
    lua_setfield(L, -2, "fields");
  }
  vx_setflag(L, "false_ok", (o->flags & VX_O_FALSE) != 0);
  vx_setflag(L, "merge", (o->flags & VX_O_MERGE) != 0);
  vx_setflag(L, "copy", (o->flags & VX_O_COPY) != 0);
  vx_setflag(L, "planned", (o->flags & VX_O_PLANNED) != 0);
  vx_pushdefault(L, o);
  lua_setfield(L, -2, "default");
  vx_setstring(L, "default_doc", o->defdoc);
  vx_setstring(L, "env", o->env);
  if (o->envchoices) {
    vx_pushstrings(L, o->envchoices);
    lua_setfield(L, -2, "env_choices");
  }
  vx_setstring(L, "label", vx_label(o));
  vx_setstring(L, "cats", o->cats);
  vx_setstring(L, "doc", o->doc);
}

static void vx_pushschema(lua_State *L, const vx_option *list) {
  int i;
  lua_newtable(L);
  for (i = 0; list[i].name; i++) {
    vx_pushentry(L, &list[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

static const luaL_Reg options_funcs[] = {{"check_options", core_check_options}, {NULL, NULL}};

void vx_options_open(lua_State *L) {
  luaL_setfuncs(L, options_funcs, 0);
  vx_pushschema(L, vx_options);
  lua_setfield(L, -2, "OPTIONS");
  vx_pushnum(L, VX_EXCHANGE_TIMEOUT);
  lua_setfield(L, -2, "EXCHANGE_TIMEOUT");
  vx_pushnum(L, VX_CONNECT_TIMEOUT);
  lua_setfield(L, -2, "CONNECT_TIMEOUT");
}
