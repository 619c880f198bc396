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

/* What core_spawn made of its arguments 3 and 4. */
struct spawn_args {
  size_t nargs; /* strings in argv */
  size_t cap;   /* bytes of output kept */
  double timeout;
};

/* How the child ended, as far as core_spawn knows. */
enum spawn_outcome { SPAWN_EXITED, SPAWN_TIMED_OUT, SPAWN_OVER_CAP, SPAWN_UNKNOWN };

/* How far start_child got. */
enum spawn_start { START_OK, START_PIPE, START_INIT, START_FAILED };

/* Checks the arguments (TypeError, ValueError) and leaves argv and env alone on the stack (1, 2). */
static void check_args(lua_State *L, struct spawn_args *a) {
  vx_checktablearg(L, 1, "argv");
  vx_checktablearg(L, 2, "env");
  a->timeout = vx_checknumberarg(L, 3, "timeout");
  if (!(a->timeout > 0) || a->timeout > VX_MAX_TIMEOUT) vx_valueerror(L, "timeout must be > 0 seconds");
  a->cap = SPAWN_CAP_DEFAULT;
  if (!lua_isnoneornil(L, 4)) {
    lua_Number c = vx_checknumberarg(L, 4, "cap");
    if (!(c >= 1) || c > (lua_Number)SPAWN_CAP_MAX) vx_valueerror(L, "cap must be 1 to 16 MiB");
    a->cap = (size_t)c;
  }
  a->nargs = (size_t)lua_rawlen(L, 1);
  if (a->nargs < 1 || a->nargs > SPAWN_MAX_ARGS) vx_valueerror(L, "argv must hold 1 to 256 strings");
  lua_settop(L, 2);
}

/* Pushes argv (stack 3): pointers into the strings of table 1 (kept alive by the stack). */
static const char **build_argv(lua_State *L, size_t nargs) {
  const char **argv = (const char **)lua_newuserdata(L, (nargs + 1) * sizeof *argv); /* 3 */
  size_t i, len;
  for (i = 0; i < nargs; i++) {
    lua_rawgeti(L, 1, (int)(i + 1));
    if (lua_type(L, -1) != LUA_TSTRING) vx_typeerror(L, "argv[%d] must be a string", (int)(i + 1));
    argv[i] = lua_tolstring(L, -1, &len);
    if (strlen(argv[i]) != len || len == 0)
      vx_valueerror(L, "argv[%d] must be a non-empty string without NUL", (int)(i + 1));
    lua_pop(L, 1);
  }
  argv[nargs] = NULL;
  return argv;
}

/* Pushes table 4 mapping each name of env (table 2) to its "NAME=value" string; returns how many. */
static size_t anchor_env(lua_State *L) {
  size_t n = 0;
  lua_newtable(L); /* 4 */
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    const char *k, *v;
    size_t klen, vlen;
    if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
      vx_typeerror(L, "env must map names to strings");
    k = lua_tolstring(L, -2, &klen);
    v = lua_tolstring(L, -1, &vlen);
    if (klen == 0 || strlen(k) != klen || strchr(k, '=') || strlen(v) != vlen)
      vx_valueerror(L, "env names must be non-empty without '=' or NUL, values without NUL");
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_pushfstring(L, "%s=%s", k, v);
    lua_rawset(L, 4); /* 4[name] = "name=value"; the iteration key stays on the stack */
    n++;
  }
  return n;
}

/* Pushes envp (stack 5): the inherited entries env does not override, then table 4's strings. */
static char **build_envp(lua_State *L) {
  size_t nenv = anchor_env(L), i = 0;
  char **envp, **e;
  for (e = environ; e && *e; e++) nenv++;
  envp = (char **)lua_newuserdata(L, (nenv + 1) * sizeof *envp); /* 5 */
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
  return envp;
}

/* Sets up the child: stdin /dev/null, stdout and stderr the pipe's write end, its own process
 * group, default signal dispositions, nothing blocked. 0 or an error number. */
static int configure_child(posix_spawn_file_actions_t *fa, posix_spawnattr_t *attr, int wfd) {
  sigset_t all, none;
  int rc;
  sigfillset(&all);
  sigemptyset(&none);
  rc = posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0);
  if (!rc) rc = posix_spawn_file_actions_adddup2(fa, wfd, 1);
  if (!rc) rc = posix_spawn_file_actions_adddup2(fa, wfd, 2);
  if (!rc) rc = posix_spawnattr_setflags(attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  if (!rc) rc = posix_spawnattr_setpgroup(attr, 0);
  if (!rc) rc = posix_spawnattr_setsigdefault(attr, &all);
  if (!rc) rc = posix_spawnattr_setsigmask(attr, &none);
  return rc;
}

/* Starts the child (system calls only, nothing left allocated): on START_OK its pid in *pid and
 * the pipe's read end in *rfd; otherwise how far it got, the error number in *err, no fd open. */
