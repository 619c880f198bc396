/* jobs.c: the calls on Vertex jobs and on publisher models' operations, which are not
 * google.longrunning operations and have their own methods:
 *   a job (projects/P/locations/L/{customJobs,...}/ID): cancel is POST {name}:cancel with the
 *   empty request message {} (Google's clients send CancelCustomJobRequest & co as the body), get
 *   is GET {name}; there is no :wait (wait polls with GET) and vertexops does not delete jobs;
 *   an operation of a publisher model (projects/P/locations/L/publishers/X/models/M/operations/O,
 *   e.g. Veo's predictLongRunning): get is POST {model}:fetchPredictOperation with
 *   {"operationName": name}; there is no cancel, delete, :wait or list (of {model}/operations).
 * core_build (csrc/request.c) asks vx_buildjob first; the name's checks, the region, base URL,
 * header lines, request table and URL come from request.c (vx_checkpath, vx_pushcallparts,
 * vx_newrequest, vx_pushurl), so both kinds follow the same rules as operations. A job's cancel
 * and get whose checks all pass are built by request.c's vx_fastbuild instead (core.build_many's
 * path: the same request, field by field), which asks vx_isjobkind what a collection of jobs is. */
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

/* Appends the JSON string s (the name's bytes are checked: no quote, backslash or control). */
static void vx_addjsonname(luaL_Buffer *b, const char *s, size_t n) {
  luaL_addchar(b, '"');
  luaL_addlstring(b, s, n);
  luaL_addchar(b, '"');
}

/* list with opts.kind a collection of jobs: GET {parent}/{kind}?filter=&pageSize=&pageToken=
 * (ListCustomJobsRequest & co: routed by "parent"). The parent is projects/P/locations/L. */
static int vx_buildjoblist(lua_State *L, const char *kind) {
  const char *seg[VX_SEGMAX], *parent;
  size_t seglen[VX_SEGMAX], plen;
  int nseg, t;
  if (lua_type(L, 2) != LUA_TSTRING) return 0; /* core_build's TypeError */
  parent = lua_tolstring(L, 2, &plen);
  nseg = vx_checkpath(L, "parent", parent, plen, seg, seglen, VX_SEGMAX);
  if (nseg != 4 || !vx_segis(seg[0], seglen[0], "projects") || !vx_segis(seg[2], seglen[2], "locations"))
    vx_valueerror(L, "parent must look like projects/{project}/locations/{location} to list %s", kind);
  /* 6 region, 7 base URL, 8 headers (routed by "parent") */
  vx_pushcallparts(L, 3, 4, seg[3], seglen[3], 0, "parent", parent, plen);
  t = vx_newrequest(L, "list", "GET", 6); /* 9: request */
  lua_pushliteral(L, "jobs");
  lua_setfield(L, t, "kind");
  lua_pushstring(L, kind);
  lua_setfield(L, t, "collection");
  vx_pushurl(L, 7, 4, parent, plen, NULL, kind);
  lua_setfield(L, t, "url");
  lua_pushvalue(L, 8);
  lua_setfield(L, t, "headers");
  lua_settop(L, t);
  return 1;
}

/* core.build's hook (csrc/request.c): when argument 2 is the name of a job or of a publisher
 * model's operation and argument 1 a call this file answers, builds the request (as core_build
 * does, plus kind = "job" | "publisher_operation" and rules = "GET" for a read sent as POST) and
 * returns 1; otherwise returns 0 and changes nothing. A call those resources lack is a ValueError
 * saying why, before any I/O. */
/* A list of a collection of jobs (opts.kind): its kind, or NULL (the options checked first, as
 * core_build does). The string stays referenced by the options table. */
static const char *vx_listedkind(lua_State *L) {
  const char *kind = NULL;
  lua_settop(L, 5);
  vx_checkoptions(L, 4);
  if (vx_rawfield(L, 4, "kind") == LUA_TSTRING && vx_jobcollection(lua_tostring(L, -1)) >= 0)
    kind = lua_tostring(L, -1);
  lua_pop(L, 1);
  return kind;
}

