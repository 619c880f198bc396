/* redis.c: core.redis -- a connection to a Redis server through libhiredis (Debian's
 * libhiredis-dev), for option rate.redis outside nginx (lua/vertexops/rate_redis.lua; inside
 * nginx that file speaks RESP over a cosocket instead). Blocking, every step bounded: the connect
 * and each command by the timeout given (seconds; the caller passes what is left of the call's
 * deadline when that is less). A command runs with SIGPIPE blocked (a write to a server that went
 * away is an I/O error, not the end of the process) and a pending SIGPIPE it caused is consumed.
 * After an I/O error the connection is closed: the caller connects again. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "vx.h"

#define VX_REDIS_MT "vertexops.redis"
#define VX_REDIS_MAXARGS 32  /* arguments of one command */
#define VX_REDIS_MAXDEPTH 4  /* nesting of arrays in a reply */

typedef struct {
  redisContext *c;
} vx_redis;

static struct timeval vx_tv(lua_State *L, int idx) {
  struct timeval tv;
  double s = luaL_checknumber(L, idx);
  if (!(s > 0)) s = 0.001;
  if (s > 86400) s = 86400;
  tv.tv_sec = (time_t)floor(s);
  tv.tv_usec = (suseconds_t)((s - floor(s)) * 1e6);
  if (tv.tv_sec == 0 && tv.tv_usec == 0) tv.tv_usec = 1000;
  return tv;
}

/* nil, message, kind ("io": the connection is unusable; "reply": the server answered an error) */
static int vx_redisfail(lua_State *L, const char *msg, const char *kind) {
  lua_pushnil(L);
  lua_pushstring(L, msg);
  lua_pushstring(L, kind);
  return 3;
}

static void vx_redisfree(vx_redis *u) {
  if (u->c) {
    redisFree(u->c);
    u->c = NULL;
  }
}

/* core.redis(host, port, timeout) -> a connection, or nil and why */
static int core_redis(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  int port = (int)luaL_checkinteger(L, 2);
  struct timeval tv = vx_tv(L, 3);
  vx_redis *u = lua_newuserdata(L, sizeof *u);
  u->c = NULL; /* born closed */
  luaL_getmetatable(L, VX_REDIS_MT);
  lua_setmetatable(L, -2);
  if (port < 1 || port > 65535) return vx_redisfail(L, "port out of range", "io");
  u->c = redisConnectWithTimeout(host, port, tv);
  if (!u->c) return vx_redisfail(L, "not enough memory for a Redis connection", "io");
  if (u->c->err) {
    lua_pushnil(L);
    lua_pushfstring(L, "cannot connect to %s:%d: %s", host, port, u->c->errstr);
    vx_redisfree(u);
    lua_pushliteral(L, "io");
    return 3;
  }
  return 1;
}

/* Pushes a reply as Lua values: a string or status as a string, an integer as an integer, nil as
 * false, an array as a table (nested at most VX_REDIS_MAXDEPTH deep). 0 for an error reply. */
static int vx_pushreply(lua_State *L, const redisReply *r, int depth) {
  size_t i;
  switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS: lua_pushlstring(L, r->str, r->len); return 1;
    case REDIS_REPLY_INTEGER: lua_pushinteger(L, (lua_Integer)r->integer); return 1;
    case REDIS_REPLY_NIL: lua_pushboolean(L, 0); return 1;
    case REDIS_REPLY_ARRAY:
      if (depth >= VX_REDIS_MAXDEPTH || r->elements > 100000) return -1;
      luaL_checkstack(L, 4, "a Redis reply");
      lua_createtable(L, (int)r->elements, 0);
      for (i = 0; i < r->elements; i++) {
        int k = vx_pushreply(L, r->element[i], depth + 1);
        if (k <= 0) {
          lua_pop(L, 1);
          return k;
        }
        lua_rawseti(L, -2, (int)i + 1);
      }
      return 1;
    default: return 0; /* REDIS_REPLY_ERROR */
  }
}

/* conn:command(timeout, arg, ...) -> the reply (vx_pushreply), or nil, message, kind */
static int redis_command(lua_State *L) {
  vx_redis *u = vx_checkudarg(L, 1, VX_REDIS_MT, "vertexops redis");
  struct timeval tv = vx_tv(L, 2);
  int argc = lua_gettop(L) - 2, i, k, pending = 0;
  const char *argv[VX_REDIS_MAXARGS];
  size_t lens[VX_REDIS_MAXARGS];
  redisReply *r;
  sigset_t pipe, old, now;
  char why[256];
  if (argc < 1 || argc > VX_REDIS_MAXARGS) return luaL_error(L, "a Redis command takes 1 to 32 arguments");
  for (i = 0; i < argc; i++) argv[i] = luaL_checklstring(L, i + 3, &lens[i]);
  if (!u->c) return vx_redisfail(L, "the connection is closed", "io");
  if (redisSetTimeout(u->c, tv) != REDIS_OK) {
    snprintf(why, sizeof why, "cannot set the timeout: %s", u->c->errstr);
    vx_redisfree(u);
    return vx_redisfail(L, why, "io");
  }
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, &old);
  if (sigpending(&now) == 0) pending = sigismember(&now, SIGPIPE);
  r = redisCommandArgv(u->c, argc, argv, lens);
  if (!pending && sigpending(&now) == 0 && sigismember(&now, SIGPIPE)) {
    struct timespec zero = {0, 0};
    sigtimedwait(&pipe, NULL, &zero); /* ours: consumed before the mask comes back */
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (!r) {
    snprintf(why, sizeof why, "%s", u->c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK)
                                        ? "timed out" : u->c->errstr);
    vx_redisfree(u);
    return vx_redisfail(L, why, "io");
  }
  k = vx_pushreply(L, r, 0);
  if (k == 0) {
    lua_pushnil(L);
    lua_pushlstring(L, r->str ? r->str : "", r->str ? r->len : 0);
    lua_pushliteral(L, "reply");
    k = 3;
  } else if (k < 0) {
    lua_pushnil(L);
    lua_pushliteral(L, "a reply nested too deep or too long");
    lua_pushliteral(L, "reply");
    k = 3;
  }
  freeReplyObject(r);
  return k;
}

/* __gc, __close and close(): idempotent */
static int redis_close(lua_State *L) {
  vx_redis *u = vx_checkudarg(L, 1, VX_REDIS_MT, "vertexops redis");
  vx_redisfree(u);
  return 0;
}

static const luaL_Reg redis_funcs[] = {{"redis", core_redis}, {NULL, NULL}};

static const luaL_Reg redis_methods[] = {{"command", redis_command}, {"close", redis_close}, {NULL, NULL}};

void vx_redis_open(lua_State *L) {
  vx_newclass(L, VX_REDIS_MT, redis_close, NULL, redis_methods);
  luaL_setfuncs(L, redis_funcs, 0);
}
