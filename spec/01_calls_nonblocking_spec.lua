-- The non-blocking API: client:start(...) stepped by req:poll(), req:wait(), and cancel_many.
local vertexops = require "vertexops"
local H = require "support.helper"

describe("non-blocking requests", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  -- polls until done; returns the poll results and how many polls it took
  local function drive(req, each)
    local n = 0
    while true do
      n = n + 1
      local r = { req:poll() }
      if r[1] then return r, n end
      if each then each() end
    end
  end

  it("cancels: poll() reports not done, then done, true", function()
    local op = server:create {}
    local c = vertexops.client(H.opts(server))
    local req = c:start("cancel", op.name)
    local r = drive(req)
    assert.are.same({ true, true }, r)
    assert.is_true(req.ok)
    assert.are.equal("cancel", server:log()[1].call)
  end)

  it("poll() never blocks: it answers while the server still holds the response", function()
    local op = server:create {}
    server:fault { match = "get", delay = 0.5 }
    local c = vertexops.client(H.opts(server))
    local req = c:start("get", op.name)
    assert.is_false(req:poll())
    assert.is_false(req:poll())
    assert.are.equal(op.name, req:wait().name)
  end)

  it("returns the error object when the call fails", function()
    local c = vertexops.client(H.opts(server, { retry = false }))
    local req = c:start("get", H.NAME .. "missing")
    local r = drive(req)
    assert.is_true(r[1])
    assert.is_false(req.ok)
    assert.are.equal(404, r[2].code)
    assert.is_true(vertexops.is_error(r[2]))
  end)

  it("retries with the same delays, asked of the injected clock", function()
    local op = server:create {}
    local t = H.fake_time()
    local c = vertexops.client(H.timed_opts(server, t))
    server:fault { match = "get", status = 503 }
    local req = c:start("get", op.name)
    local r = drive(req, function()
      if req.wake then t.now = req.wake end -- time passes only when the request sleeps
    end)
    assert.are.equal(op.name, r[2].name)
    assert.are.equal(2, #server:log("get"))
    assert.are.same({}, t.delays, "a started request never calls sleep: it hands the wait back")
  end)

  it("sleeps by returning to the caller, for the backoff delay", function()
    local op = server:create {}
    local t = H.fake_time()
    local c = vertexops.client(H.timed_opts(server, t))
    server:fault { match = "cancel", status = 429 }
    local req = c:start("cancel", op.name)
    while not req.wake do assert.is_false(req:poll()) end
    assert.are.equal(1, req.wake - t.now)
    assert.is_false(req:poll()) -- still asleep: the clock has not moved
    assert.are.equal(1, #server:log("cancel"))
    t.now = req.wake
    assert.is_true(drive(req)[1])
    assert.are.equal(2, #server:log("cancel"))
  end)

  it("keeps the deadline: TimeoutError when the next retry would start after it", function()
    local op = server:create {}
    local t = H.fake_time()
    local c = vertexops.client(H.timed_opts(server, t, { timeout = 3 }))
    server:fault { match = "cancel", status = 503, times = 10 }
    local req = c:start("cancel", op.name)
    local r = drive(req, function() if req.wake then t.now = req.wake end end)
    assert.are.equal("TimeoutError", H.tags(r[2]))
    assert.are.equal(3, #server:log("cancel"))
  end)

  it("runs cancel_and_wait to its two results", function()
    local op = server:create { done_after = 3600 }
    local c = vertexops.client(H.opts(server))
    local r = drive(c:start("cancel_and_wait", op.name))
    assert.is_true(r[1])
    assert.are.equal(1, r[2].error.code)
    assert.is_true(r[3])
  end)

  local puc51 = _VERSION == "Lua 5.1" and not rawget(_G, "jit")

  it("wait() yields inside a coroutine and returns the results", function()
    if puc51 then return pending("PUC Lua 5.1 cannot tell whether a coroutine may yield: wait() blocks there") end
    local op = server:create {}
    server:fault { match = "get", delay = 0.2 }
    local c = vertexops.client(H.opts(server))
    local co = coroutine.create(function() return c:start("get", op.name):wait() end)
    local yields, got = 0
    while true do
      local ok, res = coroutine.resume(co)
      assert.is_true(ok, res)
      if coroutine.status(co) == "dead" then
        got = res
        break
      end
      yields = yields + 1
      require("vertexops.core").sleep(0.01)
    end
    assert.is_true(yields > 0)
    assert.are.equal(op.name, got.name)
  end)

  it("wait() inside a coroutine on PUC Lua 5.1 blocks and returns the results", function()
    if not puc51 then return pending("only PUC Lua 5.1 lacks coroutine.isyieldable") end
    local op = server:create {}
    server:fault { match = "get", delay = 0.2 }
    local c = vertexops.client(H.opts(server))
    -- a pcall between the coroutine and wait(): yielding there would fail on 5.1
    local co = coroutine.create(function()
      local r = c:start("get", op.name)
      local ok, res = pcall(r.wait, r)
      assert(ok, res)
      return res
    end)
    local ok, got = coroutine.resume(co)
    assert.is_true(ok, got)
    assert.are.equal("dead", coroutine.status(co))
    assert.are.equal(op.name, got.name)
  end)

  it("wait() outside a coroutine blocks, and raises the call's error", function()
    local c = vertexops.client(H.opts(server, { retry = false }))
    assert.are.equal(404, H.raises(function() return c:start("get", H.NAME .. "missing"):wait() end).code)
  end)

  it("raises TypeError and ValueError at start, before any I/O", function()
    local c = vertexops.client(H.opts(server))
    local err = H.raises(c.start, c, "cancel", H.NAME .. "1?x")
    assert.are.equal("ValueError", H.tags(err))
    assert.matches("^name ", err.message)
    err = H.raises(c.start, c, "frobnicate", H.NAME .. "1")
    assert.are.equal("ValueError", H.tags(err))
    assert.matches("method 'frobnicate'", err.message, 1, true)
    assert.are.equal("TypeError", H.tags(H.raises(c.start, c, "get", 42)))
    assert.are.equal(0, #server:log())
  end)

  it("runs many requests at once on one connection", function()
    local c = vertexops.client(H.opts(server))
    server:fault { match = "get", delay = 0.2, times = 10 }
    local reqs = {}
    for i = 1, 10 do reqs[i] = c:start("get", server:create {}.name) end
    for i = 1, 10 do reqs[i]:wait() end
    local most = 0
    for _, e in ipairs(server:log("get")) do most = math.max(most, e.concurrent) end
    assert.is_true(most > 1, "requests did not overlap")
    assert.are.equal(1, server:connections())
  end)

  it("give their handle back when the exchange fails to start", function()
    local op = server:create {}
    -- a token function can still hand over a token that cannot go in a header
    local c = vertexops.client(H.opts(server, { token = function() return "not a header value" end }))
    for _ = 1, 500 do
      local r = c:start("get", op.name)
      local done, err = r:poll()
      assert.is_true(done)
      assert.are.equal("AuthError", H.tags(err))
    end
    assert.is_true(#(c.handles or {}) <= 1, "handles: " .. #(c.handles or {}))
    assert.are.equal(0, #server:log())
  end)
end)

describe("cancel_many", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  it("cancels a batch concurrently over one HTTP/2 connection", function()
    local names = {}
    for i = 1, 100 do names[i] = server:create {}.name end
    server:reset_log()
    -- each answer held long enough that a window sent at once overlaps on any machine
    server:fault { match = "cancel", delay = 0.5, times = 100 }
    local c = vertexops.client(H.opts(server))
    local results = c:cancel_many(names, nil, { concurrency = 50 })
    assert.are.equal(100, #results)
    for i = 1, 100 do assert.are.same({ ok = true }, results[i]) end
    local log = server:log("cancel")
    assert.are.equal(100, #log)
    assert.are.equal(1, server:connections())
    local most = 0
    for _, e in ipairs(log) do
      most = math.max(most, e.concurrent)
      assert.are.equal("HTTP/2.0", e.protocol)
    end
    assert.is_true(most > 10, "at most " .. most .. " cancels overlapped")
    assert.is_true(most <= 50, "concurrency exceeded: " .. most)
  end)

  it("reports each failure in its place without hiding the others", function()
    local a, b = server:create {}, server:create { cancel = "unimplemented" }
    local results = vertexops.client(H.opts(server, { retry = false }))
      :cancel_many({ a.name, H.NAME .. "missing", b.name })
    assert.are.same({ ok = true }, results[1])
    assert.are.equal(404, results[2].err.code)
    assert.are.equal(501, results[3].err.code)
  end)

  it("rejects a bad name before any I/O, naming its place", function()
    local op = server:create {}
    local c = vertexops.client(H.opts(server))
    local err = H.raises(c.cancel_many, c, { op.name, H.NAME .. "x#y" })
    assert.are.equal("ValueError", H.tags(err))
    assert.matches("names%[2%]", err.message)
    assert.are.equal(0, #server:log())
    assert.are.equal("TypeError", H.tags(H.raises(c.cancel_many, c, "not a list")))
  end)

  it("returns an empty list for no names", function()
    assert.are.same({}, vertexops.client(H.opts(server)):cancel_many({}))
  end)
end)

describe("one client, one connection", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  it("shares its connection between blocking calls, started requests and batches", function()
    local op = server:create {}
    local c = vertexops.client(H.opts(server))
    c:cancel(op.name)
    c:start("get", op.name):wait()
    c:cancel_many({ op.name, op.name, op.name })
    c:get(op.name)
    assert.are.equal(1, server:connections())
    assert.are.equal(1, c:stats().connects)
    c:close()
  end)

  it("closes the client's connection cache last, whatever the order", function()
    local c = vertexops.client(H.opts(server))
    c:get(server:create {}.name)
    c.share:close() -- the handles still use it: it stays until they are gone
    c:get(server:create {}.name)
    c:close()
    c:close()
    assert.are.equal(1, server:connections())
  end)
end)
