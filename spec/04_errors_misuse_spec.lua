-- Misuse of the API (docs/contract.md, "Errors"): closed or busy handles, unknown calls, a method
-- called with a dot, a closed client -- always a tagged TypeError or ValueError naming what is
-- wrong, never Lua's own error, and no request sent.
local vertexops = require "vertexops"
local core = require "vertexops.core"
local H = require "support.helper"

local NAME = H.NAME .. "1"

describe("misuse of the API", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  describe("errors are tagged", function()
    it("for a closed multi handle", function()
      local m = core.multi()
      m:close()
      local ok, err = pcall(m.perform, m)
      assert.is_false(ok)
      assert.are.equal("ValueError", err.tags[1])
      assert.matches("closed vertexops multi handle", err.message, 1, true)
    end)

    it("for a handle that is busy with a transfer", function()
      local op = server:create {}
      local h, m = core.handle(), core.multi()
      local req = core.build("get", op.name, nil, H.opts(server))
      req.ca_file = server.ca_file
      h:start(req, m, "t")
      local ok, err = pcall(h.call, h, req, "t")
      assert.is_false(ok)
      assert.are.equal("ValueError", err.tags[1])
      assert.matches("busy", err.message, 1, true)
      h:close()
      m:close()
    end)

    it("for an unknown call", function()
      local ok, err = pcall(core.build, "bogus", NAME, nil, {})
      assert.is_false(ok)
      assert.are.equal("ValueError", err.tags[1])
      assert.matches("^call must be ", err.message)
    end)

    it("for something that is not a handle", function()
      local ok, err = pcall(core.handle().call, {}, {})
      assert.is_false(ok)
      assert.are.equal("TypeError", err.tags[1])
    end)

    it("for a closed client", function()
      local c = vertexops.client(H.opts(server))
      c:close()
      local err = H.raises(c.get, c, NAME)
      assert.are.equal("ValueError", err.tags[1])
      assert.matches("client:get() on a closed client", err.message, 1, true)
    end)
  end)
end)

describe("misuse of the API", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  describe("misuse", function()
    it("raises TypeError for a method called with a dot instead of a colon", function()
      local c = vertexops.client(H.opts(server))
      local err = H.raises(c.get, H.NAME .. "1")
      assert.are.equal("TypeError", H.tags(err))
      assert.are.equal(0, #server:log())
    end)

    it("raises ValueError for a call on a closed client", function()
      local c = vertexops.client(H.opts(server))
      c:close()
      local err = H.raises(c.get, c, server:create {}.name)
      assert.are.equal("ValueError", H.tags(err))
      assert.matches("client:get() on a closed client", err.message, 1, true)
      assert.are.equal(0, #server:log())
    end)
  end)
end)
