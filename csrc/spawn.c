/* spawn.c: run a program without a shell, its output captured, killed at a timeout.
 *
 * core.spawn(argv, env, timeout [, cap]) -> true, exit_code, output
 *                                        | false, reason, output
 *   argv    list of strings: argv[1] is the program (looked up in PATH), no shell
 *   env     table NAME -> value added to (or replacing in) this process's environment
 *   timeout seconds (> 0): past it the child's process group is killed (SIGKILL) and reaped
 *   cap     bytes of output kept (default 64 KiB, at most 16 MiB): past it the child is killed
 * stdout and stderr go to one pipe (as google-auth's subprocess.run(stderr=STDOUT)); stdin is
 * /dev/null. reason: "timed out", "output over N bytes", "killed by signal N", "cannot start: ...".
 *
 * Everything that can raise (argument checks, the arrays, the output buffer: userdata on the
 * stack) happens before posix_spawnp; between it and the reaping only system calls run, so no
 * child is ever left behind by a Lua error. The child leads its own process group so the kill
 * reaches what it started (a shell script's `sleep`). */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* pipe2 */
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vx.h"

extern char **environ;

#define SPAWN_CAP_DEFAULT ((size_t)64 << 10)
#define SPAWN_CAP_MAX ((size_t)16 << 20)
#define SPAWN_MAX_ARGS 256

/* A pipe whose two ends are close-on-exec (the child gets the write end by dup2 only). */
static int cloexec_pipe(int fd[2]) {
#if defined(__linux__)
  return pipe2(fd, O_CLOEXEC);
#else
  if (pipe(fd) == -1) return -1;
  if (fcntl(fd[0], F_SETFD, FD_CLOEXEC) == -1 || fcntl(fd[1], F_SETFD, FD_CLOEXEC) == -1) {
    close(fd[0]);
    close(fd[1]);
    return -1;
  }
  return 0;
#endif
}

static void close_noeintr(int fd) {
  if (fd >= 0) (void)close(fd); /* Linux closes the fd even on EINTR: never retry */
}

/* Kills the child's process group and reaps the child; its wait status in *st. */
static void kill_and_reap(pid_t pid, int *st) {
  (void)kill(-pid, SIGKILL);
  (void)kill(pid, SIGKILL); /* in case setpgid had not happened */
  while (waitpid(pid, st, 0) == -1 && errno == EINTR) {
  }
}

/* Waits up to `until` (monotonic seconds) for the child to exit; 1 when reaped. */
static int reap_until(pid_t pid, int *st, double until) {
  for (;;) {
    pid_t r = waitpid(pid, st, WNOHANG);
    if (r == pid) return 1;
    if (r == -1 && errno != EINTR) return -1;
    if (vx_monotonic() >= until) return 0;
    {
      struct timespec ts = {0, 2000000}; /* 2 ms */
      (void)nanosleep(&ts, NULL);
    }
  }
}

