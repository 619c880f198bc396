-- Fleets under a quota like Google's (docs/contract.md, "Pacing"; issue 20): cancel_all and
-- cancel_many against the fake's quota (docs/fake.md, "Quota") on the virtual clock. Witnesses:
-- the fake's counts (requests, quota_exceeded) and the virtual time the sweep took, never wall time.
-- Throughput is counted over the minutes the sweep's windows span (its elapsed time plus the last
-- window, a minute): a burst of a whole quota at the start does not count twice.
local vertexops = require "vertexops"
local H = require "support.helper"

local PARENT = H.PARENT

describe("cancel_all under the fake's quota", function()
  local server
  -- GOAWAY every 5,000 requests (the fake's default) is another concern than the quota's: a
  -- connection whose GOAWAY races a stream loses that cancel (ConnectionError, not retried)
  setup(function() server = H.fake.start { keepalive_requests = 1000000 } end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  -- A clock the sweep reads without a control request (only sleeps move the fake's virtual clock,
  -- so this one follows it exactly: every time here is a whole number of seconds or a retry delay).
  local function mirror(start)
    local t = { now = start, sleeps = 0 }
    server:clock { virtual = start }
    t.clock = function() return t.now end
    t.sleep = function(s)
      t.sleeps = t.sleeps + 1
      t.now = t.now + s
      server:clock { virtual = t.now }
    end
    return t
  end

  -- cancel_all of n operations against a quota of q a minute; extra: options. Returns the summary,
  -- the fake's stats and the throughput (operations cancelled per minute of the windows spanned).
  local function sweep(n, q, extra)
    local t = mirror(1000)
    server:config { nolog = true }
    server:create_many(n, {})
    server:quota { requests = q, per = 60 }
    server:reset_log()
    local o = H.opts(server, { clock = t.clock, sleep = t.sleep, timeout = 86400 }, extra)
    local summary = vertexops.cancel_all(PARENT, nil, o)
    local stats = server:stats()
    local per_minute = summary.cancelled / (summary.elapsed / 60 + 1)
    print(("\n  cancel_all %d, quota %d/min, %s: %d cancelled, %d failed, %d requests, %d answered 429 "
      .. "(%.2f %%), %.0f s virtual, %.0f cancels/min (%.3f Q)"):format(n, q,
      not extra and "adaptive" or extra.rate and "rate = quota" or "rate = false: no pacing",
      summary.cancelled, #summary.failed, stats.requests, stats.quota_exceeded,
      100 * stats.quota_exceeded / stats.requests, summary.elapsed, per_minute, per_minute / q))
    return summary, stats, per_minute
  end

  it("fills the quota without hitting it when rate is the quota: >= 0.95 Q, <= 1 % 429s, nothing lost", function()
    local n, q = 10000, 600
    local summary, stats, per_minute = sweep(n, q, { rate = { requests = q, per = 60 } })
    assert.are.equal(n, summary.cancelled) -- every operation accounted for: cancelled, none failed
    assert.are.equal(0, #summary.failed)
    assert.are.equal(n, summary.listed)
    assert.is_true(per_minute >= 0.95 * q, per_minute)
    assert.is_true(stats.quota_exceeded <= 0.01 * stats.requests, stats.quota_exceeded)
    assert.are.equal(0, stats.quota_exceeded) -- on the virtual clock: none at all
  end)

  it("with rate = false (no pacing at all) meets a wall of 429s every minute: the window's requests", function()
    local n, q = 10000, 600
    local summary, stats = sweep(n, q, { rate = false })
    assert.are.equal(n, summary.cancelled) -- RetryInfo honoured: nothing lost, but ...
    assert.is_true(stats.quota_exceeded > 0.05 * stats.requests, stats.quota_exceeded) -- ... > 5 % refused
  end)

  it("without rate paces itself after the first 429s: >= 0.9 Q, 429s <= the first window's + 1 %", function()
    local n, q = 10000, 600
    local summary, stats, per_minute = sweep(n, q)
    assert.are.equal(n, summary.cancelled)
    assert.are.equal(0, #summary.failed)
    -- what it learns depends on which of the 100 answers in flight came first (real time, even on
    -- the virtual clock): 0.93 to 0.98 Q measured; option rate is the way to 0.95 Q and more
    assert.is_true(per_minute >= 0.9 * q, per_minute)
    -- the requests in flight when the quota first runs out (max_in_flight, 100) are refused before
    -- any client can know it; after that, probes only
    assert.is_true(stats.quota_exceeded <= 100 + 0.01 * stats.requests, stats.quota_exceeded)
  end)

  it("fills the quota without hitting it on the real clock too: a slot frees `per` after the answer", function()
    -- the service counts a request when it arrives, after the client let it go: a window that
    -- kept send times would free slots before the service does (17-20 % refused here, before)
    server:config { nolog = true }
    server:create_many(600, {})
    server:quota { requests = 100, per = 0.5 }
    server:reset_log()
    local summary = vertexops.cancel_all(PARENT, nil, H.opts(server, { timeout = 60, rate = { requests = 100, per = 0.5 } }))
    local stats = server:stats()
    print(("\n  real clock: cancel_all 600, quota 100/0.5 s, rate = quota: %d requests, %d answered 429, %.1f s")
      :format(stats.requests, stats.quota_exceeded, summary.elapsed))
    assert.are.equal(600, summary.cancelled)
    assert.are.equal(0, stats.quota_exceeded)
    assert.are.equal(601, stats.requests)
  end)

  it("paces cancel_many alike: no 429, every name cancelled", function()
    local t = mirror(1000)
    local names = {}
    for i = 1, 1000 do names[i] = server:create {}.name end
    server:quota { requests = 300, per = 60 }
    local o = H.opts(server, { clock = t.clock, sleep = t.sleep, timeout = 86400, rate = { requests = 300 } })
    local results = vertexops.cancel_many(names, nil, o)
    for i = 1, #names do assert.is_true(results[i].ok, names[i]) end
    local stats = server:stats()
    assert.are.equal(0, stats.quota_exceeded)
    assert.are.equal(1000, stats.requests)
    assert.are.equal(1000 + 3 * 60, t.now) -- 300 at once, then 300 a minute: the last ones at +180 s
  end)
end)
