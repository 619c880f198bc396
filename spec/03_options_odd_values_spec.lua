-- Odd values in options (docs/contract.md, "Options"): endpoints with bad ports, bad IPv6
-- literals, disguised loopback addresses or a NUL byte; numbers that cannot be integers; caller
-- tables with metatables, providers and clocks of the wrong type -- refused before any I/O with a
-- tagged error naming the option, or read by their own keys only.
local vertexops = require "vertexops"
local core = require "vertexops.core"
local H = require "support.helper"

local NAME = H.NAME .. "1"

describe("odd values in options", function()
  describe("endpoints", function()
    local function check(endpoint)
      local ok, err = pcall(core.check_options, { endpoint = endpoint })
      if not ok then assert.matches("^endpoint ", err.message) end -- names the option
      return ok and "ok" or err.tags[1]
    end

    it("refuse a port above 65535", function() assert.are.equal("ValueError", check("http://127.0.0.1:99999")) end)
    it("refuse a port that is not a number", function() assert.are.equal("ValueError", check("http://127.0.0.1:1x")) end)
    it("refuse port 0", function() assert.are.equal("ValueError", check("https://example.com:0")) end)
    it("refuse an IPv6 literal that is not one", function() assert.are.equal("ValueError", check("https://[zz]:443")) end)
    it("refuse plain http to 127.999.0.1", function() assert.are.equal("ValueError", check("http://127.999.0.1")) end)
    it("refuse plain http to a short form of 127.0.0.1", function() assert.are.equal("ValueError", check("http://127.1")) end)
    it("refuse a NUL byte, naming it", function()
      local ok, err = pcall(core.check_options, { endpoint = "https://a.example\0.evil" })
      assert.is_false(ok)
      assert.are.equal("ValueError", err.tags[1])
      assert.matches("endpoint contains byte 0x00 ", err.message, 1, true)
    end)
    it("accept plain http to 127.0.0.1 with a port", function() assert.are.equal("ok", check("http://127.0.0.1:8080")) end)
    it("accept plain http to localhost", function() assert.are.equal("ok", check("http://localhost/base")) end)
    it("accept plain http to [::1]", function() assert.are.equal("ok", check("http://[::1]:8080")) end)
    it("accept a region template", function()
      assert.are.equal("ok", check("https://{region}-aiplatform.googleapis.com"))
    end)

    it("with a bad port make no request and no retry", function()
      local t = H.fake_time()
      local err = H.raises(vertexops.get, NAME, nil, { endpoint = "http://127.0.0.1:99999", token = "t",
        clock = t.clock, sleep = t.sleep })
      assert.are.equal("ValueError", err.tags[1])
      assert.matches("endpoint has an invalid port", err.message, 1, true)
      assert.are.equal(0, #t.delays)
    end)
  end)

  describe("numbers that cannot be integers", function()
    it("NaN as page_size is a TypeError", function()
      local ok, err = pcall(core.check_options, { page_size = 0 / 0 })
      assert.is_false(ok)
      assert.are.equal("TypeError", err.tags[1])
    end)

    it("1e300 as retry.max_retries is a TypeError or ValueError", function()
      local ok, err = pcall(core.check_options, { retry = { max_retries = 1e300 } })
      assert.is_false(ok)
      assert.is_truthy(err.tags[1] == "TypeError" or err.tags[1] == "ValueError")
      assert.matches("option 'retry.max_retries'", err.message, 1, true)
    end)

    it("NaN seconds make multi:wait return at once", function()
      local m = core.multi()
      local t0 = core.clock()
      m:wait(0 / 0)
      H.within(core.clock() - t0, 0, "multi:wait(NaN)")
      m:close()
    end)
  end)
end)

describe("odd values in options", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  describe("caller data", function()
    it("raises TypeError for credentials that are a table but not a provider, before any I/O", function()
      local err = H.raises(vertexops.client, { credentials = {}, endpoint = server.endpoint })
      assert.are.equal("TypeError", H.tags(err))
      assert.matches("credentials", err.message)
      assert.are.equal(0, #server:log())
    end)

    it("raises TypeError for per-call credentials that are not a provider, before any I/O", function()
      local c = vertexops.client { endpoint = server.endpoint, ca_file = server.ca_file }
      local err = H.raises(c.get, c, H.NAME .. "1", nil, { credentials = { token = "x" } })
      assert.are.equal("TypeError", H.tags(err))
      assert.are.equal(0, #server:log())
    end)

    it("raises TypeError for a clock that returns something other than a number", function()
      local o = H.opts(server, { clock = function() return "noon" end })
      local err = H.raises(vertexops.get, H.NAME .. "1", nil, o)
      assert.are.equal("TypeError", H.tags(err))
      assert.are.equal(0, #server:log())
    end)

    it("uses only the options table's own keys, not those __pairs makes up", function()
      local op = server:create {}
      local hidden = H.opts(server, { timeout = "soon" })
      local o = setmetatable(H.opts(server), { __pairs = function() return next, hidden, nil end })
      assert.are.equal(op.name, vertexops.client(o):get(op.name).name)
    end)

    it("uses only a retry table's own keys, not those behind __index", function()
      local t = H.fake_time()
      local op = server:create {}
      server:fault { match = "get", status = 503 }
      local retry = setmetatable({ initial_delay = 2 }, { __index = { max_retries = "many" } })
      local got = vertexops.get(op.name, nil, H.timed_opts(server, t, { retry = retry }))
      assert.are.equal(op.name, got.name)
      assert.are.same({ 2 }, t.delays)
    end)

    it("raises ValueError for an empty region after the same call without one", function()
      local op = server:create {}
      local c = vertexops.client(H.opts(server))
      c:get(op.name)
      local err = H.raises(c.get, c, op.name, "")
      assert.are.equal("ValueError", H.tags(err))
      assert.matches("^region ", err.message)
      assert.are.equal(1, #server:log())
    end)
  end)
end)
