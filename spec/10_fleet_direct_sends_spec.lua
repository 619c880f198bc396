-- A bulk call's first attempts sent straight from its window (lua/vertexops/fleet.lua, Window:send):
-- with no hooks, no rate option and a token at hand, cancel_all and cancel_many start each cancel's
-- first attempt on a handle of the window's own, without a request coroutine, and learn which
-- finished from multi:finished() (csrc/multi.c). An answer that is not a success goes on through
-- Client:_run from that attempt: the same retries, token refresh and errors as a single call. The
-- fake's log is the witness.
local vertexops = require "vertexops"
local core = require "vertexops.core"
local H = require "support.helper"

-- the handles of a client that still hold a request's header lines (the token among them)
local function held(client)
  local n = client.handle:stats().held_headers
  for _, h in ipairs(client.handles or {}) do n = n + h:stats().held_headers end
  return n
end

local function count(log, call)
  local n = 0
  for _, e in ipairs(log) do
    if e.call == call then n = n + 1 end
  end
  return n
end

describe("a multi handle's finished queue", function()
  local server
  setup(function() server = H.fake.start() end)
  teardown(function() server:stop() end)

  local function transfer(multi, slot)
    local c = vertexops.client(H.opts(server))
    local op = server:create {}
    local req = core.build("get", op.name, nil, { endpoint = server.endpoint, ca_file = server.ca_file })
    req.ca_file = server.ca_file
    local h = core.handle()
    h:start(req, multi, "test-token", slot)
    c:close()
    return h
  end

  local function drain(multi, handles)
    for _ = 1, 2000 do
      multi:perform()
      local all = true
      for _, h in ipairs(handles) do all = all and h:done() end
      if all then return end
      multi:wait(0.01)
    end
    error("the transfers did not finish")
  end

  it("gives the slot of each finished transfer started with one, once", function()
    local multi = core.multi()
    local a, b = transfer(multi, 7), transfer(multi, 9)
    drain(multi, { a, b })
    assert.are.equal(2, multi:finished())
    local t = {}
    assert.are.equal(2, multi:finished(t))
    table.sort(t)
    assert.are.same({ 7, 9 }, t)
    assert.are.equal(0, multi:finished({}))
    assert.is_true((a:finish()))
    assert.is_true((b:finish()))
    a:close(); b:close(); multi:close()
  end)

  it("leaves out transfers started without a slot", function()
    local multi = core.multi()
    local a = transfer(multi, nil)
    drain(multi, { a })
    assert.are.equal(0, multi:finished({}))
    a:close(); multi:close()
  end)

  it("forgets a finished transfer whose handle is closed before its slot is taken", function()
    local multi = core.multi()
    local a, b = transfer(multi, 1), transfer(multi, 2)
    drain(multi, { a, b })
    a:close()
    local t = {}
    assert.are.equal(1, multi:finished(t))
    assert.are.same({ 2 }, t)
    b:close(); multi:close()
  end)

  it("refuses an argument that is not a table (TypeError), the queue left as it is", function()
    local multi = core.multi()
    local a = transfer(multi, 3)
    drain(multi, { a })
    for _, bad in ipairs { 1, "t", true } do
      local err = H.raises(multi.finished, multi, bad)
      assert.is_true(core.is(err, "TypeError"), tostring(err))
    end
    local t = {}
    assert.are.equal(1, multi:finished(t))
    assert.are.same({ 3 }, t)
    a:close(); multi:close()
  end)

  it("refuses a slot that is not an integer > 0 (ValueError), before any I/O", function()
    local multi = core.multi()
    local h = core.handle()
    local req = core.build("get", H.PARENT .. "/operations/1", nil, { endpoint = server.endpoint })
    for _, bad in ipairs { 0, -1, 1.5, "1", true } do
      local err = H.raises(h.start, h, req, multi, "t", bad)
      assert.is_true(core.is(err, "ValueError"), tostring(err))
    end
    h:close(); multi:close()
  end)
end)