static int core_spawn(lua_State *L) {
  size_t nargs, nenv = 0, i, len, cap = SPAWN_CAP_DEFAULT, got = 0;
  const char **argv;
  char **envp, **e;
  char *out;
  double timeout, until;
  int fd[2], rc, st = 0, reaped, outcome = 0; /* 0 exited, 1 timed out, 2 over the cap, 3 unknown */
  pid_t pid;
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  sigset_t all, none;

  vx_checktablearg(L, 1, "argv");
  vx_checktablearg(L, 2, "env");
  timeout = vx_checknumberarg(L, 3, "timeout");
  if (!(timeout > 0) || timeout > VX_MAX_TIMEOUT) return vx_valueerror(L, "timeout must be > 0 seconds");
  if (!lua_isnoneornil(L, 4)) {
    lua_Number c = vx_checknumberarg(L, 4, "cap");
    if (!(c >= 1) || c > (lua_Number)SPAWN_CAP_MAX) return vx_valueerror(L, "cap must be 1 to 16 MiB");
    cap = (size_t)c;
  }
  nargs = (size_t)lua_rawlen(L, 1);
  if (nargs < 1 || nargs > SPAWN_MAX_ARGS) return vx_valueerror(L, "argv must hold 1 to 256 strings");
  lua_settop(L, 2);

  /* argv: pointers into the strings of table 1 (kept alive by the stack) */
  argv = (const char **)lua_newuserdata(L, (nargs + 1) * sizeof *argv); /* 3 */
  for (i = 0; i < nargs; i++) {
    lua_rawgeti(L, 1, (int)(i + 1));
    if (lua_type(L, -1) != LUA_TSTRING) return vx_typeerror(L, "argv[%d] must be a string", (int)(i + 1));
    argv[i] = lua_tolstring(L, -1, &len);
    if (strlen(argv[i]) != len || len == 0)
      return vx_valueerror(L, "argv[%d] must be a non-empty string without NUL", (int)(i + 1));
    lua_pop(L, 1);
  }
  argv[nargs] = NULL;

  /* env: "NAME=value" strings anchored in table 4; the inherited entries not overridden */
  lua_newtable(L); /* 4 */
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    const char *k, *v;
    size_t klen, vlen;
    if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
      return vx_typeerror(L, "env must map names to strings");
    k = lua_tolstring(L, -2, &klen);
    v = lua_tolstring(L, -1, &vlen);
    if (klen == 0 || strlen(k) != klen || strchr(k, '=') || strlen(v) != vlen)
      return vx_valueerror(L, "env names must be non-empty without '=' or NUL, values without NUL");
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_pushfstring(L, "%s=%s", k, v);
    lua_rawset(L, 4); /* 4[name] = "name=value"; the iteration key stays on the stack */
    nenv++;
  }
  for (e = environ; e && *e; e++) nenv++;
  envp = (char **)lua_newuserdata(L, (nenv + 1) * sizeof *envp); /* 5 */
  i = 0;
  for (e = environ; e && *e; e++) {
    const char *eq = strchr(*e, '=');
    if (!eq) continue;
    lua_pushlstring(L, *e, (size_t)(eq - *e));
    lua_rawget(L, 2);
    if (lua_isnil(L, -1)) envp[i++] = *e;
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  while (lua_next(L, 4)) {
    envp[i++] = (char *)lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  envp[i] = NULL;

  out = (char *)lua_newuserdata(L, cap); /* 6 */

  /* from here on: no Lua call until the child is reaped */
  if (cloexec_pipe(fd) == -1) return vx_raise(L, "ConnectionError", "spawn: pipe: %s", strerror(errno));
  sigfillset(&all);
  sigemptyset(&none);
  if ((rc = posix_spawn_file_actions_init(&fa)) != 0) {
    close_noeintr(fd[0]);
    close_noeintr(fd[1]);
    return vx_raise(L, "ConnectionError", "spawn: %s", strerror(rc));
  }
  if ((rc = posix_spawnattr_init(&attr)) != 0) {
    posix_spawn_file_actions_destroy(&fa);
    close_noeintr(fd[0]);
    close_noeintr(fd[1]);
    return vx_raise(L, "ConnectionError", "spawn: %s", strerror(rc));
  }
  rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  if (!rc) rc = posix_spawn_file_actions_adddup2(&fa, fd[1], 1);
  if (!rc) rc = posix_spawn_file_actions_adddup2(&fa, fd[1], 2);
  if (!rc) rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  if (!rc) rc = posix_spawnattr_setpgroup(&attr, 0);
  if (!rc) rc = posix_spawnattr_setsigdefault(&attr, &all);
  if (!rc) rc = posix_spawnattr_setsigmask(&attr, &none);
  if (!rc) rc = posix_spawnp(&pid, argv[0], &fa, &attr, (char *const *)argv, envp);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close_noeintr(fd[1]);
  if (rc != 0) {
    close_noeintr(fd[0]);
    lua_pushboolean(L, 0);
    lua_pushfstring(L, "cannot start: %s", strerror(rc));
    lua_pushliteral(L, "");
    return 3;
  }

  until = vx_monotonic() + timeout;
  for (;;) { /* read until end of file, the cap or the timeout */
    struct pollfd p;
    double left = until - vx_monotonic();
    ssize_t n;
    char sink[1];
    if (left <= 0) {
      outcome = 1;
      break;
    }
    p.fd = fd[0];
    p.events = POLLIN;
    p.revents = 0;
    rc = poll(&p, 1, left > 1000 ? 1000000 : (int)(left * 1000) + 1);
    if (rc == -1 && errno != EINTR) break;
    if (rc <= 0) continue;
    n = got < cap ? read(fd[0], out + got, cap - got) : read(fd[0], sink, 1);
    if (n == -1 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) break; /* end of file (or a read error: the exit status tells) */
    if (got >= cap) {
      outcome = 2;
      break;
    }
    got += (size_t)n;
  }
  close_noeintr(fd[0]);
  if (outcome == 0) {
    reaped = reap_until(pid, &st, until);
    if (reaped == 0) {
      outcome = 1;
      kill_and_reap(pid, &st);
    } else if (reaped < 0) {
      outcome = 3; /* not ours to wait for (SIGCHLD ignored by the host) */
    }
  } else {
    kill_and_reap(pid, &st);
  }

  /* the child is reaped: Lua calls may raise again */
  if (outcome == 1) {
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "timed out");
  } else if (outcome == 2) {
    lua_pushboolean(L, 0);
    lua_pushfstring(L, "output over %d bytes", (int)cap);
  } else if (outcome == 3) {
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "exit status unknown");
  } else if (WIFEXITED(st)) {
    lua_pushboolean(L, 1);
    lua_pushinteger(L, WEXITSTATUS(st));
  } else if (WIFSIGNALED(st)) {
    lua_pushboolean(L, 0);
    lua_pushfstring(L, "killed by signal %d", WTERMSIG(st));
  } else {
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "exit status unknown");
  }
  lua_pushlstring(L, out, got);
  return 3;
}

static const luaL_Reg spawn_funcs[] = {{"spawn", core_spawn}, {NULL, NULL}};

void vx_spawn_open(lua_State *L) { luaL_setfuncs(L, spawn_funcs, 0); }
