-- make test: once
-- Several Lua states at once (threads of one process, each with its own lua_State): libcurl's
-- global init happens once, and no state disturbs another.
local H = require "support.helper"

describe("several Lua states", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  it("cancel concurrently from 4 threads, each over its own connection", function()
    if not io.open("build/states-test") then return pending("build/states-test not built (make build)") end
    local op = server:create {}
    local out, ok = H.run(("build/states-test %s %s %s 4 50"):format(server.endpoint, server.ca_file, op.name), {
      LUA_PATH = "./lua/?.lua;./lua/?/init.lua;;", LUA_CPATH = "./build/5.4/?.so;;" })
    assert.is_true(ok, out)
    for i = 1, 4 do
      assert.matches("state " .. i .. ": 50 cancels, 1 connections", out, 1, true)
    end
    assert.are.equal(200, #server:log("cancel"))
    assert.are.equal(4, server:connections())
  end)
end)