describe("bulk calls' direct sends", function()
  local server, client
  setup(function() server = H.fake.start() end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)
  after_each(function() if client then client:close() end end)

  local function names(n)
    local out = {}
    for i = 1, n do out[i] = server:create {}.name end
    return out
  end

  it("send each cancel once when every answer is a success", function()
    client = vertexops.client(H.opts(server))
    local list = names(50)
    server:reset_log()
    for _, r in ipairs(client:cancel_many(list, nil, { concurrency = 10 })) do assert.is_true(r.ok) end
    assert.are.equal(50, count(server:log(), "cancel"))
    assert.are.equal(0, held(client))
  end)

  it("retry a first attempt answered 503 after its backoff, as a single cancel does", function()
    local t = H.fake_time()
    client = vertexops.client(H.timed_opts(server, t))
    local list = names(20)
    server:reset_log()
    server:fault { match = "cancel", status = 503, times = 3 }
    for _, r in ipairs(client:cancel_many(list, nil, { concurrency = 20 })) do assert.is_true(r.ok, tostring(r.err)) end
    assert.are.equal(23, count(server:log(), "cancel"))
    -- the backoff slept on the injected clock (the three sleep side by side: one wait covers them)
    assert.is_true(#t.delays >= 1 and t.now - 1000 >= 1, ("slept %s s"):format(t.now - 1000))
  end)

  it("fail a cancel whose first attempt is refused for good, without a retry", function()
    client = vertexops.client(H.opts(server))
    local list = names(5)
    server:reset_log()
    server:fault { match = "cancel", status = 404, times = 1 }
    local failed = 0
    for _, r in ipairs(client:cancel_many(list, nil, { concurrency = 5 })) do
      if not r.ok then
        failed = failed + 1
        assert.are.equal(404, r.err.code)
      end
    end
    assert.are.equal(1, failed)
    assert.are.equal(5, count(server:log(), "cancel"))
  end)

  it("fetch a fresh token after a 401 and send each refused cancel once more", function()
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p " .. dir)
    H.authorized_user(dir .. "/user.json", server.endpoint)
    client = vertexops.client { endpoint = server.endpoint, ca_file = server.ca_file, credentials = dir .. "/user.json" }
    local list = names(10)
    client:get(list[1]) -- the token fetched and cached
    server:tokens {} -- the service now refuses it
    server:reset_log()
    for _, r in ipairs(client:cancel_many(list, nil, { concurrency = 10 })) do assert.is_true(r.ok, tostring(r.err)) end
    assert.are.equal(20, count(server:log(), "cancel"))
    assert.are.equal(1, count(server:log(), "token"))
    os.execute("rm -rf " .. dir)
  end)

  it("give back every handle's headers when the call raises mid-sweep", function()
    client = vertexops.client(H.opts(server))
    server:create_many(300, { done_after = 36000 })
    local calls = 0
    local ok, err = pcall(client.cancel_all, client, H.PARENT, nil, { max_in_flight = 50, page_size = 100, wait = false,
      progress = function(p)
        calls = calls + 1
        if p.cancelled > 0 and calls > 2 then error("stop here") end
      end })
    assert.is_false(ok)
    assert.matches("stop here", tostring(err))
    assert.are.equal(0, held(client)) -- no token left in a handle
    assert.is_true(client:cancel(server:create {}.name)) -- the client goes on
  end)

  it("of two bulk calls of one client under client:start() each reach their own call", function()
    client = vertexops.client(H.opts(server))
    local other = "projects/other-project/locations/us-central1"
    server:create_many(150, { done_after = 36000 })
    server:create_many(150, { project = "other-project", done_after = 36000 })
    server:reset_log()
    local opts = { max_in_flight = 20, page_size = 50, wait = false }
    local ra = client:start("cancel_all", H.PARENT, nil, opts)
    local rb = client:start("cancel_all", other, nil, opts)
    local t0 = core.clock()
    while client:poll() > 0 and core.clock() - t0 < 30 do core.sleep(0.001) end
    H.within(core.clock() - t0, 1, "two cancel_all of 150 side by side")
    for _, r in ipairs { ra, rb } do
      local done, summary = r:poll()
      assert.is_true(done)
      assert.are.equal(150, summary.cancelled, tostring(summary))
    end
    assert.are.equal(300, count(server:log(), "cancel"))
  end)

  it("are closed with the request running cancel_all under client:start()", function()
    client = vertexops.client(H.opts(server))
    server:create_many(300, { done_after = 36000 })
    local r = client:start("cancel_all", H.PARENT, nil, { max_in_flight = 50, page_size = 100, wait = false })
    for _ = 1, 2000 do
      r:poll()
      if #server:log("cancel") > 0 then break end
      core.sleep(0.001)
    end
    assert.is_true(#server:log("cancel") > 0)
    r:close()
    assert.are.equal(0, held(client))
    assert.is_true(client:cancel(server:create {}.name)) -- the client goes on
  end)

  it("are closed, with the retries they started, when the request running cancel_all is closed", function()
    local t = H.fake_time()
    client = vertexops.client(H.timed_opts(server, t))
    server:create_many(30, { done_after = 36000 })
    server:fault { match = "cancel", status = 503, times = 1000 }
    local r = client:start("cancel_all", H.PARENT, nil, { max_in_flight = 10, page_size = 100, wait = false })
    for _ = 1, 5000 do
      r:poll()
      if #server:log("cancel") >= 10 then break end
      core.sleep(0.001)
    end
    for _ = 1, 50 do -- their answers in: each refused cancel's retry sleeps (the clock stands still)
      r:poll()
      core.sleep(0.002)
    end
    r:close()
    core.sleep(0.05) -- (a cancel already on the wire reaches the log)
    local before = #server:log("cancel")
    for _ = 1, 50 do -- the backoffs pass: a retry left running would send again
      t.now = t.now + 10
      client:poll()
      core.sleep(0.002)
    end
    assert.are.equal(before, #server:log("cancel"))
    assert.are.equal(0, held(client))
  end)
end)
