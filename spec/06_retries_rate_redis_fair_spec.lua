-- Option rate.redis's share (docs/contract.md, "Shared across hosts"; lua/vertexops/rate_redis.lua):
-- a process that took more than its share of the shared window (requests / participants in the
-- last `per` seconds) and is refused waits until it is back within its share, so the freed places
-- go to the participants under theirs; a process at its share waits DEFER of a bucket more than
-- the others, as before. One process on an injected clock (H.fake_time) and a real redis-server;
-- the other participant is written into Redis (its id in the period's set, its place in a bucket).
-- Witnesses: the delays slept and the fake's log.
local vertexops = require "vertexops"
local rate_redis = require "vertexops.rate_redis"
local H = require "support.helper"
local redis = require "support.redis"

local BASE = "vertexops:rate:{4/60/test-project/us-central1}"

describe("option rate.redis's share of the window", function()
  local fake = H.fake_server()
  local r
  setup(function() r = redis.start() end)
  teardown(function() rate_redis.close(); r:stop() end)
  before_each(function()
    rate_redis.close()
    r:cli("FLUSHALL")
  end)

  -- 4 requests per 60 s (40 buckets of 1.5 s) at t = 6000 (bucket 4000, period 100): another
  -- participant took `theirs` places at t = 5985 (bucket 3990), then this process sends `mine`
  -- requests; returns the client's clock and its operation.
  local function window(theirs, timeout)
    r:cli("SADD", BASE .. ":p:100", "another-process")
    r:cli("SET", BASE .. ":3990", tostring(theirs))
    local op = fake.server:create {}
    local t = H.fake_time(6000)
    local o = H.timed_opts(fake.server, t, H.opts(fake.server,
      { rate = { requests = 4, per = 60, redis = r:option() } }, { timeout = timeout }))
    return t, vertexops.client(o), op
  end

  it("makes a process past its share wait until it is back within it: the freed place goes to the other first", function()
    local t, c, op = window(1)
    for _ = 1, 4 do c:get(op.name) end -- 3 go (the window holds 1 + 3), the fourth is refused
    -- 2 participants, a share of 2: this process took 3. The other's place leaves at
    -- (3990 + 41) * 1.5 = 6046.5, but this process waits until its first permit (6000) leaves its
    -- last 60 s, 6060, then a jitter of a tenth of a bucket (before: 6046.5 + DEFER 0.45)
    assert.are.equal(1, #t.delays)
    assert.is_true(t.delays[1] >= 60 and t.delays[1] <= 60.15, t.delays[1])
    assert.are.equal(4, #fake.server:log("get"))
  end)

  it("makes a process at its share wait DEFER of a bucket more than the freed place", function()
    local t, c, op = window(2)
    for _ = 1, 3 do c:get(op.name) end -- 2 go (its share), the third is refused
    -- the other's places leave at 6046.5; DEFER (0.3) of a bucket of 1.5 s more, and the jitter
    assert.are.equal(1, #t.delays)
    assert.is_true(t.delays[1] >= 46.95 and t.delays[1] <= 47.1, t.delays[1])
    assert.are.equal(3, #fake.server:log("get"))
  end)

  it("gives up the wait for its share rather than the call's deadline", function()
    local t, c, op = window(1, 50)
    for _ = 1, 4 do c:get(op.name) end
    -- back within its share at 6060, after the fourth call's deadline (6000 + 50): it waits only
    -- for the freed place (6046.5) and DEFER, and the call succeeds
    assert.are.equal(1, #t.delays)
    assert.is_true(t.delays[1] >= 46.95 and t.delays[1] <= 47.1, t.delays[1])
    assert.are.equal(4, #fake.server:log("get"))
  end)
end)
