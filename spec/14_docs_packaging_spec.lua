-- make test: once
-- The rock builds and installs with luarocks. (The environment variables: spec/03_options_environment_spec.lua;
-- valgrind: spec/13_core_memcheck_spec.lua.)
local H = require "support.helper"

-- The rock, built and installed once per kind of interpreter, in one run (an artifact's spec): PUC
-- 5.2 to 5.4 by their own headers, LuaJIT into the 5.1 tree with LuaJIT's headers (make rock-jit),
-- whose core loads in lua5.1 too.
local ROCKS = {
  { lua = "lua5.4", lv = "5.4" },
  { lua = "lua5.3", lv = "5.3" },
  { lua = "lua5.2", lv = "5.2" },
  { lua = "luajit", lv = "5.1", jit = true },
}

-- Every Lua source of a rockspec (a Lua file of assignments) read in an empty environment.
local function rockspec()
  local env = {}
  local chunk = assert(loadfile("vertexops-scm-1.rockspec"))
  if setfenv then setfenv(chunk, env) else chunk = assert(loadfile("vertexops-scm-1.rockspec", "t", env)) end
  chunk()
  return env
end

for _, rock in ipairs(ROCKS) do
  local LV, LUA = rock.lv, rock.lua
  describe("packaging for " .. LUA, function()
    local fake = H.fake_server()
    local tree, src, installed, install_out

    -- luarocks make builds in the source directory: a copy of it, so runs side by side never share one
    setup(function()
      tree, src = os.tmpname(), os.tmpname()
      os.remove(tree)
      os.remove(src)
      assert(H.run("mkdir -p " .. src .. " && cp -r csrc lua bin docs vertexops-scm-1.rockspec " .. src))
      local incdir = rock.jit and " LUA_INCDIR=/usr/include/luajit-2.1" or ""
      install_out, installed = H.run(("sh -c 'cd %s && luarocks --lua-version=%s make --deps-mode=none --tree=%s "
        .. "vertexops-scm-1.rockspec%s'"):format(src, LV, tree, incdir))
    end)
    teardown(function() os.execute("rm -rf " .. tree .. " " .. src) end)

    -- only the tree's modules (and Debian's lua-cjson from the default paths)
    local function tree_env(extra)
      local e = { LUA_PATH = tree .. "/share/lua/" .. LV .. "/?.lua;" .. tree .. "/share/lua/" .. LV .. "/?/init.lua;;",
                  LUA_CPATH = tree .. "/lib/lua/" .. LV .. "/?.so;;" }
      for k, v in pairs(extra or {}) do e[k] = v end
      return e
    end
    local LOAD = [[ -e 'local v = require "vertexops"; print(v._VERSION, package.searchpath("vertexops.core", package.cpath))']]
    local function loads_in(lua)
      local out, ok = H.run(lua .. LOAD, tree_env())
      assert.is_true(ok, out)
      assert.matches("^%d+%.%d+%.%d+\t" .. tree:gsub("%p", "%%%0") .. "/lib/lua/" .. LV .. "/vertexops/core%.so", out)
    end

    it("luarocks make installs a rock that loads in " .. LUA, function()
      assert.is_true(installed, install_out)
      loads_in(LUA)
    end)

    it("installs a command line whose luarocks wrapper gets an operation", function()
      assert.is_true(installed, install_out)
      local op = fake.server:create {}
      local out, ok = H.run(tree .. "/bin/vertexops get " .. op.name .. " --json --ca-file " .. fake.server.ca_file,
        tree_env { GOOGLE_OAUTH_ACCESS_TOKEN = "test-token", VERTEXOPS_ENDPOINT = fake.server.endpoint,
                   GOOGLE_CLOUD_QUOTA_PROJECT = "" })
      assert.is_true(ok, out)
      assert.matches('"name":"' .. op.name:gsub("%p", "%%%0") .. '"', out)
    end)

    it("installs vertexops.testing: outside the checkout it starts a fake server from the tree, and a call reaches it",
      function()
      assert.is_true(installed, install_out)
      local script = os.tmpname()
      H.fake.write(script, [[
        local testing = require "vertexops.testing"
        local vertexops = require "vertexops"
        local server = testing.start()
        local ok, err = pcall(function()
          local conf = testing.read(server.dir .. "/nginx.conf")
          local op = server:create { done = true }
          local got = vertexops.get(op.name, nil, server:options())
          print(testing.lua_root, conf:match('lua_package_path "([^"]*)"'), got.name == op.name, #server:log("get"))
        end)
        server:stop()
        if not ok then error(err, 0) end
      ]])
      local out, ok = H.run("sh -c 'cd / && " .. LUA .. " " .. script .. "'", tree_env())
      os.remove(script)
      assert.is_true(ok, out)
      local share = tree .. "/share/lua/" .. LV
      assert.are.equal(share .. "\t" .. share .. "/?.lua;;\ttrue\t1\n", out)
    end)

    if rock.jit then
      it("puts in luarocks' 5.1 tree a core that loads in lua5.1 and in luajit alike", function()
        assert.is_true(installed, install_out)
        for _, lua in ipairs { "lua5.1", "luajit" } do
          local out, ok = H.run(lua .. [[ -e 'print(require("vertexops")._VERSION)']], tree_env())
          assert.is_true(ok, lua .. ": " .. out)
        end
      end)
    end
  end)
end

describe("the rockspec", function()
  it("builds the core from every csrc/*.c", function()
    local listed = {}
    for _, f in ipairs(rockspec().build.modules["vertexops.core"].sources) do listed[#listed + 1] = f end
    table.sort(listed)
    local out = H.run("ls csrc/*.c")
    local present = {}
    for f in out:gmatch("%S+") do present[#present + 1] = f end
    table.sort(present)
    assert.are.same(present, listed)
  end)

  it("installs every lua/vertexops/**/*.lua as its module, and bin/vertexops as the command", function()
    local build = rockspec().build
    local listed = {}
    for name, src in pairs(build.modules) do
      if type(src) == "string" then listed[#listed + 1] = name .. " " .. src end
    end
    table.sort(listed)
    local present = {}
    for path in H.run("find lua/vertexops -name '*.lua' | sort"):gmatch("%S+") do
      local name = path:gsub("^lua/", ""):gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
      present[#present + 1] = name .. " " .. path
    end
    table.sort(present)
    assert.are.same(present, listed)
    assert.are.same({ vertexops = "bin/vertexops" }, build.install.bin)
  end)
end)
