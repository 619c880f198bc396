/* jobs.c: the calls on Vertex jobs and on publisher models' operations, which are not
 * google.longrunning operations and have their own methods:
 *   a job (projects/P/locations/L/{customJobs,...}/ID): cancel is POST {name}:cancel with the
 *   empty request message {} (Google's clients send CancelCustomJobRequest & co as the body), get
 *   is GET {name}; there is no :wait (wait polls with GET) and vertexops does not delete jobs;
 *   an operation of a publisher model (projects/P/locations/L/publishers/X/models/M/operations/O,
 *   e.g. Veo's predictLongRunning): get is POST {model}:fetchPredictOperation with
 *   {"operationName": name}; there is no cancel, delete or :wait.
 * core_build (csrc/request.c) asks vx_buildjob first; the region, base URL and header lines come
 * from request.c (vx_pushcallparts), so both kinds follow the same rules as operations. */
#include <stdio.h>
#include <string.h>

#include "vx.h"

/* The collections whose resources are jobs with JobState / PipelineState and a :cancel method. */
static const char *const vx_jobcollections[] = {
    "customJobs",          "hyperparameterTuningJobs", "nasJobs",      "dataLabelingJobs",
    "batchPredictionJobs", "trainingPipelines",        "pipelineJobs", "tuningJobs",
    NULL};

const char vx_jobkinds_doc[] = "customJobs, hyperparameterTuningJobs, nasJobs, dataLabelingJobs, "
                                "batchPredictionJobs, trainingPipelines, pipelineJobs, tuningJobs";

/* The index of kind in vx_jobcollections, or -1. */
static int vx_jobcollection(const char *kind) {
  int i;
  for (i = 0; kind && vx_jobcollections[i]; i++)
    if (strcmp(kind, vx_jobcollections[i]) == 0) return i;
  return -1;
}

int vx_isjobkind(const char *kind) {
  return kind && (strcmp(kind, "operations") == 0 || vx_jobcollection(kind) >= 0);
}

#define VX_SEGMAX 12

/* Splits s into at most VX_SEGMAX '/'-separated segments; returns their number, or 0 when there
 * are more (no shape of this file has that many). Checks nothing else. */
static int vx_split(const char *s, size_t len, const char **seg, size_t *seglen) {
  size_t i, start = 0;
  int n = 0;
  for (i = 0; i <= len; i++) {
    if (i == len || s[i] == '/') {
      if (n == VX_SEGMAX) return 0;
      seg[n] = s + start;
      seglen[n] = i - start;
      n++;
      start = i + 1;
    }
  }
  return n;
}

static int vx_segis(const char *seg, size_t n, const char *lit) {
  return strlen(lit) == n && memcmp(seg, lit, n) == 0;
}

/* The kind of a name: 'j' a job, 'm' an operation of a publisher model, 0 anything else. */
static int vx_jobkind(const char *const *seg, const size_t *seglen, int n) {
  int i;
  if (n < 6 || !vx_segis(seg[0], seglen[0], "projects") || !vx_segis(seg[2], seglen[2], "locations"))
    return 0;
  if (n == 6) {
    for (i = 0; vx_jobcollections[i]; i++)
      if (vx_segis(seg[4], seglen[4], vx_jobcollections[i])) return 'j';
    return 0;
  }
  if (n == 10 && vx_segis(seg[4], seglen[4], "publishers") && vx_segis(seg[6], seglen[6], "models") &&
      vx_segis(seg[8], seglen[8], "operations"))
    return 'm';
  return 0;
}

/* Segment rules of every resource name (request.c's): letters, digits and - _ . ~, no empty,
 * '.' or '..' segment, at most VX_MAX_NAME bytes. */
static void vx_checksegments(lua_State *L, const char *what, const char *s, size_t len,
                             const char *const *seg, const size_t *seglen, int n) {
  size_t i;
  int k;
  if (len > VX_MAX_NAME) vx_valueerror(L, "%s is longer than %d bytes", what, VX_MAX_NAME);
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!(VX_ISALNUM(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/')) {
      char hex[8];
      snprintf(hex, sizeof hex, "0x%02X", (unsigned)c);
      vx_valueerror(L, "%s contains byte %s; resource names are letters, digits and - _ . ~", what, hex);
    }
  }
  for (k = 0; k < n; k++) {
    if (seglen[k] == 0) vx_valueerror(L, "%s has an empty segment", what);
    if ((seglen[k] == 1 && seg[k][0] == '.') || (seglen[k] == 2 && memcmp(seg[k], "..", 2) == 0))
      vx_valueerror(L, "%s has a '.' or '..' segment", what);
  }
}

