-- A hostile server: every malformed, oversized, endless or misleading answer ends in the contract's
-- tag within the call's deadline, and the process lives on. Calls that could crash the
-- interpreter run in a child interpreter whose exit and output are asserted. Retry delays are
-- read from an injected sleep (H.fake_time); real time only bounds the whole call.
local vertexops = require "vertexops"
local H = require "support.helper"

-- Real seconds f takes; f's error (or nil) first.
local timed = H.timed

describe("a hostile server", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  local function opts(t, extra) return H.timed_opts(server, t, extra) end

  describe("malformed answers", function()
    it("invalid UTF-8 in a 200 body is returned as bytes", function()
      local op = server:create {}
      server:fault { match = "get", invalid_utf8 = true }
      local got = vertexops.get(op.name, nil, H.opts(server))
      assert.are.equal(op.name, got.name)
      assert.are.equal("\255\254\195\040", got.metadata.injected)
    end)

    it("invalid UTF-8 in an error message is HttpError with a printable message", function()
      server:fault { match = "get", status = 404, invalid_utf8 = true }
      local err = H.raises(vertexops.get, H.NAME .. "1", nil, H.opts(server))
      assert.are.equal(404, err.code)
      assert.are.equal("string", type(err.message))
      assert.are.equal("string", type(tostring(err)))
    end)

    it("a NUL byte in a response header is a tagged error, cancel sent once", function()
      local body = "{}"
      local raw = H.fake.raw_server("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Nul: a\0b\r\n"
        .. "Content-Length: " .. #body .. "\r\n\r\n" .. body)
      local err, secs = timed(vertexops.cancel, H.NAME .. "1", nil, { endpoint = raw.endpoint, token = "t", timeout = 10 })
      local requests = raw.requests()
      raw.stop()
      assert.is_true(vertexops.is(err, "ConnectionError") or vertexops.is(err, "ResponseTypeError"), tostring(err))
      H.within(secs, 0, "the cancel") -- an answer at once, the timeout (10 s) far past the bound
      assert.are.equal(1, #requests)
    end)
  end)

  describe("redirects", function()
    for _, status in ipairs { 301, 302, 303, 307, 308 } do
      it(status .. " to another host is HttpError, never followed, no token sent there", function()
        local other = H.fake.raw_server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", "127.0.0.2")
        local op = server:create {}
        server:fault { match = "cancel", status = status, redirect = other.endpoint .. "/v1beta1/" .. op.name .. ":cancel" }
        local err = H.raises(vertexops.cancel, op.name, nil, H.opts(server))
        local got = other.requests()
        other.stop()
        assert.are.equal("HttpError", H.tags(err))
        assert.are.equal(status, err.code)
        assert.are.equal(0, #got)
        assert.are.equal(1, #server:log("cancel"))
      end)
    end
  end)

  describe("HTTP/2 connection faults in the middle of cancel_many", function()
    -- every name cancelled once, each result ok; returns the cancel log
    local function each_once(names, results)
      local log = server:log("cancel")
      local per = {}
      for _, e in ipairs(log) do per[e.name] = (per[e.name] or 0) + 1 end
      for i, name in ipairs(names) do
        assert.are.same({ ok = true }, results[i])
        assert.are.equal(1, per[name], name .. " cancelled " .. tostring(per[name]) .. " times")
      end
      assert.are.equal(#names, #log)
      return log
    end

    it("GOAWAY every " .. H.fake.GOAWAY_AFTER .. " requests: no cancel lost, none sent twice", function()
      local names = {}
      for i = 1, 40 do names[i] = server:create {}.name end
      server:reset_log()
      server:fault { match = "cancel", delay = 0.02, times = 40 }
      local c = vertexops.client(H.opts(server, { endpoint = server.goaway_endpoint }))
      local log = each_once(names, c:cancel_many(names, nil, { concurrency = 10 }))
      local per_conn, conns = {}, 0
      for _, e in ipairs(log) do
        if not per_conn[e.connection] then conns = conns + 1 end
        per_conn[e.connection] = (per_conn[e.connection] or 0) + 1
        assert.is_true(per_conn[e.connection] <= H.fake.GOAWAY_AFTER)
      end
      assert.is_true(conns >= 40 / H.fake.GOAWAY_AFTER, conns .. " connections")
    end)

    -- nginx refuses (RST_STREAM REFUSED_STREAM) a stream that carries a body before the client has
    -- acknowledged its SETTINGS (http2_body_preread_size 0), and allows one stream per connection:
    -- libcurl opens a connection for each concurrent cancel, its first stream is refused, libcurl
    -- retries it on a fresh connection (up to 5 times), and gives up with curl error 56.
    -- A refused stream never reached the service, so it was not sent; a cancel either went through
    -- exactly once or is reported as a ConnectionError having never been sent.
    it("REFUSED_STREAM for streams opened past the server's limit: no cancel lost, none sent twice", function()
      local names = {}
      for i = 1, 10 do names[i] = server:create {}.name end
      local c = vertexops.client(H.opts(server, { endpoint = server.narrow_endpoint }))
      c:get(names[1]) -- a connection whose SETTINGS are acknowledged
      server:reset_log()
      local results = c:cancel_many(names, nil, { concurrency = 10 })
      local per = {}
      for _, e in ipairs(server:log("cancel")) do per[e.name] = (per[e.name] or 0) + 1 end
      for i, name in ipairs(names) do
        if results[i].ok then
          assert.are.equal(1, per[name], name .. " cancelled " .. tostring(per[name]) .. " times")
        else
          assert.is_true(vertexops.is(results[i].err, "ConnectionError"), tostring(results[i].err))
          assert.is_nil(per[name], name .. " failed but reached the server")
        end
      end
      local _, refused = server:error_log("narrow"):gsub("before settings were acknowledged", "")
      assert.is_true(refused > 0, "nginx refused no stream")
    end)
  end)

  -- self-contained (it read the process state the specs above left, and passed run alone): one
  -- client through an oversized body, an oversized header and an error in invalid UTF-8, then a get
  it("leaves a client usable after oversized and malformed answers: its next get returns the operation", function()
    local op = server:create {}
    local t = H.fake_time()
    local c = vertexops.client(opts(t, { endpoint = server.http_endpoint }))
    server:fault { match = "get", size = 40 * 1024 * 1024 }
    assert.are.equal("ResponseTypeError", H.tags(H.raises(c.get, c, op.name)))
    server:fault { match = "get", header_size = 100 * 1024 + 1 }
    assert.are.equal("ResponseTypeError", H.tags(H.raises(c.get, c, op.name)))
    server:fault { match = "get", status = 404, invalid_utf8 = true }
    assert.are.equal(404, H.raises(c.get, c, op.name).code)
    assert.are.equal(op.name, c:get(op.name).name)
    assert.are.equal(4, #server:log("get"))
    c:close()
  end)
end)
