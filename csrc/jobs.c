/* jobs.c: the calls on Vertex jobs and on publisher models' operations, which are not
 * google.longrunning operations and have their own methods:
 *   a job (projects/P/locations/L/{customJobs,...}/ID): cancel is POST {name}:cancel with the
 *   empty request message {} (Google's clients send CancelCustomJobRequest & co as the body), get
 *   is GET {name}; there is no :wait (wait polls with GET) and vertexops does not delete jobs;
 *   an operation of a publisher model (projects/P/locations/L/publishers/X/models/M/operations/O,
 *   e.g. Veo's predictLongRunning): get is POST {model}:fetchPredictOperation with
 *   {"operationName": name}; there is no cancel, delete, :wait or list (of {model}/operations).
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

int vx_ispublisherop(const char *name, size_t n) {
  const char *seg[VX_SEGMAX];
  size_t seglen[VX_SEGMAX];
  int nseg = vx_split(name, n, seg, seglen);
  return nseg && vx_jobkind(seg, seglen, nseg) == 'm';
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

/* fetchPredictOperation's routing key is its request's field "endpoint" (the model), as Google's
 * clients send it: replaces request.c's "name=" line in the header list at hd. The model's bytes
 * are checked (unreserved and '/'), so only '/' needs escaping. */
static void vx_setrouting(lua_State *L, int hd, const char *model, size_t n) {
  static const char key[] = "x-goog-request-params:";
  size_t i;
  int k, nh = (int)lua_rawlen(L, hd);
  luaL_Buffer b;
  for (k = 1; k <= nh; k++) {
    lua_rawgeti(L, hd, k);
    if (strncmp(lua_tostring(L, -1), key, sizeof key - 1) == 0) {
      lua_pop(L, 1);
      luaL_buffinit(L, &b);
      luaL_addstring(&b, "x-goog-request-params: endpoint=");
      for (i = 0; i < n; i++) {
        if (model[i] == '/') luaL_addstring(&b, "%2F");
        else luaL_addchar(&b, model[i]);
      }
      luaL_pushresult(&b);
      lua_rawseti(L, hd, k);
      return;
    }
    lua_pop(L, 1);
  }
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

/* list with opts.kind a collection of jobs: GET {parent}/{kind}?filter=&pageSize=&pageToken=
 * (ListCustomJobsRequest & co: routed by "parent"). The parent is projects/P/locations/L. */
static int vx_buildjoblist(lua_State *L, const char *kind) {
  const char *seg[VX_SEGMAX], *parent, *version, *s;
  size_t seglen[VX_SEGMAX], plen, n;
  int nseg, t, hd, k, nh;
  char sep = '?';
  luaL_Buffer b;
  if (lua_type(L, 2) != LUA_TSTRING) return 0; /* core_build's TypeError */
  parent = lua_tolstring(L, 2, &plen);
  nseg = vx_split(parent, plen, seg, seglen);
  vx_checksegments(L, "parent", parent, plen, seg, seglen, nseg);
  if (nseg != 4 || !vx_segis(seg[0], seglen[0], "projects") || !vx_segis(seg[2], seglen[2], "locations"))
    vx_valueerror(L, "parent must look like projects/{project}/locations/{location} to list %s", kind);
  vx_pushcallparts(L, 2, 3, 4, seg[3], seglen[3], 0); /* 6 region, 7 base URL, 8 headers */
  hd = 8;
  nh = (int)lua_rawlen(L, hd);
  for (k = 1; k <= nh; k++) { /* the routing key: parent= */
    lua_rawgeti(L, hd, k);
    if (strncmp(lua_tostring(L, -1), "x-goog-request-params:", 22) == 0) {
      luaL_buffinit(L, &b);
      luaL_addstring(&b, "x-goog-request-params: parent=");
      vx_addquery(&b, parent, plen);
      luaL_pushresult(&b);
      lua_rawseti(L, hd, k);
    }
    lua_pop(L, 1);
  }
  lua_createtable(L, 0, 8); /* 9: request */
  t = lua_gettop(L);
  lua_pushliteral(L, "list");
  lua_setfield(L, t, "call");
  lua_pushliteral(L, "GET");
  lua_setfield(L, t, "method");
  lua_pushvalue(L, 6);
  lua_setfield(L, t, "region");
  lua_pushliteral(L, "jobs");
  lua_setfield(L, t, "kind");
  lua_pushstring(L, kind);
  lua_setfield(L, t, "collection");
  version = vx_rawfield(L, 4, "api_version") == LUA_TSTRING ? lua_tostring(L, -1) : vx_optiondefault("api_version");
  lua_pop(L, 1); /* the string stays referenced by the options table */
  /* the query's values, read before the buffer starts (10-12) */
  vx_rawfield(L, 4, "filter");
  vx_rawfield(L, 4, "page_size");
  vx_rawfield(L, 4, "page_token");
  luaL_buffinit(L, &b);
  lua_pushvalue(L, 7);
  luaL_addvalue(&b);
  luaL_addchar(&b, '/');
  luaL_addstring(&b, version);
  luaL_addchar(&b, '/');
  luaL_addlstring(&b, parent, plen);
  luaL_addchar(&b, '/');
  luaL_addstring(&b, kind);
  if (lua_type(L, t + 1) == LUA_TSTRING) {
    s = lua_tolstring(L, t + 1, &n);
    luaL_addchar(&b, sep);
    sep = '&';
    luaL_addstring(&b, "filter=");
    vx_addquery(&b, s, n);
  }
  if (lua_type(L, t + 2) == LUA_TNUMBER) {
    char num[40];
    snprintf(num, sizeof num, "%cpageSize=%lld", sep, (long long)lua_tonumber(L, t + 2));
    luaL_addstring(&b, num);
    sep = '&';
  }
  if (lua_type(L, t + 3) == LUA_TSTRING) {
    s = lua_tolstring(L, t + 3, &n);
    luaL_addchar(&b, sep);
    luaL_addstring(&b, "pageToken=");
    vx_addquery(&b, s, n);
  }
  luaL_pushresult(&b);
  lua_setfield(L, t, "url");
  lua_pushvalue(L, hd);
  lua_setfield(L, t, "headers");
  lua_settop(L, t);
  return 1;
}

/* core.build's hook (csrc/request.c): when argument 2 is the name of a job or of a publisher
 * model's operation and argument 1 a call this file answers, builds the request (as core_build
 * does, plus kind = "job" | "publisher_operation" and rules = "GET" for a read sent as POST) and
 * returns 1; otherwise returns 0 and changes nothing. A call those resources lack is a ValueError
 * saying why, before any I/O. */
int vx_buildjob(lua_State *L) {
  const char *seg[VX_SEGMAX], *name, *call, *version;
  size_t seglen[VX_SEGMAX], namelen;
  int n, kind, t, get, body;
  luaL_Buffer b;
  if (lua_type(L, 1) != LUA_TSTRING) return 0;
  call = lua_tostring(L, 1);
  if (strcmp(call, "list") == 0 && lua_type(L, 4) == LUA_TTABLE) {
    /* opts.kind: a collection of jobs is listed here (the options checked first, as core_build) */
    lua_settop(L, 5);
    vx_checkoptions(L, 4);
    if (vx_rawfield(L, 4, "kind") == LUA_TSTRING && vx_jobcollection(lua_tostring(L, -1)) >= 0) {
      const char *kind = lua_tostring(L, -1); /* referenced by the options table */
      lua_pop(L, 1);
      return vx_buildjoblist(L, kind);
    }
    lua_pop(L, 1);
  }
  if (lua_type(L, 2) != LUA_TSTRING) return 0;
  name = lua_tolstring(L, 2, &namelen);
  n = vx_split(name, namelen, seg, seglen);
  if (n == 8 && strcmp(call, "list") == 0 && vx_segis(seg[0], seglen[0], "projects") &&
      vx_segis(seg[2], seglen[2], "locations") && vx_segis(seg[4], seglen[4], "publishers") &&
      vx_segis(seg[6], seglen[6], "models"))
    vx_valueerror(L, "operations of publisher models cannot be listed: Vertex has no list method for "
                     "them (only fetchPredictOperation, which reads one by name)");
  kind = n ? vx_jobkind(seg, seglen, n) : 0;
  if (!kind || strcmp(call, "list") == 0) return 0; /* a job as a list parent: its operations */
  get = strcmp(call, "get") == 0;
  if (!get && strcmp(call, "cancel") != 0 && strcmp(call, "wait") != 0 && strcmp(call, "delete") != 0)
    return 0; /* core_build names the calls */
  lua_settop(L, 5);
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
  vx_checkoptions(L, 4);
  vx_checksegments(L, "name", name, namelen, seg, seglen, n);
  body = !get || kind == 'm'; /* a job's :cancel, a model's :fetchPredictOperation */
  vx_pushcallparts(L, 2, 3, 4, seg[3], seglen[3], body); /* 6 region, 7 base URL, 8 headers */

  if (kind == 'm') vx_setrouting(L, 8, name, (size_t)(seg[8] - name) - 1);

  lua_createtable(L, 0, 8); /* 9: request */
  t = lua_gettop(L);
  lua_pushstring(L, call);
  lua_setfield(L, t, "call");
  lua_pushstring(L, body ? "POST" : "GET");
  lua_setfield(L, t, "method");
  lua_pushvalue(L, 6);
  lua_setfield(L, t, "region");
  lua_pushstring(L, kind == 'j' ? "job" : "publisher_operation");
  lua_setfield(L, t, "kind");
  if (kind == 'm') {
    lua_pushliteral(L, "GET"); /* a read: retried as GETs are */
    lua_setfield(L, t, "rules");
  }
  version = NULL;
  if (!lua_isnoneornil(L, 4) && vx_rawfield(L, 4, "api_version") == LUA_TSTRING) version = lua_tostring(L, -1);
  if (!version) version = vx_optiondefault("api_version");
  /* the version string stays referenced by the options table (or is the schema's) */
  if (!lua_isnoneornil(L, 4)) lua_pop(L, 1);
  luaL_buffinit(L, &b);
  lua_pushvalue(L, 7);
  luaL_addvalue(&b);
  luaL_addchar(&b, '/');
  luaL_addstring(&b, version);
  luaL_addchar(&b, '/');
  if (kind == 'j') {
    luaL_addlstring(&b, name, namelen);
    if (!get) luaL_addstring(&b, ":cancel");
  } else {
    luaL_addlstring(&b, name, (size_t)(seg[8] - name) - 1); /* the model */
    luaL_addstring(&b, ":fetchPredictOperation");
  }
  luaL_pushresult(&b);
  lua_setfield(L, t, "url");
  lua_pushvalue(L, 8);
  lua_setfield(L, t, "headers");
  if (body) {
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
  lua_settop(L, t);
  return 1;
}
