/* sys.c: the system -- a monotonic clock, a sleep that survives signals, isatty, a wait for a
 * stop signal. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
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

/* core.wait_signal() -> "INT" | "TERM" | "HUP": waits until one of SIGINT, SIGTERM, SIGHUP is
 * sent to the process and takes it (`vertexops fake` serves until then, lua/vertexops/cli/fake.lua).
 * A Lua program cannot catch a signal, and os.execute (system()) ignores SIGINT while it waits, so
 * `kill -INT` went unheard. The three are blocked in this thread and set to their default action
 * (a script's background job starts with SIGINT ignored), taken with sigwait (no handler runs),
 * then the mask and actions are restored. */
static int core_wait_signal(lua_State *L) {
  static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
  static const char *const names[] = {"INT", "TERM", "HUP"};
  struct sigaction dfl, old[3];
  sigset_t set, oldmask;
  const char *name = NULL;
  int sig = 0, rc, i;
  sigemptyset(&set);
  for (i = 0; i < 3; i++) sigaddset(&set, sigs[i]);
  if (pthread_sigmask(SIG_BLOCK, &set, &oldmask) != 0) return vx_raise(L, "ValueError", "cannot block signals");
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (i = 0; i < 3; i++) sigaction(sigs[i], &dfl, &old[i]);
  do rc = sigwait(&set, &sig);
  while (rc == EINTR);
  for (i = 0; i < 3; i++) sigaction(sigs[i], &old[i], NULL);
  pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
  for (i = 0; i < 3; i++)
    if (sigs[i] == sig) name = names[i];
  lua_pushstring(L, name); /* nil when sigwait failed */
  return 1;
}

/* core.hold_signals(): blocks SIGINT, SIGTERM and SIGHUP and sets them to their default action, so
 * that one sent from now on waits, pending, for core.wait_signal (a background job starts with
 * SIGINT ignored, and a signal between "ready" and the wait would be lost or end the process
 * before its cleanup). Returns true. */
static int core_hold_signals(lua_State *L) {
  static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
  struct sigaction dfl;
  sigset_t set;
  int i;
  sigemptyset(&set);
  for (i = 0; i < 3; i++) sigaddset(&set, sigs[i]);
  if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) return vx_raise(L, "ValueError", "cannot block signals");
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (i = 0; i < 3; i++) sigaction(sigs[i], &dfl, NULL);
  lua_pushboolean(L, 1);
  return 1;
}

static const luaL_Reg sys_funcs[] = {{"clock", core_clock},
                                     {"sleep", core_sleep},
                                     {"isatty", core_isatty},
                                     {"wait_signal", core_wait_signal},
                                     {"hold_signals", core_hold_signals},
                                     {NULL, NULL}};

void vx_sys_open(lua_State *L) { luaL_setfuncs(L, sys_funcs, 0); }
