-- make test: once
-- make install PREFIX=... DESTDIR=... and make uninstall, as someone who builds from source uses them:
-- the staged tree moved into PREFIX (as a package manager does), its command line and its library
-- run from / with nothing of the checkout on the paths, against the fake; then uninstall leaves nothing.
local core = require "vertexops.core"
local H = require "support.helper"

local LUAS = { { lua = "lua5.4", v = "5.4" }, { lua = "lua5.1", v = "5.1" }, { lua = "luajit", v = "5.1" } }

describe("make install and make uninstall", function()
  local fake = H.fake_server()
  local tmp, stage, prefix, install_out, installed

  setup(function()
    tmp = H.fake.tmpdir()
    stage, prefix = tmp .. "/stage", tmp .. "/prefix"
    install_out, installed = H.run(("make -s install PREFIX=%s DESTDIR=%s"):format(prefix, stage))
    if installed then assert(H.run(("mv %s%s %s"):format(stage, prefix, prefix))) end
  end)
  teardown(function() os.execute("rm -rf '" .. tmp .. "'") end)

  -- from /, with only the installed tree (and Debian's own paths) for Lua
  local function run(cmd, env)
    local e = { LUA_PATH = "", LUA_CPATH = "", LUA_PATH_5_4 = "", LUA_CPATH_5_4 = "" }
    for k, v in pairs(env or {}) do e[k] = v end
    return H.run("sh -c 'cd / && " .. cmd .. "'", e)
  end

  local function files_under(dir)
    local out = {}
    for path in H.run("find " .. dir .. " -type f | sort"):gmatch("[^\n]+") do out[#out + 1] = path end
    return out
  end

  it("writes only under DESTDIR PREFIX: the core for each Lua, the modules, the command, man page, completion",
    function()
    assert.is_true(installed, install_out)
    local all = files_under(stage .. " " .. prefix)
    for _, path in ipairs(all) do
      assert.is_truthy(path:find(prefix .. "/", 1, true) == 1, path .. " is outside PREFIX")
    end
    local want = { "bin/vertexops", "share/man/man1/vertexops.1", "share/bash-completion/completions/vertexops",
                   "share/zsh/vendor-completions/_vertexops", "share/doc/vertexops/contract.md" }
    for _, v in ipairs { "5.1", "5.2", "5.3", "5.4" } do
      want[#want + 1] = "lib/lua/" .. v .. "/vertexops/core.so"
      want[#want + 1] = "share/lua/" .. v .. "/vertexops/init.lua"
      want[#want + 1] = "share/lua/" .. v .. "/vertexops/cli/commands.lua"
    end
    for _, p in ipairs(want) do
      assert.is_not_nil(io.open(prefix .. "/" .. p), p .. " not installed")
    end
  end)

  it("installs a command line that prints its version from the installed tree", function()
    assert.is_true(installed, install_out)
    local out, ok = run(prefix .. "/bin/vertexops --version")
    assert.is_true(ok, out)
    assert.matches("^vertexops " .. core.version:gsub("%p", "%%%0") .. "\nlibcurl ", out)
  end)

  it("installs a command line that gets an operation from the fake", function()
    assert.is_true(installed, install_out)
    local op = fake.server:create {}
    local out, ok = run(prefix .. "/bin/vertexops get " .. op.name .. " --json --ca-file " .. fake.server.ca_file,
      { GOOGLE_OAUTH_ACCESS_TOKEN = "test-token", VERTEXOPS_ENDPOINT = fake.server.endpoint,
        GOOGLE_CLOUD_QUOTA_PROJECT = "" })
    assert.is_true(ok, out)
    assert.matches('"name":"' .. op.name:gsub("%p", "%%%0") .. '"', out)
  end)

  for _, l in ipairs(LUAS) do
    it("installs a library that " .. l.lua .. " requires from PREFIX's tree and calls the fake with", function()
      assert.is_true(installed, install_out)
      local op = fake.server:create { done = true }
      local script = tmp .. "/call.lua"
      H.fake.write(script, ([[
        local vertexops = require "vertexops"
        local got = vertexops.get(%q, nil, { endpoint = %q, ca_file = %q, token = "test-token" })
        print(debug.getinfo(vertexops.client, "S").source, got.name)
      ]]):format(op.name, fake.server.endpoint, fake.server.ca_file))
      local share, lib = prefix .. "/share/lua/" .. l.v, prefix .. "/lib/lua/" .. l.v
      local out, ok = run(l.lua .. " " .. script, { LUA_PATH = share .. "/?.lua;" .. share .. "/?/init.lua;;",
                                                    LUA_CPATH = lib .. "/?.so;;" })
      assert.is_true(ok, out)
      assert.are.equal("@" .. share .. "/vertexops/init.lua\t" .. op.name .. "\n", out)
      assert.are.equal(1, #fake.server:log("get"))
    end)
  end

  it("installs a bash completion that offers the commands", function()
    assert.is_true(installed, install_out)
    local out, ok = run("bash --norc --noprofile -c \"source " .. prefix .. "/share/bash-completion/completions/vertexops"
      .. "; COMP_WORDS=(vertexops canc); COMP_CWORD=1; _vertexops; echo \\${COMPREPLY[@]}\"")
    assert.is_true(ok, out)
    assert.are.equal("cancel cancel-all\n", out)
  end)

  it("installs a man page that man finds under PREFIX/share/man", function()
    assert.is_true(installed, install_out)
    local out, ok = run("man -M " .. prefix .. "/share/man vertexops", { MANPAGER = "cat", PAGER = "cat" })
    assert.is_true(ok, out)
    assert.matches("^VERTEXOPS%(1%)", out)
  end)

  -- last: it takes the tree away
  it("uninstalls exactly what it installed: no file and no directory of its own is left", function()
    assert.is_true(installed, install_out)
    assert(H.run(("mkdir -p %s%s && rmdir %s%s && mv %s %s%s"):format(stage, prefix, stage, prefix, prefix, stage,
      prefix)))
    local out, ok = H.run(("make -s uninstall PREFIX=%s DESTDIR=%s"):format(prefix, stage))
    assert.is_true(ok, out)
    assert.are.same({}, files_under(stage))
    assert.are.equal("", (H.run("find " .. stage .. prefix .. " -mindepth 1")))
  end)
end)