static enum spawn_start start_child(const char **argv, char **envp, pid_t *pid, int *rfd, int *err) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  int fd[2], rc;
  if (cloexec_pipe(fd) == -1) {
    *err = errno;
    return START_PIPE;
  }
  if ((rc = posix_spawn_file_actions_init(&fa)) != 0) {
    close_noeintr(fd[0]);
    close_noeintr(fd[1]);
    *err = rc;
    return START_INIT;
  }
  if ((rc = posix_spawnattr_init(&attr)) != 0) {
    posix_spawn_file_actions_destroy(&fa);
    close_noeintr(fd[0]);
    close_noeintr(fd[1]);
    *err = rc;
    return START_INIT;
  }
  rc = configure_child(&fa, &attr, fd[1]);
  if (!rc) rc = posix_spawnp(pid, argv[0], &fa, &attr, (char *const *)argv, envp);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close_noeintr(fd[1]);
  if (rc != 0) {
    close_noeintr(fd[0]);
    *err = rc;
    return START_FAILED;
  }
  *rfd = fd[0];
  return START_OK;
}

/* Reads the child's output into out until end of file, the cap or `until` (monotonic seconds);
 * the bytes kept in *got. SPAWN_EXITED here means only that the output ended. */
static enum spawn_outcome read_output(int fd, char *out, size_t cap, size_t *got, double until) {
  for (;;) {
    struct pollfd p;
    double left = until - vx_monotonic();
    ssize_t n;
    char sink[1];
    int rc;
    if (left <= 0) return SPAWN_TIMED_OUT;
    p.fd = fd;
    p.events = POLLIN;
    p.revents = 0;
    rc = poll(&p, 1, left > 1000 ? 1000000 : (int)(left * 1000) + 1);
    if (rc == -1 && errno != EINTR) return SPAWN_EXITED;
    if (rc <= 0) continue;
    n = *got < cap ? read(fd, out + *got, cap - *got) : read(fd, sink, 1);
    if (n == -1 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return SPAWN_EXITED; /* end of file (or a read error: the exit status tells) */
    if (*got >= cap) return SPAWN_OVER_CAP;
    *got += (size_t)n;
  }
}

/* Reaps the child: waits for it up to `until` when its output ended, else (or past `until`) kills
 * its process group first. Its wait status in *st; returns the outcome as it now stands. */
static enum spawn_outcome end_child(pid_t pid, enum spawn_outcome outcome, double until, int *st) {
  int reaped;
  if (outcome != SPAWN_EXITED) {
    kill_and_reap(pid, st);
    return outcome;
  }
  reaped = reap_until(pid, st, until);
  if (reaped == 0) {
    kill_and_reap(pid, st);
    return SPAWN_TIMED_OUT;
  }
  if (reaped < 0) return SPAWN_UNKNOWN; /* not ours to wait for (SIGCHLD ignored by the host) */
  return SPAWN_EXITED;
}

/* Pushes core.spawn's three results: true, exit code | false, reason; then the output. */
static int push_result(lua_State *L, enum spawn_outcome outcome, int st, size_t cap, const char *out, size_t got) {
  if (outcome == SPAWN_TIMED_OUT) {
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "timed out");
  } else if (outcome == SPAWN_OVER_CAP) {
    lua_pushboolean(L, 0);
    lua_pushfstring(L, "output over %d bytes", (int)cap);
  } else if (outcome == SPAWN_UNKNOWN) {
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

/* core.spawn(argv, env, timeout [, cap]): the steps above, in order. */
static int core_spawn(lua_State *L) {
  struct spawn_args a;
  const char **argv;
  char **envp;
  char *out;
  size_t got = 0;
  pid_t pid;
  int rfd = -1, err = 0, st = 0;
  double until;
  enum spawn_outcome outcome;

  check_args(L, &a);
  argv = build_argv(L, a.nargs);
  envp = build_envp(L);
  out = (char *)lua_newuserdata(L, a.cap); /* 6 */

  /* from here on: no Lua call until the child is reaped (or was never started) */
  switch (start_child(argv, envp, &pid, &rfd, &err)) {
  case START_PIPE:
    return vx_raise(L, "ConnectionError", "spawn: pipe: %s", strerror(err));
  case START_INIT:
    return vx_raise(L, "ConnectionError", "spawn: %s", strerror(err));
  case START_FAILED:
    lua_pushboolean(L, 0);
    lua_pushfstring(L, "cannot start: %s", strerror(err));
    lua_pushliteral(L, "");
    return 3;
  case START_OK:
    break;
  }
  until = vx_monotonic() + a.timeout;
  outcome = read_output(rfd, out, a.cap, &got, until);
  close_noeintr(rfd);
  outcome = end_child(pid, outcome, until, &st);

  /* the child is reaped: Lua calls may raise again */
  return push_result(L, outcome, st, a.cap, out, got);
}

static const luaL_Reg spawn_funcs[] = {{"spawn", core_spawn}, {NULL, NULL}};

void vx_spawn_open(lua_State *L) { luaL_setfuncs(L, spawn_funcs, 0); }