/* Raises the ValueError of a call a job (kind 'j') or a publisher model's operation ('m') lacks. */
static void vx_checkjobcall(lua_State *L, int kind, const char *call, int get) {
  if (kind == 'j') {
    if (strcmp(call, "wait") == 0)
      vx_valueerror(L, "jobs have no :wait method (only operations do); wait() polls a job with GET");
    if (strcmp(call, "delete") == 0)
      vx_valueerror(L, "vertexops does not delete jobs (a job's DELETE removes the job itself); "
                       "cancel, get and wait take job names");
    return;
  }
  if (strcmp(call, "wait") == 0)
    vx_valueerror(L, "operations of publisher models have no :wait method (only "
                     "fetchPredictOperation); wait() polls them");
  if (!get)
    vx_valueerror(L, "operations of publisher models have no %s method: Vertex serves only "
                     "fetchPredictOperation (read) for them, so they cannot be %s",
                  call, strcmp(call, "cancel") == 0 ? "cancelled" : "deleted");
}

/* Pushes the JSON body of a job's :cancel ({}) or a model's :fetchPredictOperation. */
static void vx_pushjobbody(lua_State *L, int kind, const char *name, size_t namelen) {
  luaL_Buffer b;
  if (kind == 'j') {
    lua_pushliteral(L, "{}");
    return;
  }
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "{\"operationName\":");
  vx_addjsonname(&b, name, namelen);
  luaL_addchar(&b, '}');
  luaL_pushresult(&b);
}

int vx_buildjob(lua_State *L) {
  const char *seg[VX_SEGMAX], *name, *call;
  size_t seglen[VX_SEGMAX], namelen, model;
  int n, kind, t, get, body;
  if (lua_type(L, 1) != LUA_TSTRING) return 0;
  call = lua_tostring(L, 1);
  if (strcmp(call, "list") == 0 && lua_type(L, 4) == LUA_TTABLE) {
    const char *listed = vx_listedkind(L);
    if (listed) return vx_buildjoblist(L, listed);
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
  vx_checkjobcall(L, kind, call, get);
  vx_checkoptions(L, 4);
  vx_checkpath(L, "name", name, namelen, seg, seglen, VX_SEGMAX);
  body = !get || kind == 'm'; /* a job's :cancel, a model's :fetchPredictOperation */
  model = (size_t)(seg[8] - name) - 1; /* a publisher model's operation: the model's length */
  /* 6 region, 7 base URL, 8 headers: fetchPredictOperation's routing key is its request's field
   * "endpoint" (the model), as Google's clients send it; a job's is "name" */
  if (kind == 'm') vx_pushcallparts(L, 3, 4, seg[3], seglen[3], body, "endpoint", name, model);
  else vx_pushcallparts(L, 3, 4, seg[3], seglen[3], body, "name", name, namelen);
  t = vx_newrequest(L, call, body ? "POST" : "GET", 6); /* 9: request */
  lua_pushstring(L, kind == 'j' ? "job" : "publisher_operation");
  lua_setfield(L, t, "kind");
  if (kind == 'm') {
    lua_pushliteral(L, "GET"); /* a read: retried as GETs are */
    lua_setfield(L, t, "rules");
  }
  if (kind == 'j') vx_pushurl(L, 7, 4, name, namelen, get ? NULL : ":cancel", NULL);
  else vx_pushurl(L, 7, 4, name, model, ":fetchPredictOperation", NULL);
  lua_setfield(L, t, "url");
  lua_pushvalue(L, 8);
  lua_setfield(L, t, "headers");
  if (body) {
    vx_pushjobbody(L, kind, name, namelen);
    lua_setfield(L, t, "body");
  }
  lua_settop(L, t);
  return 1;
}
