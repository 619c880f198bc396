-- The fall of a shared window (docs/contract.md, "Pacing": a store that fails; lua/vertexops/rate.lua,
-- "a shared window's fall"): what the store let go before it failed may still reach Google after
-- the fall, so a process the store had answered sends nothing until a window after the last of
-- those may have arrived: the last answer of its own requests in flight, and at least the fall
-- plus the largest latency it has seen (the other processes' requests in flight). Driven directly
-- (rate.permit, rate.answered) on an injected clock whose sleeps may deliver an answer, against a
-- real redis-server (spec/support/redis.lua) and, for rate.shared_dict, a stand-in for nginx's
-- lua_shared_dict (the real dict under nginx: spec/09_hosts_rate_shared_spec.lua). Witnesses: the
-- times the permits give (the clock's), and the warnings written to stderr.
local rate = require "vertexops.rate"
local rate_redis = require "vertexops.rate_redis"
local deadlines = require "vertexops.deadline"
local H = require "support.helper"
local redis = require "support.redis"

local REQ = { call = "cancel", url = "https://x/v1/projects/p/locations/l/operations/1:cancel" }
local WAIT = { call = "wait", url = "https://x/v1/projects/p/locations/l/operations/2:wait" }
local N, PER = 8, 60 -- one participant: the local window's share is N; buckets of 1.5 s

-- An injected clock whose sleeps deliver, once the clock passes its time, each answer queued with
-- at(time, f).
local function clock(start)
  local t = H.fake_time(start)
  local queued = {}
  local sleep = t.sleep
  t.sleep = function(s)
    sleep(s)
    for i = #queued, 1, -1 do
      if t.now >= queued[i].time then table.remove(queued, i).f() end
    end
  end
  function t.at(time, f) queued[#queued + 1] = { time = time, f = f } end
  return t
end

describe("a shared window's fall", function()
  local r
  setup(function() r = redis.start() end)
  teardown(function() rate_redis.close(); r:stop() end)
  before_each(function()
    rate_redis.close()
    if not r.pid then r:start_again() end
    r:cli("FLUSHALL")
  end)

  local t, o, client
  local function start(at, extra)
    t = clock(at)
    o = { clock = t.clock, sleep = t.sleep, rate = { requests = N, per = PER, redis = r:option() } }
    for k, v in pairs(extra or {}) do o[k] = v end
    client = {} -- a client's windows (rate.lua keeps them on it)
  end
  -- a permit: the time it lets the request go, and its slot (answer it with answer())
  local function permit(req)
    local err, sent, slot = rate.permit(client, o, req or REQ, deadlines.at(nil, t.clock))
    assert.is_nil(err)
    return sent, slot
  end
  local function answer(sent, slot, req) rate.answered(nil, o, req or REQ, sent, true, {}, slot) end

  it("waits for the answers of what Redis let go before it failed: the silence starts at the last", function()
    start(1000)
    local a_sent, a = permit()
    answer(a_sent, a)
    local b_sent, b = permit() -- in flight when Redis fails, answered 30 s later
    r:stop()
    t.now = 1005
    t.at(1030, function() answer(b_sent, b) end)
    local sent
    local err = H.stderr_of(function() sent = permit() end)
    assert.is_truthy(err:find("paces on its own at 8 requests per 60 s", 1, true), err)
    -- the answer came in the sleep that ended at 1030.5 (the process looks again each bucket):
    -- a window after it, not after the fall (1065)
    assert.are.equal(1090.5, sent)
  end)

  it("starts no sooner than the fall plus the largest latency it has seen (the others' requests in flight)", function()
    start(2000)
    local a_sent, a = permit()
    t.now = 2012
    answer(a_sent, a) -- 12 s from permit to answer
    local b_sent, b = permit()
    answer(b_sent, b) -- 0 s: the largest stays
    r:stop()
    t.now = 2020
    local sent
    H.stderr_of(function() sent = permit() end)
    assert.are.equal(2020 + 12 + PER, sent)
  end)

  it("starts no sooner than the fall plus the largest latency any process reported through Redis", function()
    start(2500)
    local a_sent, a = permit()
    client = {} -- another client from here on (its own state: as another process's)
    t.now = 2520
    answer(a_sent, a) -- 20 s from permit to answer: the answer tells Redis
    local b_sent, b = permit() -- the permit's answer tells this client the fleet's latency
    answer(b_sent, b) -- 0 s of its own
    r:stop()
    t.now = 2525
    local sent
    H.stderr_of(function() sent = permit() end)
    assert.are.equal(2525 + 20 + PER, sent)
  end)

  it("falls back to the participants counted when its last answer came, not its last permit", function()
    start(2800)
    local a_sent, a = permit() -- counted alone: one participant
    -- three more processes ask for permits in this period (as they would: the script's set)
    r:cli("SADD", ("vertexops:rate:{%d/%d/p/l}:p:%d"):format(N, PER, math.floor(2800 / PER)), "x", "y", "z")
    t.now = 2803
    answer(a_sent, a) -- its answer (in a later bucket) reads the count again
    r:stop()
    local err = H.stderr_of(function() permit() end)
    assert.is_truthy(err:find("at 2 requests per 60 s (rate.requests / 4 participants)", 1, true), err)
  end)

  it("then sends its share at once, and its share in each window", function()
    start(3000)
    local a_sent, a = permit()
    answer(a_sent, a)
    r:stop()
    t.now = 3010
    local sent = {}
    H.stderr_of(function() for i = 1, N + 1 do sent[i] = permit() end end)
    for i = 1, N do assert.are.equal(3070, sent[i]) end
    assert.are.equal(3070 + PER, sent[N + 1])
  end)

  it("holds for an answer that never comes only until the latest its exchange can end", function()
    start(4000, { request_timeout = 30 })
    permit() -- never answered (a request closed under client:start())
    r:stop()
    t.now = 4005
    local sent
    H.stderr_of(function() sent = permit() end)
    assert.are.equal(4000 + 30 + PER, sent) -- it may have arrived until its request_timeout
  end)

  it("forgets the requests closed unanswered once their exchange has ended (nothing piles up)", function()
    start(4500, { request_timeout = 1 })
    o.rate.requests = 1000
    for _ = 1, 500 do
      permit() -- never answered
      t.now = t.now + 2
    end
    local kept = 0
    for _, by_key in pairs(client.rate_windows) do
      for slot in pairs(by_key["p/l"].redis.flying) do kept = kept + 1; assert.is_table(slot) end
    end
    assert.is_true(kept <= 64, kept)
  end)

  it("does not wait for a :wait long-poll in flight (answered when its time is up, not on arrival)", function()
    start(5000)
    permit(WAIT) -- in flight, never answered here
    r:stop()
    t.now = 5005
    local sent
    H.stderr_of(function() sent = permit() end)
    assert.are.equal(5005 + PER, sent)
  end)

  it("ends the call with TimeoutError, nothing sent, when the silence ends after the deadline", function()
    start(6000)
    local a_sent, a = permit()
    answer(a_sent, a)
    r:stop()
    t.now = 6010
    local err
    H.stderr_of(function() err = rate.permit(client, o, REQ, deadlines.at(6050, t.clock)) end)
    assert.are.equal("TimeoutError", H.tags(err))
    assert.is_truthy(err.message:find("a window after what the shared window let go before it failed", 1, true),
      err.message)
    assert.are.equal(6010, t.now) -- no sleep toward a permit past the deadline
  end)

  it("keeps no silence in a process that never reached Redis", function()
    start(7000)
    o.rate.redis = { host = "127.0.0.1", port = H.closed_port() }
    local sent
    H.stderr_of(function() sent = permit() end)
    assert.are.equal(7000, sent)
  end)
end)

describe("a shared dict's fall (rate.shared_dict, a stand-in for nginx's dict)", function()
  -- what rate_shared.lua uses of a lua_shared_dict; fail = true makes every incr fail
  local function dict()
    local d = { data = {}, fail = false }
    function d.get(self, k) return self.data[k] end
    function d.add(self, k, v)
      if self.data[k] ~= nil then return false, "exists" end
      self.data[k] = v
      return true
    end
    function d.incr(self, k, v, init)
      if self.fail then return nil, "no memory" end
      self.data[k] = (self.data[k] or init or 0) + v
      return self.data[k], nil, false
    end
    return d
  end

  local d
  before_each(function()
    d = dict()
    rawset(_G, "ngx", { shared = { rate = d } })
  end)
  after_each(function() rawset(_G, "ngx", nil) end)

  it("waits for the answers of what the dict let go before it failed, then sends its share", function()
    local t = clock(1000)
    local o = { clock = t.clock, sleep = t.sleep, rate = { requests = N, per = PER, shared_dict = "rate" } }
    local client = {}
    local err, b_sent, b = rate.permit(client, o, REQ, deadlines.at(nil, t.clock))
    assert.is_nil(err)
    d.fail = true
    t.now = 1005
    t.at(1020, function() rate.answered(nil, o, REQ, b_sent, true, {}, b) end)
    local sent
    local out = H.stderr_of(function()
      err, sent = rate.permit(client, o, REQ, deadlines.at(nil, t.clock))
    end)
    assert.is_nil(err)
    assert.is_truthy(out:find("option rate.shared_dict 'rate': incr failed", 1, true), out)
    assert.are.equal(1020 + PER, sent) -- a window after the answer of the one in flight (in the sleep to 1020)
  end)
end)
