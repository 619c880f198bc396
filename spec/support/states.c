/*
 * Several Lua states at once, as nginx worker threads or a host with many VMs have them: each
 * thread makes its own lua_State, loads vertexops and cancels through its own client, all at the
 * same time. Built by `make build`; run by spec/09_hosts_lua_states_spec.lua against the fake server.
 *
 *   states-test ENDPOINT CA_FILE OPERATION_NAME THREADS CALLS
 * prints one line per thread, "state N: CALLS cancels, C connections", and exits 0 if all succeeded.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

typedef struct {
  int id, calls, ok;
  const char *endpoint, *ca, *name;
  char out[512];
} job;

static const char *SCRIPT =
    "local endpoint, ca, name, calls = ...\n"
    "local vertexops = require 'vertexops'\n"
    "local c = vertexops.client { endpoint = endpoint, ca_file = ca, token = 'test-token' }\n"
    "for _ = 1, calls do assert(c:cancel(name)) end\n"
    "local connects = c:stats().connects\n"
    "c:close()\n"
    "return connects\n";

static void *run(void *arg) {
  job *j = arg;
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  if (luaL_loadstring(L, SCRIPT) != LUA_OK) {
    snprintf(j->out, sizeof j->out, "state %d: %s", j->id, lua_tostring(L, -1));
  } else {
    lua_pushstring(L, j->endpoint);
    lua_pushstring(L, j->ca);
    lua_pushstring(L, j->name);
    lua_pushinteger(L, j->calls);
    if (lua_pcall(L, 4, 1, 0) != LUA_OK) {
      snprintf(j->out, sizeof j->out, "state %d: %s", j->id, luaL_tolstring(L, -1, NULL));
    } else {
      snprintf(j->out, sizeof j->out, "state %d: %d cancels, %d connections", j->id, j->calls,
               (int)lua_tointeger(L, -1));
      j->ok = 1;
    }
  }
  lua_close(L);
  return NULL;
}

int main(int argc, char **argv) {
  int n, i, failed = 0;
  pthread_t *threads;
  job *jobs;
  if (argc != 6) {
    fprintf(stderr, "usage: %s ENDPOINT CA_FILE NAME THREADS CALLS\n", argv[0]);
    return 2;
  }
  n = atoi(argv[4]);
  threads = calloc((size_t)n, sizeof *threads);
  jobs = calloc((size_t)n, sizeof *jobs);
  if (!threads || !jobs) return 1;
  for (i = 0; i < n; i++) {
    jobs[i].id = i + 1;
    jobs[i].endpoint = argv[1];
    jobs[i].ca = argv[2];
    jobs[i].name = argv[3];
    jobs[i].calls = atoi(argv[5]);
    if (pthread_create(&threads[i], NULL, run, &jobs[i]) != 0) return 1;
  }
  for (i = 0; i < n; i++) {
    pthread_join(threads[i], NULL);
    puts(jobs[i].out);
    if (!jobs[i].ok) failed++;
  }
  free(threads);
  free(jobs);
  return failed ? 1 : 0;
}
