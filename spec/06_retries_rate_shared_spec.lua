-- Option rate.shared_dict outside nginx (docs/contract.md, "Pacing"; lua/vertexops/rate_shared.lua):
-- the name of a lua_shared_dict, checked like shared_dict; where there is no nginx it is no error,
-- and the client's own window paces the requests. Inside nginx: spec/09_hosts_rate_shared_spec.lua.
local vertexops = require "vertexops"
local H = require "support.helper"

describe("option rate.shared_dict", function()
  local fake = H.fake_server()
  local server, t
  before_each(function()
    server = fake.server
    t = H.virtual_time(server, 1000)
  end)

  it("outside nginx, leaves the pacing to the client's own window", function()
    local op = server:create {}
    local c = vertexops.client(H.timed_opts(server, t, { rate = { requests = 2, per = 60, shared_dict = "rate" } }))
    for _ = 1, 3 do c:get(op.name) end
    assert.are.same({ 60 }, t.delays)
    assert.are.equal(3, #server:log("get"))
  end)

  it("must name a dict: an empty name is a ValueError naming rate.shared_dict, nothing sent", function()
    local op = server:create {}
    H.value_error("rate.shared_dict", vertexops.get, op.name, nil,
      server:options { rate = { requests = 1, shared_dict = "" } })
    assert.are.equal(0, #server:log())
  end)

  it("must be a string: another type is a TypeError naming rate.shared_dict", function()
    local err = H.raises(vertexops.client, { rate = { requests = 1, shared_dict = 5 } })
    assert.are.equal("TypeError", H.tags(err))
    assert.is_truthy(err.message:find("rate.shared_dict", 1, true), err.message)
  end)
end)
