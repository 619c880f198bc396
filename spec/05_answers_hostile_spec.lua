-- A hostile server: every malformed, oversized, endless or misleading answer ends in the contract's
-- tag within the call's deadline, and the process lives on. Calls that could crash the
-- interpreter run in a child interpreter whose exit and output are asserted. Retry delays are
-- read from an injected sleep (H.fake_time); real time only bounds the whole call.
-- Contract: docs/contract.md, "Answers (what the service sends back)" and "Errors".
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
