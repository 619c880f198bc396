-- The rock builds and installs with luarocks; the environment reaches requests; valgrind is clean.
local H = require "support.helper"

describe("packaging", function()
  it("luarocks make installs a rock that loads", function()
    local tree = os.tmpname()
    os.remove(tree)
    local lv = H.lua_command():match("luajit") and "5.1" or "5.4"
    local incdir = lv == "5.1" and " LUA_INCDIR=/usr/include/luajit-2.1" or ""
    local out, ok = H.run(("luarocks --lua-version=%s make --deps-mode=none --tree=%s vertexops-scm-1.rockspec%s")
      :format(lv, tree, incdir))
    assert.is_true(ok, out)
    out, ok = H.run(H.lua_command() .. [[ -e 'local v = require "vertexops"; ]]
      .. [[print(v._VERSION, package.searchpath("vertexops.core", package.cpath))']],
      { LUA_PATH = tree .. "/share/lua/" .. lv .. "/?.lua;" .. tree .. "/share/lua/" .. lv .. "/?/init.lua;;",
        LUA_CPATH = tree .. "/lib/lua/" .. lv .. "/?.so;;" })
    os.execute("rm -rf " .. tree)
    assert.is_true(ok, out)
    assert.matches("^%d+%.%d+%.%d+\t" .. tree:gsub("%p", "%%%0") .. "/lib/lua/", out)
  end)
end)

describe("environment", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  local function cancel_in_child(env)
    local op = server:create {}
    local out, ok = H.run_lua(([[
      local vertexops = require "vertexops"
      print(vertexops.cancel(%q, nil, { ca_file = %q, token = "test-token" }))
    ]]):format(op.name, server.ca_file), env)
    assert.is_true(ok, out)
    return server:log()[1]
  end

  it("VERTEXOPS_ENDPOINT replaces the default endpoint", function()
    local e = cancel_in_child { VERTEXOPS_ENDPOINT = server.endpoint, GOOGLE_CLOUD_QUOTA_PROJECT = "" }
    assert.are.equal("POST", e.method)
  end)

  it("GOOGLE_CLOUD_QUOTA_PROJECT is sent as x-goog-user-project", function()
    local e = cancel_in_child { VERTEXOPS_ENDPOINT = server.endpoint, GOOGLE_CLOUD_QUOTA_PROJECT = "quota-1" }
    assert.are.equal("quota-1", e.headers["x-goog-user-project"])
  end)
end)

describe("memory", function()
  it("runs successes and every error path under valgrind with no leak or invalid access", function()
    if not H.have("valgrind") then return pending("valgrind missing") end
    if H.lua_command():match("luajit") then return pending("valgrind run is for the PUC interpreter") end
    local out, ok = H.run("valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite "
      .. "--show-leak-kinds=definite " .. H.lua_command() .. " spec/memcheck.lua", { MEMCHECK_ROUNDS = "1" })
    assert.is_true(ok, out)
    assert.matches("memcheck: 1 rounds", out)
  end)
end)
