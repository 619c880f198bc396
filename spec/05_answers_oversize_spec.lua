-- Oversized answers (docs/contract.md, "Answers"): bodies over 32 MiB, header blocks over 256 KiB
-- (a flood of interim 1xx heads counts too), one header line over libcurl's 100 KB and endless
-- bodies are a ResponseTypeError, keeping the status of an error, not retried, and no large buffer
-- stays behind. Retry delays are read from an injected sleep (H.fake_time); real time only bounds
-- the whole call.
local vertexops = require "vertexops"
local H = require "support.helper"

local NAME = H.NAME .. "1"
-- Real seconds f takes; f's error (or nil) first.
local timed = H.timed

describe("oversized answers", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  describe("oversize answers", function()
    it("with one header over 100 KB are a ResponseTypeError, not retried", function()
      server:fault { match = "get", status = 200, body = "{}", headers = { ["X-Big"] = string.rep("a", 120 * 1024) } }
      local t = H.fake_time()
      -- over HTTP/1.1: nginx will not send such a header over HTTP/2
      local err = H.raises(vertexops.get, NAME, nil,
        H.opts(server, { endpoint = server.http_endpoint, clock = t.clock, sleep = t.sleep }))
      assert.are.equal("ResponseTypeError", err.tags[1])
      assert.are.equal(1, #server:log("get"))
    end)

    it("with headers over 256 KiB name the cap in KiB", function()
      local headers = {}
      for i = 1, 5 do headers["X-Big-" .. i] = string.rep("b", 60 * 1024) end
      server:fault { match = "get", status = 200, body = "{}", headers = headers }
      local err = H.raises(vertexops.get, NAME, nil, H.opts(server, { endpoint = server.http_endpoint, retry = false }))
      assert.are.equal("ResponseTypeError", err.tags[1])
      assert.matches("256 KiB", err.message)
    end)

    -- libcurl's header callback sees each 1xx head and then the final one: every head counts
    -- against the 256 KiB, as in the cosocket parser (spec/13_core_h1_spec.lua), so a flood of interim
    -- answers is refused for its size like any other oversize answer, not retried.
    it("a flood of 20,000 1xx heads before a 200 is a ResponseTypeError, fetched once by a get", function()
      local raw = H.fake.raw_server(string.rep("HTTP/1.1 100 Continue\r\n\r\n", 20000)
        .. "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
      local t = H.fake_time()
      local ok, err = pcall(vertexops.get, NAME, nil,
        { endpoint = raw.endpoint, token = "t", timeout = 60, clock = t.clock, sleep = t.sleep })
      local requests = raw.requests()
      raw.stop()
      assert.is_false(ok)
      assert.are.same({ "ResponseTypeError" }, err.tags, tostring(err))
      assert.matches("256 KiB", err.message)
      assert.is_nil(err.code) -- an interim status is not the answer's
      assert.are.equal(1, #requests, "fetched " .. #requests .. " times")
      assert.are.same({}, t.delays)
    end)

    it("keep the status of a 404 whose body is over 32 MiB", function()
      server:fault { match = "get", status = 404, size = 40 * 1024 * 1024 }
      local err = H.raises(vertexops.get, NAME, nil, H.opts(server, { retry = false }))
      assert.are.equal("ResponseTypeError", err.tags[1])
      assert.are.equal(404, err.code)
      assert.matches("32 MiB", err.message)
    end)

    it("leave no large buffer behind", function()
      local c = vertexops.client(H.opts(server, { retry = false }))
      server:fault { match = "get", size = 20 * 1024 * 1024 }
      pcall(c.get, c, NAME)
      assert.is_true(c.handle:stats().buffered <= 1024 * 1024)
      c:close()
    end)
  end)
end)

describe("a hostile server", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  local function opts(t, extra) return H.timed_opts(server, t, extra) end

  describe("oversized answers", function()
    it("a 40 MB 200 body is ResponseTypeError, not retried", function()
      local op = server:create {}
      local t = H.fake_time()
      server:fault { match = "get", size = 40 * 1024 * 1024, times = 10 }
      local err = H.raises(vertexops.get, op.name, nil, opts(t))
      assert.are.equal("ResponseTypeError", H.tags(err))
      assert.are.equal(1, #server:log("get"))
    end)

    it("a 404 with a 40 MB body is ResponseTypeError keeping code 404", function()
      local t = H.fake_time()
      server:fault { match = "get", status = 404, size = 40 * 1024 * 1024 }
      local err = H.raises(vertexops.get, H.NAME .. "1", nil, opts(t))
      assert.are.equal("ResponseTypeError", H.tags(err))
      assert.are.equal(404, err.code)
    end)

    for _, size in ipairs { 100 * 1024 + 1, 1024 * 1024 } do
      it(("a %d-byte response header (HTTP/1.1) is ResponseTypeError, not retried"):format(size), function()
        local op = server:create {}
        local t = H.fake_time()
        server:fault { match = "get", header_size = size, times = 10 }
        local err = H.raises(vertexops.get, op.name, nil, opts(t, { endpoint = server.http_endpoint }))
        assert.are.equal("ResponseTypeError", H.tags(err))
        assert.are.same({}, t.delays)
        assert.are.equal(1, #server:log("get"))
      end)

      -- HTTP/2's decoder (nghttp2, under libcurl) refuses a header field over 64 KiB by closing the
      -- connection (COMPRESSION_ERROR); libcurl then reports "Empty reply from server", which no
      -- client can tell from a server that closed without answering: a ConnectionError.
      it(("a %d-byte response header (HTTP/2) is a ConnectionError naming the empty reply"):format(size), function()
        local op = server:create {}
        local t = H.fake_time()
        server:fault { match = "get", header_size = size, times = 10 }
        local c = vertexops.client(opts(t, { retry = false })) -- a fresh connection: nothing for libcurl to resend
        local err = H.raises(c.get, c, op.name)
        c:close()
        assert.are.equal("ConnectionError", H.tags(err))
        assert.matches("Empty reply", err.message)
        assert.are.equal(1, #server:log("get"))
      end)
    end

    -- libcurl sends a request once more on a fresh connection when a reused one dies before any
    -- byte of the answer (an idle connection the server closed; a stream refused by GOAWAY or
    -- REFUSED_STREAM, which the server did not act on). It cannot tell those from a server that
    -- acted and then broke the connection, as here: the cancel reaches it twice, never more.
    it("a 1 MB response header on a reused HTTP/2 connection: the cancel resent once by libcurl, no more", function()
      local op = server:create {}
      local t = H.fake_time()
      local c = vertexops.client(opts(t))
      c:get(op.name) -- the connection the cancel will reuse
      server:reset_log()
      server:fault { match = "cancel", header_size = 1024 * 1024 }
      local ok, err = pcall(c.cancel, c, op.name)
      assert.are.equal(2, #server:log("cancel"), "the cancel was sent " .. #server:log("cancel") .. " times")
      assert.is_true(ok, tostring(err)) -- the second answer is an ordinary one
      assert.are.same({}, t.delays)     -- and our retry rules add nothing
    end)

    it("an endless body ends in ResponseTypeError within the request timeout, not retried", function()
      local op = server:create {}
      server:fault { match = "get", endless = 60, times = 10 }
      -- 32 MiB arrive in well under a second on an idle machine, up to 3 s at load 14 (a request
      -- timeout of 2 s cut some reads short there: a TimeoutError, or a retry). Without the cap the
      -- read goes on until request_timeout (20 s) and the bound (15 s) fails; the deadline (60 s)
      -- lies past both
      local err, secs = timed(vertexops.get, op.name, nil, H.opts(server, { request_timeout = 20, timeout = 60 }))
      assert.are.equal("ResponseTypeError", H.tags(err))
      H.within(secs, 3, "the get")
      assert.are.equal(1, #server:log("get"))
    end)
  end)
end)
