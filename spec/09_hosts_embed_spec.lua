-- Static embedding (make static, make embed): a C host links vertexops in, takes every module from
-- its own executable, and cancels an operation from a 60-frames-per-second loop. Both archives (Lua
-- 5.4 and LuaJIT) in one run: a host spec runs once (several interpreters side by side would each
-- remake and run the same build/static files at once).
-- make test: once
local H = require "support.helper"


-- a fresh private directory (mktemp -d: never a name someone else planted)
local function tmpdir()
  return H.fake.tmpdir()
end

-- A run where require can find nothing on the file system: both search paths name an empty
-- directory (the _5_4 variables win over the plain ones on Lua 5.4).
local EMPTY = os.getenv("PWD") .. "/build/static/no-modules"
assert(os.execute("rm -rf " .. EMPTY .. " && mkdir -p " .. EMPTY))
local function sealed(env)
  local e = {
    LUA_PATH = EMPTY .. "/?.lua", LUA_CPATH = EMPTY .. "/?.so",
    LUA_PATH_5_4 = EMPTY .. "/?.lua", LUA_CPATH_5_4 = EMPTY .. "/?.so", LUA_INIT = "", LUA_INIT_5_4 = "",
    GOOGLE_OAUTH_ACCESS_TOKEN = "test-token", GOOGLE_CLOUD_QUOTA_PROJECT = "",
    VERTEXOPS_ENDPOINT = "", VERTEXOPS_CA_FILE = "",
  }
  for k, v in pairs(env or {}) do e[k] = v end
  return e
end