/* Appends the JSON string s (the name's bytes are checked: no quote, backslash or control). */
static void vx_addjsonname(luaL_Buffer *b, const char *s, size_t n) {
  luaL_addchar(b, '"');
  luaL_addlstring(b, s, n);
  luaL_addchar(b, '"');
}

/* Appends s percent-encoded (everything but RFC 3986 unreserved), as request.c's list query. */
static void vx_addquery(luaL_Buffer *b, const char *s, size_t n) {
  static const char hex[] = "0123456789ABCDEF";
  size_t i;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (VX_ISALNUM(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      luaL_addchar(b, (char)c);
    } else {
      luaL_addchar(b, '%');
      luaL_addchar(b, hex[c >> 4]);
      luaL_addchar(b, hex[c & 15]);
    }
  }
}

/* The routing key: replaces request.c's "x-goog-request-params: name=" line in the header list
 * at hd by field=value, the value percent-encoded (a checked name: only its '/' changes). */
static void vx_setrouting(lua_State *L, int hd, const char *field, const char *s, size_t n) {
  static const char key[] = "x-goog-request-params:";
  int k, nh = (int)lua_rawlen(L, hd);
  luaL_Buffer b;
  for (k = 1; k <= nh; k++) {
    lua_rawgeti(L, hd, k);
    if (strncmp(lua_tostring(L, -1), key, sizeof key - 1) == 0) {
      lua_pop(L, 1);
      luaL_buffinit(L, &b);
      luaL_addstring(&b, "x-goog-request-params: ");
      luaL_addstring(&b, field);
      luaL_addchar(&b, '=');
      vx_addquery(&b, s, n);
      luaL_pushresult(&b);
      lua_rawseti(L, hd, k);
      return;
    }
    lua_pop(L, 1);
  }
}

/* Pushes the request table (at 9) with call, method, kind and the region at 6. */
static int vx_newrequest(lua_State *L, const char *call, const char *method, const char *kind) {
  int t;
  lua_createtable(L, 0, 8);
  t = lua_gettop(L);
  lua_pushstring(L, call);
  lua_setfield(L, t, "call");
  lua_pushstring(L, method);
  lua_setfield(L, t, "method");
  lua_pushvalue(L, 6);
  lua_setfield(L, t, "region");
  lua_pushstring(L, kind);
  lua_setfield(L, t, "kind");
  return t;
}

/* The REST version of the options at 4 (nil or a checked table); the string stays referenced
 * by the options table (or is the schema's). */
