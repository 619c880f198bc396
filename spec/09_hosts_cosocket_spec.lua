-- make test: once
-- The cosocket transport inside a real nginx (examples/openresty/nginx.conf, spec/support/openresty.lua):
-- each behaviour runs as Lua in the content phase against the fake Vertex server, and every error
-- tag of the contract is reached through cosockets as through libcurl.
local cjson = require "cjson"
local H = require "support.helper"
local openresty = require "support.openresty"

describe("cosocket transport in nginx", function()
  local fake = H.fake_server()
  local server, app, other, dir

  setup(function()
    app = openresty.start(fake.server)
    other = H.fake.start() -- a server whose certificate nginx does not trust
    dir = H.fake.tmpdir()
  end)
  teardown(function()
    app:stop()
    other:stop()
    os.execute("rm -rf " .. dir)
  end)
  before_each(function() server = fake.server end)

  local function raised(code, args)
    local doc = app:run(code, args)
    assert.is_false(doc.ok, "the call succeeded: " .. cjson.encode(doc.result or {}))
    assert.is_table(doc.error.tags, cjson.encode(doc.error))
    return doc.error, doc
  end

  it("gets an operation over HTTP/1.1 with the request's headers and the token", function()
    local op = server:create {}
    local res = app:result([[return vertexops.get(args.name, nil, T.opts())]], { name = op.name })
    assert.are.equal(op.name, res.name)
    local e = server:log()[1]
    assert.are.equal("HTTP/1.1", e.protocol)
    assert.are.equal("https", e.scheme)
    assert.are.equal("Bearer test-token", e.headers.authorization)
    assert.are.equal("application/json", e.headers.accept)
    assert.matches("^name=", e.headers["x-goog-request-params"])
    assert.matches("^localhost:%d+$", e.headers.host)
  end)

  it("cancels with a POST whose body is empty", function()
    local op = server:create { done_after = 3600 }
    assert.is_true(app:result([[return vertexops.cancel(args.name, nil, T.opts())]], { name = op.name }))
    local e = server:log("cancel")[1]
    assert.are.equal("POST", e.method)
    assert.are.equal("0", e.headers["content-length"])
  end)

  it("raises HttpError with code, status and headers for a 404", function()
    local err = raised([[return vertexops.get(args.name, nil, T.opts())]], { name = H.NAME .. "missing" })
    assert.are.same({ "HttpError" }, err.tags)
    assert.are.equal(404, err.code)
    assert.are.equal("NOT_FOUND", err.status)
    assert.matches("^application/json", err.headers["content-type"])
  end)

  it("retries 503 with the backoff delays, then succeeds", function()
    local op = server:create {}
    server:fault { match = "get", status = 503, times = 2 }
    local res = app:result([[
      local sleep, delays = T.recorder()
      local op = vertexops.get(args.name, nil, T.opts { sleep = sleep })
      return { name = op.name, delays = delays }]], { name = op.name })
    assert.are.equal(op.name, res.name)
    assert.are.same({ 1, 1.25 }, res.delays)
    assert.are.equal(3, #server:log("get"))
  end)

  it("raises the last 503 once retries are spent", function()
    server:fault { match = "cancel", status = 503, times = 10 }
    local err = raised([[
      local sleep = T.recorder()
      return vertexops.cancel(args.name, nil, T.opts { sleep = sleep, retry = { max_retries = 2 } })]],
      { name = server:create {}.name })
    assert.are.equal(503, err.code)
    assert.are.equal(3, #server:log("cancel"))
  end)

  it("honours Retry-After", function()
    server:fault { match = "get", status = 429, retry_after = 7 }
    local res = app:result([[
      local sleep, delays = T.recorder()
      vertexops.get(args.name, nil, T.opts { sleep = sleep })
      return delays]], { name = server:create {}.name })
    assert.are.same({ 7 }, res)
  end)

  it("raises TimeoutError at the call's deadline, retries included, with ngx.sleep", function()
    server:fault { match = "get", status = 503, times = 100 }
    local res = app:result([[
      local t0 = ngx.now()
      local r = T.catch(vertexops.get, args.name, nil, T.opts { timeout = 0.6, retry = { initial_delay = 0.2 } })
      ngx.update_time()
      return { err = r.raised, elapsed = ngx.now() - t0 }]], { name = server:create {}.name })
    assert.are.same({ "TimeoutError" }, res.err.tags)
    H.within(res.elapsed, 0.6, "the get") -- six retries past the deadline would sleep 12 s
  end)

  it("refreshes the token once on a 401 and retries the request", function()
    H.authorized_user(dir .. "/user.json", app.endpoint)
    local op = server:create {}
    server:fault { match = "get", status = 401 }
    local res = app:result([[
      local c = vertexops.client { credentials = args.file }
      return c:get(args.name).name]], { name = op.name, file = dir .. "/user.json" })
    assert.are.equal(op.name, res)
    local calls = {}
    for _, e in ipairs(server:log()) do calls[#calls + 1] = e.call end
    assert.are.same({ "token", "get", "token", "get" }, calls)
    assert.are.equal("Bearer ya29.fake-2", server:log()[4].headers.authorization)
  end)

  it("lists every page", function()
    for _ = 1, 5 do server:create {} end
    local res = app:result([[
      local n = 0
      for _ in vertexops.operations(args.parent, nil, T.opts { page_size = 2 }) do n = n + 1 end
      return n]], { parent = H.PARENT })
    assert.are.equal(5, res)
    assert.are.equal(3, #server:log("list"))
  end)

  it("waits with the server's :wait and by polling", function()
    local a = server:create { done_after = 0.5 }
    local b = server:create { done_after = 1.2 }
    local res = app:result([[
      local x = vertexops.wait(args.a, nil, T.opts { strategy = "server" })
      local y = vertexops.wait(args.b, nil, T.opts { strategy = "poll", polling = { initial_delay = 0.1 } })
      return { x.done, y.done }]], { a = a.name, b = b.name })
    assert.are.same({ true, true }, res)
    assert.is_true(#server:log("wait") >= 1)
    assert.is_true(#server:log("get") >= 2)
  end)

  it("bounds the connect phase by the call's time: a wait for a handshake slot and the handshake together", function()
    -- 8 gets take the 8 handshake slots of a server that stalls TLS, for their whole 5 s; 4 more
    -- start 0.5 s later with 5 s timeouts too: they get a slot at 5 s, and must end by their own
    -- deadline (5.5 s) instead of handshaking another 5 s. (An endpoint of its own, the host in
    -- capitals: a pool with no pooled connection to take instead of handshaking.)
    local op = server:create {}
    local endpoint = app.endpoint:gsub("localhost", "LOCALHOST")
    local worker = H.fake_worker(server)
    os.execute("kill -STOP " .. worker)
    local ok, res = pcall(app.result, app, [[
      local function one(delay)
        if delay > 0 then ngx.sleep(delay) end
        ngx.update_time()
        local t = ngx.now()
        local ok, e = pcall(vertexops.get, args.name, nil, T.opts { endpoint = args.endpoint, timeout = 5, retry = false })
        ngx.update_time()
        return { took = ngx.now() - t, err = not ok and e.tags or nil }
      end
      local threads = {}
      for i = 1, 12 do threads[i] = ngx.thread.spawn(one, i <= 8 and 0 or 0.5) end
      local out = {}
      for i = 1, 12 do local _, r = ngx.thread.wait(threads[i]); out[i] = r end
      return out]], { name = op.name, endpoint = endpoint })
    os.execute("kill -CONT " .. worker)
    assert(ok, res)
    for i, r in ipairs(res) do
      assert.are.same({ "ConnectionFailedError", "ConnectionError", "TimeoutError" }, r.err)
      -- past its deadline by scheduling only (the developers' guide: 2 s above the normal ~0)
      assert.is_true(r.took - 5 < 2, ("get %d took %.2f s, %.2f s past its 5 s timeout"):format(i, r.took, r.took - 5))
    end
  end)

  describe("error tags", function()
    local function call(extra, name, method)
      return raised(([[
        local o = T.opts(args.extra)
        return vertexops.%s(args.name, nil, o)]]):format(method or "get"),
        { name = name or H.NAME .. "1", extra = extra })
    end

    it("a refused connection: ConnectionFailedError, ConnectionError", function()
      local err = call { endpoint = "https://localhost:" .. H.fake.free_port(), retry = false }
      assert.are.same({ "ConnectionFailedError", "ConnectionError" }, err.tags)
      assert.matches("connection refused", err.message)
    end)

    it("a TLS handshake that never ends: ConnectionFailedError, ConnectionError, TimeoutError", function()
      local listener, port = H.fake.silent_listener()
      local err = call { endpoint = "https://localhost:" .. port, retry = false, connect_timeout = 0.3 }
      listener:close()
      assert.are.same({ "ConnectionFailedError", "ConnectionError", "TimeoutError" }, err.tags)
    end)

    it("a certificate nginx does not trust: ConnectionFailedError naming lua_ssl_trusted_certificate", function()
      local err = call { endpoint = other.endpoint:gsub("127%.0%.0%.1", "localhost"), retry = false }
      assert.are.same({ "ConnectionFailedError", "ConnectionError" }, err.tags)
      assert.matches("lua_ssl_trusted_certificate", err.message)
    end)

    it("an https endpoint by IP address: ValueError (nginx cannot check an IP against the certificate)", function()
      local err = call { endpoint = server.endpoint }
      assert.are.same({ "ValueError" }, err.tags)
      assert.matches("cannot verify a TLS certificate for an IP", err.message, 1, true)
      assert.matches("in the endpoint", err.message, 1, true)
      assert.are.equal(0, #server:log())
    end)

    it("a stalled answer: TimeoutError only (the request was sent)", function()
      server:fault { match = "cancel", delay = 2 }
      local err = call({ request_timeout = 0.3, retry = false }, server:create {}.name, "cancel")
      assert.are.same({ "TimeoutError" }, err.tags)
    end)

    it("a connection dropped before the answer: ConnectionError, not retried for a POST", function()
      server:fault { match = "cancel", drop = "before", times = 2 }
      local err, doc = call({}, server:create {}.name, "cancel")
      assert.are.same({ "ConnectionError" }, err.tags)
      -- sent once more only when the dead connection was a pooled one (as libcurl does)
      assert.are.equal(1 + doc.stats.resends, #server:log("cancel"))
    end)

    it("a connection dropped mid-body: ConnectionError", function()
      server:fault { match = "get", drop = "mid" }
      local err = call { retry = false }
      assert.are.same({ "ConnectionError" }, err.tags)
      assert.matches("before the answer was complete", err.message)
    end)

    it("a 200 that is not JSON: ResponseTypeError", function()
      server:fault { match = "get", body = "{ not json" }
      local err = call { retry = false }
      assert.are.same({ "ResponseTypeError" }, err.tags)
      assert.are.equal(200, err.code)
    end)

    it("a 5xx with an HTML body: HttpError with the raw body", function()
      server:fault { match = "get", status = 500, body = "<html>oops</html>", content_type = "text/html" }
      local err = call { retry = false }
      assert.are.same({ "HttpError" }, err.tags)
      assert.are.equal(500, err.code)
    end)

    it("a body over 32 MiB, sized or endless: ResponseTypeError", function()
      server:fault { match = "get", size = 33 * 1048576 }
      local err = call { retry = false }
      assert.are.same({ "ResponseTypeError" }, err.tags)
      assert.matches("32 MiB", err.message)
      server:fault { match = "get", endless = 20 }
      err = call { retry = false, request_timeout = 20 }
      assert.are.same({ "ResponseTypeError" }, err.tags)
      assert.matches("32 MiB", err.message)
    end)

    it("headers over 256 KiB: ResponseTypeError", function()
      server:fault { match = "get", header_size = 300000 }
      local err = call { retry = false }
      assert.are.same({ "ResponseTypeError" }, err.tags)
      assert.matches("256 KiB", err.message)
    end)

    it("malformed framing from a raw server: ConnectionError; a chunk past the cap: ResponseTypeError", function()
      for _, case in ipairs {
        { "ConnectionError", "HTTP/1.1 200 OK\r\nBroken header\r\nContent-Length: 2\r\n\r\n{}" },
        { "ConnectionError",
          "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n" },
        { "ConnectionError", "HTTP/1.1 200 OK\r\nA: b\r\n folded\r\nContent-Length: 2\r\n\r\n{}" },
        { "ResponseTypeError", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff\r\n" },
      } do
        local raw = H.fake.raw_server(case[2])
        local err = call { endpoint = raw.endpoint, retry = false }
        raw.stop()
        assert.are.same({ case[1] }, err.tags)
      end
    end)
  end)
end)
