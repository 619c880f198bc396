/* vertexops.h: the entry points of vertexops for C hosts that link it statically (make static:
 * build/static/5.4/libvertexops.a, build/static/jit/libvertexops.a). Include it with the Lua
 * headers of the interpreter the archive was built for on the include path. */
#ifndef VERTEXOPS_H
#define VERTEXOPS_H

#include <lua.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Registers every module of the rock in package.preload: "vertexops.core" (the C core) and
 * each Lua module ("vertexops", "vertexops.auth", "vertexops.safe", ...), whose source is
 * compiled into the archive. A later require finds them there without touching the file system.
 * Needs the package library (luaL_openlibs); raises a Lua error without it, so call it directly
 * or through lua_pcall. Pushes nothing, returns 0. Loading "vertexops.core" requires "cjson.safe",
 * which the host provides (see examples/embed/host.c). */
int vertexops_preload(lua_State *L);

/* The C core's entry, as require "vertexops.core" calls it: pushes the module table. */
int luaopen_vertexops_core(lua_State *L);

#ifdef __cplusplus
}
#endif

#endif