static const char *vx_jobversion(lua_State *L) {
  const char *version = NULL;
  if (!lua_isnoneornil(L, 4)) {
    if (vx_rawfield(L, 4, "api_version") == LUA_TSTRING) version = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  return version ? version : vx_optiondefault("api_version");
}

/* Appends the base URL (at 7), "/", version and "/". */
static void vx_addbase(lua_State *L, luaL_Buffer *b, const char *version) {
  lua_pushvalue(L, 7);
  luaL_addvalue(b);
  luaL_addchar(b, '/');
  luaL_addstring(b, version);
  luaL_addchar(b, '/');
}

/* The query of a job list: the options' values, left on the stack (3 slots) by vx_readjobquery
 * before a buffer starts. */
typedef struct {
  const char *filter, *ptoken;
  size_t flen, plen;
  int haspsize;
  long long psize;
} vx_jobquery;

static void vx_readjobquery(lua_State *L, vx_jobquery *q) {
  memset(q, 0, sizeof *q);
  if (vx_rawfield(L, 4, "filter") == LUA_TSTRING) q->filter = lua_tolstring(L, -1, &q->flen);
  if (vx_rawfield(L, 4, "page_size") == LUA_TNUMBER) {
    q->haspsize = 1;
    q->psize = (long long)lua_tonumber(L, -1);
  }
  if (vx_rawfield(L, 4, "page_token") == LUA_TSTRING) q->ptoken = lua_tolstring(L, -1, &q->plen);
}

/* Appends ?filter=..&pageSize=..&pageToken=.. (escaped), the parts that are set. */
static void vx_addjobquery(luaL_Buffer *b, const vx_jobquery *q) {
  char sep = '?';
  if (q->filter) {
    luaL_addchar(b, sep);
    sep = '&';
    luaL_addstring(b, "filter=");
    vx_addquery(b, q->filter, q->flen);
  }
  if (q->haspsize) {
    char num[40];
    snprintf(num, sizeof num, "%cpageSize=%lld", sep, q->psize);
    luaL_addstring(b, num);
    sep = '&';
  }
  if (q->ptoken) {
    luaL_addchar(b, sep);
    luaL_addstring(b, "pageToken=");
    vx_addquery(b, q->ptoken, q->plen);
  }
}

/* The parent of a job list (argument 2, a string): the segment rules and the shape
 * projects/P/locations/L, else a ValueError naming kind. Fills seg (the location is seg[3]). */
static const char *vx_checkparent(lua_State *L, const char *kind, size_t *plen, const char **seg,
                                  size_t *seglen) {
  const char *parent = lua_tolstring(L, 2, plen);
  int nseg = vx_split(parent, *plen, seg, seglen);
  vx_checksegments(L, "parent", parent, *plen, seg, seglen, nseg);
  if (nseg != 4 || !vx_segis(seg[0], seglen[0], "projects") || !vx_segis(seg[2], seglen[2], "locations"))
    vx_valueerror(L, "parent must look like projects/{project}/locations/{location} to list %s", kind);
  return parent;
}

/* list with opts.kind a collection of jobs: GET {parent}/{kind}?filter=&pageSize=&pageToken=
 * (ListCustomJobsRequest & co: routed by "parent"). The parent is projects/P/locations/L. */
static int vx_buildjoblist(lua_State *L, const char *kind) {
  const char *seg[VX_SEGMAX], *parent, *version;
  size_t seglen[VX_SEGMAX], plen;
  int t;
  vx_jobquery q;
  luaL_Buffer b;
  if (lua_type(L, 2) != LUA_TSTRING) return 0; /* core_build's TypeError */
  parent = vx_checkparent(L, kind, &plen, seg, seglen);
  vx_pushcallparts(L, 2, 3, 4, seg[3], seglen[3], 0); /* 6 region, 7 base URL, 8 headers */
  vx_setrouting(L, 8, "parent", parent, plen);
  t = vx_newrequest(L, "list", "GET", "jobs"); /* 9 */
  lua_pushstring(L, kind);
  lua_setfield(L, t, "collection");
  version = vx_jobversion(L);
  vx_readjobquery(L, &q); /* 10-12 */
  luaL_buffinit(L, &b);
  vx_addbase(L, &b, version);
  luaL_addlstring(&b, parent, plen);
  luaL_addchar(&b, '/');
  luaL_addstring(&b, kind);
  vx_addjobquery(&b, &q);
  luaL_pushresult(&b);
  lua_setfield(L, t, "url");
  lua_pushvalue(L, 8);
  lua_setfield(L, t, "headers");
  lua_settop(L, t);
  return 1;
}

/* The kind of jobs a list's options (argument 4, a table) ask for with opts.kind, or NULL; the
 * options are checked first, as core_build does. The string stays referenced by the options. */
static const char *vx_listjobkind(lua_State *L) {
  const char *kind = NULL;
  lua_settop(L, 5);
  vx_checkoptions(L, 4);
  if (vx_rawfield(L, 4, "kind") == LUA_TSTRING && vx_jobcollection(lua_tostring(L, -1)) >= 0)
    kind = lua_tostring(L, -1);
  lua_pop(L, 1);
  return kind;
}

/* Raises the ValueError of a call a job ('j') or a publisher model's operation ('m') lacks. */
static void vx_checkjobcall(lua_State *L, int kind, const char *call) {
  int get = strcmp(call, "get") == 0;
  if (kind == 'j') {
    if (strcmp(call, "wait") == 0)
      vx_valueerror(L, "jobs have no :wait method (only operations do); wait() polls a job with GET");
    if (strcmp(call, "delete") == 0)
      vx_valueerror(L, "vertexops does not delete jobs (a job's DELETE removes the job itself); "
                       "cancel, get and wait take job names");
  } else {
    if (strcmp(call, "wait") == 0)
      vx_valueerror(L, "operations of publisher models have no :wait method (only "
                       "fetchPredictOperation); wait() polls them");
    if (!get)
      vx_valueerror(L, "operations of publisher models have no %s method: Vertex serves only "
                       "fetchPredictOperation (read) for them, so they cannot be %s",
                    call, strcmp(call, "cancel") == 0 ? "cancelled" : "deleted");
  }
}

/* Sets t.url: a job's {name} or {name}:cancel, a model's {model}:fetchPredictOperation (the
 * model is the name's first mlen bytes). */
static void vx_setjoburl(lua_State *L, int t, int kind, int get, const char *name, size_t namelen,
                         size_t mlen) {
  const char *version = vx_jobversion(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  vx_addbase(L, &b, version);
  if (kind == 'j') {
    luaL_addlstring(&b, name, namelen);
    if (!get) luaL_addstring(&b, ":cancel");
  } else {
    luaL_addlstring(&b, name, mlen);
    luaL_addstring(&b, ":fetchPredictOperation");
  }
  luaL_pushresult(&b);
  lua_setfield(L, t, "url");
}

/* Sets t.body: {} for a job's :cancel, {"operationName": name} for fetchPredictOperation. */
static void vx_setjobbody(lua_State *L, int t, int kind, const char *name, size_t namelen) {
  luaL_Buffer b;
  if (kind == 'j') {
    lua_pushliteral(L, "{}");
  } else {
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "{\"operationName\":");
    vx_addjsonname(&b, name, namelen);
    luaL_addchar(&b, '}');
    luaL_pushresult(&b);
  }
  lua_setfield(L, t, "body");
}

/* core.build's hook (csrc/request.c): when argument 2 is the name of a job or of a publisher
 * model's operation and argument 1 a call this file answers, builds the request (as core_build
 * does, plus kind = "job" | "publisher_operation" and rules = "GET" for a read sent as POST) and
 * returns 1; otherwise returns 0 and changes nothing. A call those resources lack is a ValueError
 * saying why, before any I/O. */
int vx_buildjob(lua_State *L) {
  const char *seg[VX_SEGMAX], *name, *call, *kindname;
  size_t seglen[VX_SEGMAX], namelen, mlen;
  int n, kind, t, get, body;
  if (lua_type(L, 1) != LUA_TSTRING) return 0;
  call = lua_tostring(L, 1);
  if (strcmp(call, "list") == 0 && lua_type(L, 4) == LUA_TTABLE && (kindname = vx_listjobkind(L)) != NULL)
    return vx_buildjoblist(L, kindname); /* opts.kind: a collection of jobs */
  if (lua_type(L, 2) != LUA_TSTRING) return 0;
  name = lua_tolstring(L, 2, &namelen);
  n = vx_split(name, namelen, seg, seglen);
  kind = n ? vx_jobkind(seg, seglen, n) : 0;
  if (!kind || strcmp(call, "list") == 0) return 0; /* a job as a list parent: its operations */
  get = strcmp(call, "get") == 0;
  if (!get && strcmp(call, "cancel") != 0 && strcmp(call, "wait") != 0 && strcmp(call, "delete") != 0)
    return 0; /* core_build names the calls */
  lua_settop(L, 5);
  vx_checkjobcall(L, kind, call);
  vx_checkoptions(L, 4);
  vx_checksegments(L, "name", name, namelen, seg, seglen, n);
  body = !get || kind == 'm'; /* a job's :cancel, a model's :fetchPredictOperation */
  vx_pushcallparts(L, 2, 3, 4, seg[3], seglen[3], body); /* 6 region, 7 base URL, 8 headers */
  mlen = kind == 'm' ? (size_t)(seg[8] - name) - 1 : 0;
  if (kind == 'm') vx_setrouting(L, 8, "endpoint", name, mlen);

  t = vx_newrequest(L, call, body ? "POST" : "GET", kind == 'j' ? "job" : "publisher_operation"); /* 9 */
  if (kind == 'm') {
    lua_pushliteral(L, "GET"); /* a read: retried as GETs are */
    lua_setfield(L, t, "rules");
  }
  vx_setjoburl(L, t, kind, get, name, namelen, mlen);
  lua_pushvalue(L, 8);
  lua_setfield(L, t, "headers");
  if (body) vx_setjobbody(L, t, kind, name, namelen);
  lua_settop(L, t);
  return 1;
}