-- The modules of the rock, from the files under lua/vertexops/ (whatever they are today).
local function rock_modules()
  local p = io.popen("cd lua && find vertexops -name '*.lua' | sort")
  local list = { "vertexops.core" }
  for path in p:lines() do list[#list + 1] = (path:gsub("%.lua$", ""):gsub("/", "."):gsub("%.init$", "")) end
  p:close()
  table.sort(list)
  return list
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local read = H.read

-- each archive: Lua 5.4's, then LuaJIT's
for _, JIT in ipairs { false, true } do
local FLAVOUR = JIT and "LuaJIT" or "Lua 5.4"
local ARCHIVE = "build/static/" .. (JIT and "jit" or "5.4") .. "/libvertexops.a"
local HOST = "build/static/" .. (JIT and "jit" or "5.4") .. "/embed-host"

describe("make static, " .. FLAVOUR, function()
  setup(function()
    local out, ok = H.run("make -s static " .. HOST)
    assert(ok, out)
  end)

  it("builds an archive exporting the core's entry and the preload entry", function()
    local out, ok = H.run("nm -g --defined-only " .. ARCHIVE)
    assert.is_true(ok, out)
    assert.matches("T luaopen_vertexops_core\n", out)
    assert.matches("T vertexops_preload\n", out)
  end)

  it("preloads the core and every lua/vertexops module, each loading with empty search paths", function()
    local out, ok = H.run(HOST .. " --modules", sealed())
    assert.is_true(ok, out)
    local got = {}
    for name, kind in out:gmatch("([%w._]+): (%a+)\n") do
      if name:match("^vertexops") then
        got[#got + 1] = name
        assert.are.equal("table", kind, name)
      end
    end
    assert.are.same(rock_modules(), got)
  end)

  -- A copy of the build's inputs in a fresh directory, built there with the project's Makefile.
  local function tree()
    local repo, dir = os.getenv("PWD"), tmpdir()
    assert(os.execute(("mkdir -p %s/lua/vertexops %s/scripts %s/csrc/include"):format(dir, dir, dir)))
    assert(os.execute(("cp %s/scripts/embed_lua.lua %s/scripts/ && cp %s/csrc/include/vertexops.h %s/csrc/include/")
      :format(repo, dir, repo, dir)))
    H.fake.write(dir .. "/lua/vertexops/init.lua", "return {}\n")
    local function make(target)
      -- file dates tick in jiffies: a change within the same tick as the last build is invisible
      -- to make (and to any build tool going by dates); a person's edit is never that quick
      require("socket").sleep(0.05)
      local out, ok = H.run(("make -s -C %s -f %s/Makefile %s"):format(dir, repo, target))
      assert(ok, out)
    end
    return dir, make
  end

  it("bundles the Lua files present at build time: one added or removed is followed", function()
    local dir, make = tree()
    local function bundle()
      make("build/static/bundle.c")
      return read(dir .. "/build/static/bundle.c")
    end
    assert.matches('"vertexops", "@lua/vertexops/init.lua"', bundle(), 1, true)
    -- a new file with an old date (as a checkout or a copy leaves it) still gets in
    H.fake.write(dir .. "/lua/vertexops/extra.lua", "return {}\n")
    assert(os.execute("touch -d 2001-01-01 " .. dir .. "/lua/vertexops/extra.lua"))
    assert.matches('"vertexops.extra", "@lua/vertexops/extra.lua"', bundle(), 1, true)
    os.remove(dir .. "/lua/vertexops/extra.lua")
    local last = bundle()
    os.execute("rm -rf " .. dir)
    assert.is_nil(last:find("vertexops.extra", 1, true))
  end)

  it("archives every csrc/*.c present at build time: one added or removed is followed", function()
    local dir, make = tree()
    local lib = "build/static/" .. (JIT and "jit" or "5.4") .. "/libvertexops.a"
    local function members()
      make(lib)
      local out = H.run("ar t " .. dir .. "/" .. lib)
      return out
    end
    H.fake.write(dir .. "/csrc/a.c", "int vx_a(void);\nint vx_a(void) { return 1; }\n")
    assert.are.equal("a.o\nbundle.o\n", members())
    H.fake.write(dir .. "/csrc/b.c", "int vx_b(void);\nint vx_b(void) { return 2; }\n")
    assert(os.execute("touch -d 2001-01-01 " .. dir .. "/csrc/b.c"))
    assert.are.equal("a.o\nb.o\nbundle.o\n", members())
    os.remove(dir .. "/csrc/b.c")
    local last = members()
    os.execute("rm -rf " .. dir)
    assert.are.equal("a.o\nbundle.o\n", last)
  end)
end)

describe("vertexops.testing in a static embedding, " .. FLAVOUR, function()
  setup(function()
    local out, ok = H.run("make -s static " .. HOST)
    assert(ok, out)
  end)

  it("requiring every module from the archive (vertexops.testing included) runs no program", function()
    if not H.have("strace") then
      pending("strace is not installed")
      return
    end
    local trace = os.tmpname()
    local out, ok = H.run(("strace -f -qq -e trace=execve -o %s %s --modules"):format(trace, HOST), sealed())
    local text = read(trace)
    os.remove(trace)
    assert.is_true(ok, out)
    assert.matches("vertexops.testing: table\n", out, 1, true)
    local execs = {}
    for line in text:gmatch("[^\n]+") do
      if line:match("execve%(") and not line:match("ENOENT") then execs[#execs + 1] = line end
    end
    assert.are.equal(1, #execs, table.concat(execs, "\n")) -- the host itself, nothing else
    assert.matches("embed%-host", execs[1])
  end)

  -- A static host running the Lua chunk given as its argument, every vertexops module from the
  -- archive (built with the project's Makefile variables, in a directory of its own).
  local HOST_C = [[
#include <stdio.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include "vertexops.h"
int luaopen_cjson(lua_State *L);
int luaopen_cjson_safe(lua_State *L);
int main(int argc, char **argv) {
  lua_State *L;
  int failed;
  if (argc != 2) return 2;
  L = luaL_newstate();
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_cjson);
  lua_setfield(L, -2, "cjson");
  lua_pushcfunction(L, luaopen_cjson_safe);
  lua_setfield(L, -2, "cjson.safe");
  lua_pop(L, 2);
  lua_pushcfunction(L, vertexops_preload);
  failed = lua_pcall(L, 0, 0, 0) || luaL_dostring(L, argv[1]);
  if (failed) fprintf(stderr, "%s\n", lua_tostring(L, -1));
  lua_close(L);
  return failed;
}
]]
  local HOST_MK = JIT and [[
$(D)/host: $(D)/host.c
	$(CC) $(CFLAGS) $(WARN) -Icsrc/include -I$(LUAJIT_INC) -o $@ $< $(STATIC_JIT) \
		$(CJSON_JIT) -Wl,-Bstatic -lluajit-5.1 -Wl,-Bdynamic $(HOST_LIBS)
]] or [[
$(D)/host: $(D)/host.c
	$(CC) $(CFLAGS) $(WARN) -Icsrc/include -I$(LUA_INC) -o $@ $< $(STATIC_LIB) \
		$(CJSON_LIB) -Wl,-Bstatic -llua5.4 -Wl,-Bdynamic $(HOST_LIBS)
]]

  it("testing.start() from the archive refuses, naming the missing server module; a server.lua in the cwd never runs", function()
    local dir = tmpdir()
    finally(function() os.execute("rm -rf '" .. dir .. "'") end)
    H.fake.write(dir .. "/host.c", HOST_C)
    H.fake.write(dir .. "/host.mk", HOST_MK)
    local out, ok = H.run(("make -s -f Makefile -f %s/host.mk D=%s %s/host"):format(dir, dir, dir))
    assert(ok, out)
    -- what a careless cwd holds: a server.lua where a cwd-relative root would find it
    local cwd = dir .. "/cwd"
    assert(os.execute("mkdir -p " .. cwd .. "/lua/vertexops/testing"))
    H.fake.write(cwd .. "/lua/vertexops/testing/server.lua", ([[
local M = {}
function M.reset() end
function M.handle() io.open("%s/RAN", "w"):write("the cwd's server.lua ran\n") ngx.say('{"ok":true}') end
function M.done() end
return M
]]):format(cwd))
    -- LuaSocket from the system (as a host would give it); nothing of vertexops on the file system
    local system = {}
    for entry in package.path:gmatch("[^;]+") do
      if entry:match("^/usr/") then system[#system + 1] = entry end
    end
    local csystem = {}
    for entry in package.cpath:gmatch("[^;]+") do
      if entry:match("^/usr/") then csystem[#csystem + 1] = entry end
    end
    local chunk = ([[
package.path, package.cpath = %q, %q
local t = require "vertexops.testing"
local ok, e = pcall(t.start)
if ok then e:stop() end
print(ok, type(e) == "table" and e.missing or "-", tostring(e))
]]):format(table.concat(system, ";"), table.concat(csystem, ";"))
    H.fake.write(dir .. "/chunk.lua", chunk)
    H.fake.write(dir .. "/run.sh", ('cd "%s" && exec "%s/host" "$(cat "%s/chunk.lua")"\n'):format(cwd, dir, dir))
    out = H.run("sh " .. dir .. "/run.sh", sealed())
    assert.is_false(exists(cwd .. "/RAN"), "the cwd's server.lua ran in nginx: " .. out)
    assert.matches("^false\tvertexops.testing.server\t", out)
    assert.matches("ConnectionFailedError", out, 1, true)
  end)
end)

describe("examples/embed/host.c, " .. FLAVOUR, function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)
  setup(function()
    local out, ok = H.run("make -s " .. HOST)
    assert(ok, out)
  end)

  local function host(name, env, args)
    return H.run(HOST .. " " .. name .. " " .. (args or (server.endpoint .. " " .. server.ca_file)), sealed(env))
  end

  it("cancels from its frame loop, prints the frame statistics, exits 0 on CANCELLED", function()
    local op = server:create { done_after = 3600 }
    local out, ok = host(op.name)
    assert.is_true(ok, out)
    assert.matches("^%d+ frames in [%d.]+ s; work per frame: worst [%d.]+ ms, mean [%d.]+ ms %(budget 16.7 ms%)", out)
    assert.matches("\n" .. op.name:gsub("%p", "%%%0") .. ": CANCELLED\n$", out)
    assert.are.equal("cancel", server:log()[1].call)
  end)

  it("never blocks a frame while the server holds its answer", function()
    local op = server:create { done_after = 3600 }
    server:fault { match = "cancel", delay = H.HOLD }
    local out, ok = host(op.name)
    assert.is_true(ok, out)
    local frames, worst = out:match("^(%d+) frames in [%d.]+ s; work per frame: worst ([%d.]+) ms")
    -- a poll that waited for the answer would make one frame of the whole hold, and few frames
    assert.is_true(tonumber(frames) >= 10, out)
    H.not_blocked(tonumber(worst) / 1000, "the worst frame")
  end)

  it("takes the endpoint and the CA file from the environment", function()
    local op = server:create { done_after = 3600 }
    local out, ok = host(op.name, { VERTEXOPS_ENDPOINT = server.endpoint, VERTEXOPS_CA_FILE = server.ca_file }, "")
    assert.is_true(ok, out)
    assert.matches(": CANCELLED\n$", out)
  end)

  it("exits 1 when the operation completed before the cancel took effect", function()
    local op = server:create { cancel = "late" }
    local out, ok, code = host(op.name)
    assert.is_false(ok)
    assert.are.equal(1, code)
    assert.matches(": completed before the cancel took effect\n$", out)
  end)

  it("exits 1 with the error object's text when the call fails", function()
    local out, ok, code = host(H.NAME .. "missing")
    assert.is_false(ok)
    assert.are.equal(1, code)
    assert.matches("could not cancel: .*404", out)
    assert.are.equal(1, #server:log("cancel"))
  end)

  it("exits 2 with its usage when no operation is named", function()
    local out, ok, code = H.run(HOST, sealed())
    assert.is_false(ok)
    assert.are.equal(2, code)
    assert.matches("usage:", out)
  end)

  it("opens no Lua file: every module comes from the executable", function()
    if not H.have("strace") then
      pending("strace is not installed")
      return
    end
    local op = server:create { done_after = 3600 }
    local trace = os.tmpname()
    local out, ok = H.run(("strace -f -qq -e trace=open,openat -o %s %s %s %s %s")
      :format(trace, HOST, op.name, server.endpoint, server.ca_file), sealed())
    local opened = read(trace)
    os.remove(trace)
    assert.is_true(ok, out)
    assert.matches("openat%(.-liblua5%.[14]%-cjson%.so", opened) -- the witness: opens are traced
    assert.is_nil(opened:match("[^\n]*%.lua\"[^\n]*"))
    assert.is_nil(opened:match("[^\n]*" .. EMPTY:gsub("%p", "%%%0") .. "[^\n]*"))
    assert.is_nil(opened:match("[^\n]*vertexops[^\n]*%.so\"[^\n]*"))
  end)
end)
end
