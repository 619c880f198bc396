-- Timeouts and retries against a hostile server (docs/contract.md, "Retry and timeouts"): a body
-- trickling, a TLS handshake never answered, and a Retry-After that is huge, negative, garbage or a
-- date end by the call's deadline, with no sleep past it. Retry delays are read from an injected
-- sleep (H.fake_time); real time only bounds the whole call.
local vertexops = require "vertexops"
local H = require "support.helper"

-- Real seconds f takes; f's error (or nil) first.
local timed = H.timed

describe("timeouts and retries against a hostile server", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  local function opts(t, extra) return H.timed_opts(server, t, extra) end

  describe("slow and silent servers", function()
    it("a body trickling one byte a second: get ends in TimeoutError by its timeout", function()
      local op = server:create {}
      server:fault { match = "get", trickle = 1, times = 100 }
      local err, secs = timed(vertexops.get, op.name, nil, H.opts(server, { request_timeout = 30, timeout = 3 }))
      assert.is_true(vertexops.is(err, "TimeoutError"), tostring(err))
      H.within(secs, 3, "the get") -- the trickle and the request timeout last far longer
    end)

    it("a body trickling one byte a second: cancel ends in TimeoutError, sent once", function()
      local op = server:create {}
      server:fault { match = "cancel", trickle = 1, times = 100 }
      local err, secs = timed(vertexops.cancel, op.name, nil, H.opts(server, { request_timeout = 30, timeout = 3 }))
      assert.is_true(vertexops.is(err, "TimeoutError"), tostring(err))
      H.within(secs, 3, "the cancel") -- the trickle and the request timeout last far longer
      assert.are.equal(1, #server:log("cancel"))
    end)

    it("TCP accepted, TLS never answered: TimeoutError by the call's timeout", function()
      local listener, port = H.fake.silent_listener()
      local err, secs = timed(vertexops.get, H.NAME .. "1", nil,
        { endpoint = "https://127.0.0.1:" .. port, token = "t", connect_timeout = 30, timeout = 3 })
      listener:close()
      assert.is_true(vertexops.is(err, "TimeoutError"), tostring(err))
      H.within(secs, 3, "the get")
    end)
  end)

  describe("Retry-After", function()
    -- a 503 on cancel with this Retry-After, then success; the injected sleep records the delays
    local function delays_for(value, extra)
      local op = server:create {}
      local t = H.fake_time()
      server:fault { match = "cancel", status = 503, retry_after = value }
      local ok, err = pcall(vertexops.cancel, op.name, nil, opts(t, extra))
      if ok then err = nil end
      return t.delays, err, #server:log("cancel")
    end

    it("huge (a billion seconds): TimeoutError at once, no sleep, sent once", function()
      local delays, err, sent = delays_for("1000000000")
      assert.are.equal("TimeoutError", H.tags(err))
      assert.are.same({}, delays)
      assert.are.equal(1, sent)
    end)

    it("beyond any integer (1e30 seconds): TimeoutError at once, no sleep", function()
      local delays, err = delays_for(string.rep("9", 30))
      assert.are.equal("TimeoutError", H.tags(err))
      assert.are.same({}, delays)
    end)

    it("negative: ignored, the backoff delay is used", function()
      local delays, err = delays_for("-5")
      assert.is_nil(err)
      assert.are.same({ 1 }, delays)
    end)

    it("garbage: ignored, the backoff delay is used", function()
      local delays, err = delays_for("soon, maybe")
      assert.is_nil(err)
      assert.are.same({ 1 }, delays)
    end)

    it("an HTTP date in the past: retried at once", function()
      local delays, err, sent = delays_for(os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() - 3600))
      assert.is_nil(err)
      assert.are.equal(2, sent)
      for _, d in ipairs(delays) do assert.are.equal(0, d) end
    end)

    it("an HTTP date a year ahead: TimeoutError at once, no sleep", function()
      local delays, err = delays_for(os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 366 * 86400))
      assert.are.equal("TimeoutError", H.tags(err))
      assert.are.same({}, delays)
    end)
  end)
end)
