/* sys.c: the system -- a monotonic clock, a sleep that survives signals, isatty. */
#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "vx.h"

double vx_monotonic(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int core_clock(lua_State *L) {
  lua_pushnumber(L, (lua_Number)vx_monotonic());
  return 1;
}

static int core_sleep(lua_State *L) {
  double s = vx_checknumberarg(L, 1, "seconds");
  struct timespec req, rem;
  if (!(s > 0)) return 0;
  if (s > VX_MAX_TIMEOUT) s = VX_MAX_TIMEOUT;
  req.tv_sec = (time_t)s;
  req.tv_nsec = (long)((s - (double)req.tv_sec) * 1e9);
  while (nanosleep(&req, &rem) == -1 && errno == EINTR) req = rem;
  return 0;
}

/* core.isatty(fd) -> boolean (the command line shows progress only on a terminal) */
static int core_isatty(lua_State *L) {
  lua_Number fd = vx_checknumberarg(L, 1, "fd");
  lua_pushboolean(L, fd >= 0 && fd <= 1024 && isatty((int)fd) == 1);
  return 1;
}

static const luaL_Reg sys_funcs[] = {
    {"clock", core_clock}, {"sleep", core_sleep}, {"isatty", core_isatty}, {NULL, NULL}};

void vx_sys_open(lua_State *L) { luaL_setfuncs(L, sys_funcs, 0); }
