-- The `rate` option (docs/contract.md, "Pacing"; lua/vertexops/rate.lua): at most `requests`
-- requests in any `per` seconds per project and location, for every request of a client (each
-- attempt, blocking, non-blocking and bulk calls), within the call's deadline, never blocking a
-- poll(). Witnesses: the fake's log (its times are the virtual clock's), the recorded sleeps.
local vertexops = require "vertexops"
local core = require "vertexops.core"
local H = require "support.helper"
local deadlines = require "vertexops.deadline"

local PARENT = H.PARENT

-- The times of the logged requests of one call, from the first one on (0 = the first).
local function times(server, call)
  local out, t0 = {}, nil
  for _, e in ipairs(server:log(call)) do
    t0 = t0 or e.time
    out[#out + 1] = e.time - t0
  end
  return out
end

describe("option rate", function()
  local fake = H.fake_server()
  local server, t
  before_each(function()
    server = fake.server
    t = H.virtual_time(server, 1000)
  end)

  local function client(extra) return vertexops.client(H.timed_opts(server, t, extra)) end

  it("is off by default: requests go one after the other, no wait", function()
    local op = server:create {}
    local c = client()
    for _ = 1, 5 do c:get(op.name) end
    assert.are.same({ 0, 0, 0, 0, 0 }, times(server, "get"))
    assert.are.same({}, t.delays)
  end)

  it("lets `requests` go in any `per` seconds; the next waits for the oldest to leave the window", function()
    local op = server:create {}
    local c = client { rate = { requests = 2, per = 60 } }
    for _ = 1, 5 do c:get(op.name) end
    assert.are.same({ 0, 0, 60, 60, 120 }, times(server, "get"))
    assert.are.same({ 60, 60 }, t.delays)
  end)

  it("takes per = 60 by default", function()
    local op = server:create {}
    local c = client { rate = { requests = 1 } }
    c:get(op.name)
    c:get(op.name)
    assert.are.same({ 0, 60 }, times(server, "get"))
  end)

  it("counts each project and location on its own", function()
    local a = server:create {}
    local b = server:create { location = "europe-west4" }
    local p = server:create { project = "other-project" }
    local c = client { rate = { requests = 1, per = 60 } }
    c:get(a.name)
    c:get(b.name)
    c:get(p.name)
    assert.are.same({ 0, 0, 0 }, times(server, "get"))
    c:get(a.name)
    assert.are.same({ 0, 0, 0, 60 }, times(server, "get"))
  end)

  it("counts every attempt: a retry waits for its permit after its backoff", function()
    local op = server:create {}
    server:fault { match = "get", status = 503 }
    local c = client { rate = { requests = 1, per = 10 }, retry = { initial_delay = 1 } }
    c:get(op.name)
    assert.are.same({ 0, 10 }, times(server, "get"))
    assert.are.same({ 1, 9 }, t.delays)
  end)

  it("ends the call with TimeoutError, nothing sent, when the permit would come after the deadline", function()
    local op = server:create {}
    local c = client { rate = { requests = 1, per = 60 }, timeout = 30 }
    c:get(op.name)
    local err = H.raises(c.get, c, op.name)
    assert.is_true(core.is(err, "TimeoutError"), tostring(err))
    assert.is_truthy(tostring(err):find("option 'rate'", 1, true), tostring(err))
    assert.are.equal(1, #server:log("get"))
    assert.are.same({}, t.delays)
  end)

  it("takes a call out with rate = false, and a call's own rate counts on its own", function()
    local op = server:create {}
    local c = client { rate = { requests = 1, per = 60 } }
    c:get(op.name)
    c:get(op.name, nil, { rate = false })
    c:get(op.name, nil, { rate = { requests = 5 } }) -- merged: 5 per 60 s, a window of its own
    assert.are.same({ 0, 0, 0 }, times(server, "get"))
  end)

  it("never blocks poll(): a started request waiting for its permit is not sent yet", function()
    local op = server:create {}
    local c = client { rate = { requests = 1, per = 60 } }
    c:get(op.name)
    local req = c:start("get", op.name)
    for _ = 1, 3 do assert.is_false(req:poll()) end
    assert.are.equal(1, #server:log("get")) -- not sent
    assert.are.equal(1000, server:now()) -- and nothing slept through
    assert.are.same({}, t.delays)
    server:advance(60)
    assert.are.equal(op.name, req:wait().name)
    assert.are.same({ 0, 60 }, times(server, "get"))
  end)

  it("paces cancel_many", function()
    local names = {}
    for i = 1, 5 do names[i] = server:create {}.name end
    local c = client { rate = { requests = 2, per = 60 } }
    local results = c:cancel_many(names)
    for i = 1, 5 do assert.is_true(results[i].ok) end
    assert.are.same({ 0, 0, 60, 60, 120 }, times(server, "cancel"))
  end)

  it("paces cancel_all: the page fetches and the cancels draw from one window", function()
    server:create_many(5, {})
    local c = client { rate = { requests = 3, per = 60 } }
    local summary = c:cancel_all(PARENT)
    assert.are.equal(5, summary.cancelled)
    assert.are.same({ 0, 0, 0, 60, 60, 60 }, times(server)) -- the list, then 5 cancels
    assert.are.equal("list", server:log()[1].call)
  end)

  it("keeps under the fake's quota when it matches it: no 429 where unpaced calls meet some", function()
    local op = server:create {}
    server:quota { requests = 10, per = 60 }
    local paced = client { rate = { requests = 10, per = 60 } }
    for _ = 1, 30 do paced:get(op.name) end
    assert.are.equal(0, server:stats().quota_exceeded)
    assert.are.equal(30, #server:log("get"))
    server:reset_log()
    server:advance(60)
    local unpaced = client()
    for _ = 1, 30 do unpaced:get(op.name) end -- each 429 retried after its RetryInfo
    assert.is_true(server:stats().quota_exceeded > 0)
  end)

  it("refuses a rate of the wrong type or value before any I/O, naming it", function()
    local op = server:create {}
    local cases = {
      { 5, "TypeError" }, { { requests = "5" }, "TypeError" }, { { requests = 1.5 }, "TypeError" },
      { { requests = 0 }, "ValueError" }, { { requests = 1, per = 0 }, "ValueError" },
      { { requests = 1, burst = 2 }, "ValueError" }, { true, "ValueError" },
    }
    for _, case in ipairs(cases) do
      local err = H.raises(vertexops.get, op.name, nil, H.opts(server, { rate = case[1] }))
      assert.is_true(core.is(err, case[2]), tostring(err))
      assert.is_truthy(tostring(err):find("rate", 1, true), tostring(err))
    end
    -- no requests after the merge: a client's rate may give them, none here
    local err = H.raises(vertexops.get, op.name, nil, H.opts(server, { rate = { per = 60 } }))
    assert.is_true(core.is(err, "ValueError"), tostring(err))
    assert.is_truthy(tostring(err):find("rate.requests", 1, true), tostring(err))
    assert.are.equal(0, #server:log())
  end)
end)

-- The adaptive pacing of cancel_all and cancel_many (lua/vertexops/rate.lua: adaptive, answered,
-- permit), driven directly with an injected clock: what it learns from 429s, and how it recovers.
describe("adaptive pacing (bulk calls without option rate)", function()
  local rate = require "vertexops.rate"
  local REQ = { call = "cancel", url = "https://x/v1beta1/projects/p/locations/l/operations/1:cancel" }
  local R429 = { code = 429, details = { { ["@type"] = "type.googleapis.com/google.rpc.RetryInfo", retryDelay = "1s" } } }
  local t, o, a
  before_each(function()
    t = H.fake_time(1000)
    o = { clock = t.clock, sleep = t.sleep }
    a = rate.adaptive()
  end)

  -- sends n requests through the adaptive permit, each answered ok (or with err); returns how
  -- many went before the clock moved
  local function send(n, err)
    local start, now_sent = t.now, 0
    for _ = 1, n do
      local perr, sent = rate.permit({}, o, REQ, deadlines.at(nil, o.clock), a)
      assert.is_nil(perr)
      if t.now == start then now_sent = now_sent + 1 end
      rate.answered(a, o, REQ, sent, err == nil, err or {})
    end
    return now_sent
  end

  it("does not pace before a 429", function()
    assert.are.equal(1000, send(1000))
    assert.are.same({}, t.delays)
  end)

  it("after a 429 with RetryInfo paces to what was accepted in the minute before it", function()
    send(50)
    send(1, R429)
    assert.are.equal(50, a.keys["p/l"].requests)
    assert.are.equal(0, send(1)) -- the window is full: it waited for the oldest to leave
    assert.are.same({ 60 }, t.delays)
  end)

  it("ignores a 429 that says nothing of when to retry, and other failures", function()
    send(10)
    send(1, { code = 429 })
    send(1, { code = 503, details = R429.details })
    assert.is_nil(a.keys["p/l"].requests)
  end)

  it("grows back by 1.25 a clean minute up to the highest rate measured, then by 0.5 %", function()
    send(100)
    send(1, R429) -- measured 100
    t.now = t.now + 61
    send(40)
    send(1, R429) -- measured 40 (another worker took the rest)
    local seen = {}
    for _ = 1, 6 do
      t.now = t.now + 60
      send(1)
      seen[#seen + 1] = a.keys["p/l"].requests
    end
    assert.are.same({ 50, 63, 79, 99, 100, 101 }, seen)
  end)
end)

describe("option rate in cancel_all, against its deadline", function()
  local fake = H.fake_server()

  it("sends nothing it cannot send before the deadline: those cancels fail with TimeoutError, as a late retry's", function()
    local server = fake.server
    local t = H.virtual_time(server, 1000)
    server:create_many(5, {})
    local summary = vertexops.cancel_all(PARENT, nil,
      H.timed_opts(server, t, { rate = { requests = 2, per = 60 }, timeout = 30 }))
    assert.are.equal(1, summary.cancelled) -- the list and one cancel took the two permits
    assert.are.equal(4, #summary.failed)
    for _, f in ipairs(summary.failed) do
      assert.is_true(core.is(f.error, "TimeoutError"), tostring(f.error))
      assert.is_truthy(tostring(f.error):find("option 'rate'", 1, true), tostring(f.error))
    end
    assert.are.equal(2, #server:log())
    assert.are.equal(1000, server:now()) -- no sleep toward a permit past the deadline
  end)
end)
