/*
 * Preloaded after the sanitizer runtime by scripts/asan.sh (build/asan/preload.so):
 *  - takes LD_PRELOAD out of the environment of the process it is loaded into, so the programs
 *    that process starts (sh, nginx, openssl, luarocks, valgrind...) run without the sanitizer
 *    runtime; the Lua interpreters the specs start get it back through scripts/asan-lua, which
 *    VERTEXOPS_LUA names during `make asan`. The sanitizers read their *_OPTIONS at start-up.
 *  - makes dlclose a no-op, so vertexops/core.so is still mapped when LeakSanitizer reports at
 *    exit (lua_close unloads C modules) and its frames have names.
 */
#include <stdlib.h>

__attribute__((constructor)) static void vx_noinherit(void) { unsetenv("LD_PRELOAD"); }

int dlclose(void *handle);
int dlclose(void *handle) {
  (void)handle;
  return 0;
}
