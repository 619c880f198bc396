-- make test: once
-- A fleet sharing one quota through Redis (docs/contract.md, "Pacing", "Shared across hosts";
-- issue 20): CHILDREN plain-Lua processes (spec/support/redis_fleet.lua), each running cancel_many
-- of its own operations with option rate = the quota and rate.redis = a real redis-server
-- (spec/support/redis.lua), against the fake's quota of Q per PER seconds. Several processes cannot
-- share a virtual clock, so this runs on the real one with a scaled quota; the window's buckets are
-- then numbered on Redis's TIME. Witnesses: the fake's log (who, when, refused) and counts, never a
-- duration; a wall-clock bound only catches a hang.
local H = require "support.helper"
local redis = require "support.redis"
local fleet = require "support.redis_fleet"

local CHILDREN, PER_CHILD = 4, 120
local Q, PER = 160, 8

describe("a fleet of processes sharing option rate through Redis", function()
  local box = H.fake_server()
  local r
  setup(function() r = redis.start() end)
  teardown(function() r:stop() end)
  before_each(function()
    if not r.pid then r:start_again() end
    r:cli("FLUSHALL")
    box.server:quota { requests = Q, per = PER }
  end)

  local function accepted(log) return H.quota_log(log).times end
  local function refused(log) return H.quota_log(log).refused end

  it("stays within the quota together and fills it: no 429, >= 0.9 Q, every operation cancelled", function()
    local run = fleet.start(box.server, { children = CHILDREN, per_child = PER_CHILD,
      rate = { requests = Q, per = PER, redis = r:option() } })
    local out, secs = run:wait(120)
    H.within(secs, CHILDREN * PER_CHILD / Q * PER, "the fleet")
    local log = box.server:log("cancel")
    local times = accepted(log)
    local most = H.busiest(times, PER)
    local span = times[#times] - times[1]
    local fill = #times / (span / PER + 1) -- per PER seconds of the windows spanned
    print(("\n  redis fleet: %d processes, %d accepted in %.1f s, busiest %g s: %d, %.1f per %g s (%.3f Q), refused %d")
      :format(CHILDREN, #times, span, PER, most, fill, PER, fill / Q, refused(log)))
    local bins, first = {}, times[1]
    for _, t in ipairs(times) do
      local b = math.floor((t - first) / 0.25) + 1
      for k = #bins + 1, b do bins[k] = 0 end
      bins[b] = bins[b] + 1
    end
    print("  accepted per 0.25 s: " .. table.concat(bins, " "))
    for i = 1, CHILDREN do
      assert.are.equal(PER_CHILD, out[i].ok, run:stderr(i))
      assert.are.equal("", run:stderr(i)) -- no warning: Redis answered throughout
    end
    assert.are.equal(0, refused(log))
    assert.is_true(most <= Q, most)
    assert.is_true(fill >= 0.9 * Q, fill)
  end)

  it("without Redis, each process's own window overshoots the quota (what Redis prevents)", function()
    local run = fleet.start(box.server, { children = CHILDREN, per_child = PER_CHILD / 2,
      rate = { requests = Q, per = PER } })
    run:wait(120)
    local log = box.server:log("cancel")
    print(("\n  local windows: refused %d of %d"):format(refused(log), #log))
    assert.is_true(refused(log) > 0)
  end)

  it("with Redis down from the start, each process paces at Q / participants: within the quota, one warning each", function()
    local port = H.closed_port()
    local run = fleet.start(box.server, { children = CHILDREN, per_child = Q / CHILDREN + 5,
      rate = { requests = Q, per = PER, redis = { host = "127.0.0.1", port = port, participants = CHILDREN } } })
    local out = run:wait(120)
    local log = box.server:log("cancel")
    assert.are.equal(0, refused(log))
    assert.is_true(H.busiest(accepted(log), PER) <= Q)
    for i = 1, CHILDREN do
      assert.are.equal(Q / CHILDREN + 5, out[i].ok)
      local warning = run:stderr(i)
      local _, n = warning:gsub("option rate.redis %(127.0.0.1:" .. port .. "%)", "")
      assert.are.equal(1, n, warning)
      assert.is_truthy(warning:find(("%d requests per %g s (rate.requests / %d participants)")
        :format(Q / CHILDREN, PER, CHILDREN), 1, true), warning)
    end
  end)

  -- The fall is burst-free for the requests still in flight too (rate.lua, "a shared window's
  -- fall"): requests Redis let go just before it stopped reach the fake late on a loaded machine
  -- (5 and 52 refused of about 530 in two runs of 10 when the silence started at each process's
  -- own fall); the silence waits for each process's own in-flight answers and starts no sooner
  -- than the fall plus the largest latency the fleet reported (the others' requests in flight).
  it("when Redis stops mid-run, each process falls back to its share of what Redis counted: nothing lost, "
    .. "no storm", function()
    local q, per = 120, 2 -- four windows of work: Redis stops after the first
    box.server:quota { requests = q, per = per }
    local run = fleet.start(box.server, { children = CHILDREN, per_child = q,
      rate = { requests = q, per = per, redis = r:option() } })
    -- every process reached Redis: each counts in a set of participants (a process that never
    -- reached Redis before the stop has no count and keeps no silence: the case above)
    local function registered()
      local seen, n = {}, 0
      for k in r:cli("KEYS", "*:p:*"):gmatch("[^\n]+") do
        for m in r:cli("SMEMBERS", k):gmatch("[^\n]+") do
          if not seen[m] then seen[m], n = true, n + 1 end
        end
      end
      return n
    end
    local kill_at
    local t0 = os.time()
    repeat
      require("socket").sleep(0.05)
      local log = box.server:log("cancel")
      -- the second window began
      if #log > q and registered() == CHILDREN then kill_at = log[#log].time end
    until kill_at or os.time() - t0 > 60
    assert.is_truthy(kill_at, "the fleet did not begin its second window")
    r:stop()
    local out = run:wait(120)
    local log = box.server:log("cancel")
    local by = fleet.child_of(run)
    local fell, participants = 0, math.huge
    for i = 1, CHILDREN do
      assert.are.equal(q, out[i].ok, run:stderr(i)) -- nothing lost
      local mine = {} -- its requests a window after the stop: all let go by its own window
      for _, e in ipairs(log) do
        if by[e.name] == i and e.time > kill_at + per then mine[#mine + 1] = e.time end
      end
      local warning = run:stderr(i)
      -- it asked for a permit after Redis stopped: it fell back, once, to its share (a process
      -- that took its last permits between kill_at, the log's last time the spec saw, and the
      -- stop did not: it never asked Redis again, and wrote nothing)
      if warning ~= "" then
        fell = fell + 1
        local _, n = warning:gsub("option rate.redis", "")
        assert.are.equal(1, n, warning)
        -- its share: the quota over the participants Redis counted last (those of this window and
        -- the one before: a process that finished its work in the first may be gone from them)
        local share, parts = warning:match("at (%d+) requests per " .. per .. " s %(rate.requests / (%d+) participants%)")
        share, parts = tonumber(share), tonumber(parts)
        assert.is_truthy(share, warning)
        assert.are.equal(math.floor(q / parts), share)
        participants = math.min(participants, parts)
        -- after the fall's window of silence, never more than its share in any window of the fake's
        assert.is_true(H.busiest(mine, per) <= share, H.busiest(mine, per))
      end
    end
    print(("\n  redis stopped mid-run: %d processes fell back, refused %d of %d"):format(fell, refused(log), #log))
    assert.is_true(fell >= 2, fell)
    assert.is_true(participants >= fell, participants) -- the shares of those still working sum to <= q
    assert.are.equal(0, refused(log)) -- the fall was no burst: the window of silence
    assert.is_true(H.busiest(accepted(log), per) <= q)
  end)
end)
