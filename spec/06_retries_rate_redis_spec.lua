-- Option rate.redis outside nginx (docs/contract.md, "Pacing", "Shared across hosts";
-- lua/vertexops/rate_redis.lua, csrc/redis.c): a real redis-server on a free loopback port
-- (spec/support/redis.lua) and clients of one process on an injected clock (H.fake_time: the
-- Redis keys carry the buckets computed from it). Witnesses: the delays slept, the fake's log,
-- Redis's keys and the warnings written to stderr. Many processes: spec/10_fleet_rate_redis_spec.lua.
local vertexops = require "vertexops"
local rate_redis = require "vertexops.rate_redis"
local H = require "support.helper"
local redis = require "support.redis"

local stderr_of = H.stderr_of

describe("option rate.redis", function()
  local fake = H.fake_server()
  local r
  setup(function() r = redis.start() end)
  teardown(function() rate_redis.close(); r:stop() end)
  before_each(function()
    rate_redis.close()
    if not r.pid then r:start_again() end
    r:cli("FLUSHALL")
  end)

  local function opts(t, rate, extra)
    return H.timed_opts(fake.server, t, H.opts(fake.server, { rate = rate }, extra))
  end

  it("makes the clients of one window wait for each other, on the options' clock", function()
    local op = fake.server:create {}
    local t = H.fake_time(1000)
    local o = opts(t, { requests = 1, per = 60, redis = r:option() })
    vertexops.client(o):get(op.name)
    vertexops.client(o):get(op.name) -- another client (as another process would): waits for the first
    assert.are.equal(1, #t.delays)
    -- 40 buckets of 1.5 s: the first request's bucket (1000 / 1.5 = 666) leaves at (666 + 41) *
    -- 1.5 = 1060.5, and a jitter of a tenth of a bucket
    assert.is_true(t.delays[1] >= 60.5 and t.delays[1] <= 60.65, t.delays[1])
    assert.are.equal(2, #fake.server:log("get"))
  end)

  it("keys the window by project and location, with the buckets of the caller's clock", function()
    local op = fake.server:create {}
    local t = H.fake_time(3000)
    vertexops.client(opts(t, { requests = 5, per = 60, redis = r:option() })):get(op.name)
    local keys = r:cli("KEYS", "*")
    -- bucket 3000 / 1.5 = 2000, period 3000 / 60 = 50: numbers of the injected clock, not Redis's TIME
    assert.is_truthy(keys:find("vertexops:rate:{5/60/test-project/us-central1}:2000", 1, true), keys)
    assert.is_truthy(keys:find("vertexops:rate:{5/60/test-project/us-central1}:p:50", 1, true), keys)
    assert.are.equal("1", r:cli("GET", "vertexops:rate:{5/60/test-project/us-central1}:2000"))
  end)

  it("lets n go at once, then one each time one leaves: n requests in any window", function()
    local op = fake.server:create {}
    local t = H.fake_time(6000)
    local c = vertexops.client(opts(t, { requests = 3, per = 60, redis = r:option() }))
    for _ = 1, 4 do c:get(op.name) end
    assert.are.equal(1, #t.delays) -- three at once, the fourth when the bucket of the three leaves,
    -- (4000 + 41) * 1.5 = 6061.5, DEFER (0.3) of a bucket later (this process took its share: the
    -- whole window), and a jitter of a tenth of a bucket
    assert.is_true(t.delays[1] >= 61.95 and t.delays[1] <= 62.1, t.delays[1])
    assert.are.equal(4, #fake.server:log("get"))
  end)

  it("ends the call with TimeoutError, nothing sent, when the shared window's permit would come after the deadline", function()
    local op = fake.server:create {}
    local t = H.fake_time(9000)
    local o = opts(t, { requests = 1, per = 60, redis = r:option() }, { timeout = 10 })
    vertexops.client(o):get(op.name)
    local ok, err = pcall(vertexops.client(o).get, vertexops.client(o), op.name)
    assert.is_false(ok)
    assert.are.equal("TimeoutError", H.tags(err))
    assert.is_truthy(err.message:find("shared through Redis at 127.0.0.1:" .. r.port, 1, true), err.message)
    assert.are.equal(1, #fake.server:log("get"))
  end)

  it("falls back to requests / participants, with one warning, when Redis cannot be reached", function()
    local op = fake.server:create {}
    local t = H.fake_time(12000)
    local port = H.closed_port()
    local c = vertexops.client(opts(t, { requests = 6, per = 60,
      redis = { host = "127.0.0.1", port = port, participants = 3 } }))
    local err = stderr_of(function() for _ = 1, 3 do c:get(op.name) end end)
    assert.are.same({ 60 }, t.delays) -- 6 / 3 participants a minute: the third a minute later
    assert.are.equal(3, #fake.server:log("get"))
    local _, warnings = err:gsub("option rate.redis %(127.0.0.1:" .. port .. "%)", "")
    assert.are.equal(1, warnings, err)
    assert.is_truthy(err:find("2 requests per 60 s (rate.requests / 3 participants)", 1, true), err)
  end)

  it("falls back when Redis stops mid-run: a window of silence, then its share; shared again when Redis is back", function()
    local op = fake.server:create {}
    local t = H.fake_time(15000)
    local c = vertexops.client(opts(t, { requests = 8, per = 60, redis = r:option() }))
    c:get(op.name) -- through Redis: one participant, this process
    c:get(op.name)
    r:stop()
    local err = stderr_of(function()
      -- the local window at 8 / 1, after a window of silence: what Redis let go for any process
      -- before it failed leaves the window first
      c:get(op.name)
    end)
    assert.are.same({ 60 }, t.delays)
    assert.is_truthy(err:find("paces on its own at 8 requests per 60 s", 1, true), err)
    err = stderr_of(function() for _ = 1, 8 do c:get(op.name) end end) -- then 8 a window
    assert.are.same({ 60, 60 }, t.delays)
    assert.are.equal("", err) -- one warning per fall
    r:start_again()
    err = stderr_of(function() c:get(op.name) end) -- asked again a window after the fall
    assert.is_truthy(err:find("Redis answers again", 1, true), err)
    assert.is_truthy(r:cli("KEYS", "*"):find("test-project/us-central1", 1, true))
    assert.are.equal(12, #fake.server:log("get"))
  end)

  it("authenticates and selects its database", function()
    local secured = redis.start { password = "s3cret" }
    local ok, err = pcall(function()
      local op = fake.server:create {}
      local t = H.fake_time(18000)
      local c = vertexops.client(opts(t, { requests = 2, per = 60, redis = secured:option { db = 3 } }))
      assert.are.equal("", stderr_of(function() c:get(op.name) end))
      assert.are.equal("", secured:cli("-n", "0", "KEYS", "*"))
      assert.is_truthy(secured:cli("-n", "3", "KEYS", "*"):find("us-central1", 1, true))
    end)
    rate_redis.close()
    secured:stop()
    assert(ok, err)
  end)

  it("falls back, with a warning naming AUTH, when the password is wrong", function()
    local secured = redis.start { password = "s3cret" }
    local ok, err = pcall(function()
      local op = fake.server:create {}
      local t = H.fake_time(21000)
      local c = vertexops.client(opts(t, { requests = 2, per = 60,
        redis = { host = "127.0.0.1", port = secured.port, password = "wrong" } }))
      local out = stderr_of(function() c:get(op.name) end)
      assert.is_truthy(out:find("AUTH failed", 1, true), out)
      assert.are.equal(1, #fake.server:log("get"))
    end)
    rate_redis.close()
    secured:stop()
    assert(ok, err)
  end)

  it("checks its fields: a port out of range is a ValueError naming rate.redis.port, nothing sent", function()
    local op = fake.server:create {}
    H.value_error("rate.redis.port", vertexops.get, op.name, nil,
      fake.server:options { rate = { requests = 1, redis = { port = 70000 } } })
    assert.are.equal(0, #fake.server:log())
  end)

  it("checks its fields: a host that is no name is a ValueError naming rate.redis.host", function()
    H.value_error("rate.redis.host", vertexops.client, { rate = { requests = 1, redis = { host = "a b" } } })
  end)

  it("checks its fields: an unknown key is a ValueError naming rate.redis", function()
    H.value_error("rate.redis", vertexops.client, { rate = { requests = 1, redis = { hots = "x" } } })
  end)

  it("checks its fields: a password that is not a string is a TypeError naming rate.redis.password", function()
    local err = H.raises(vertexops.client, { rate = { requests = 1, redis = { password = 5 } } })
    assert.are.equal("TypeError", H.tags(err))
    assert.is_truthy(err.message:find("rate.redis.password", 1, true), err.message)
  end)

  it("is not used with rate.shared_dict: a ValueError naming both, nothing sent", function()
    local op = fake.server:create {}
    H.value_error("rate.shared_dict", vertexops.get, op.name, nil,
      fake.server:options { rate = { requests = 1, shared_dict = "d", redis = {} } })
    assert.are.equal(0, #fake.server:log())
  end)
end)

describe("rate_redis's RESP reader (inside nginx, over a cosocket)", function()
  -- a receive over the bytes given, as a cosocket's: "*l" a line without CR LF, n: n bytes
  local function reader(bytes)
    local at = 1
    return function(p)
      if p == "*l" then
        local e = bytes:find("\n", at, true)
        if not e then return nil, "closed" end
        local line = bytes:sub(at, e - 1):gsub("\r", "")
        at = e + 1
        return line
      end
      if at + p - 1 > #bytes then return nil, "closed" end
      local s = bytes:sub(at, at + p - 1)
      at = at + p
      return s
    end
  end
  local function read(bytes) return rate_redis.read(reader(bytes)) end

  it("reads what the scripts answer: integers, bulk strings, nil, arrays", function()
    assert.are.same({ 1, 3, 333, "62.5" }, read("*4\r\n:1\r\n:3\r\n:333\r\n$4\r\n62.5\r\n"))
    assert.are.equal(false, read("$-1\r\n"))
    assert.are.equal("OK", read("+OK\r\n"))
  end)

  it("answers an error reply as nil, its message and 'reply'", function()
    assert.are.same({ nil, "NOSCRIPT No matching script.", "reply" }, { read("-NOSCRIPT No matching script.\r\n") })
  end)

  it("refuses malformed replies as 'io' (the connection is closed)", function()
    for _, bad in ipairs { "?x\r\n", ":12a\r\n", "$5\r\nabc\r\n", "$99999999\r\n", "*65\r\n",
      "*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", "$3\r\nabcde", ":\r\n", "" } do
      local v, _, kind = read(bad)
      assert.is_nil(v, bad)
      assert.are.equal("io", kind, bad)
    end
  end)

  it("never raises on any bytes: 3,000 mutations of valid replies (seeded) end in a value or nil, why, kind", function()
    local seeds = { "*4\r\n:1\r\n:3\r\n:333\r\n$4\r\n62.5\r\n", "$-1\r\n", "+OK\r\n", "-ERR x\r\n",
      "*2\r\n*1\r\n:1\r\n$3\r\nabc\r\n", ":-12\r\n" }
    local state = 12345
    local function rand(n) -- Park and Miller's generator: exact in doubles, the same bytes everywhere
      state = (state * 16807) % 2147483647
      return state % n + 1
    end
    for _ = 1, 3000 do
      local b = { seeds[rand(#seeds)]:byte(1, -1) }
      for _ = 1, rand(4) do
        local op, at = rand(3), rand(#b + 1)
        if op == 1 then table.insert(b, at, rand(256) - 1)
        elseif op == 2 and #b > 0 then table.remove(b, math.min(at, #b))
        elseif #b > 0 then b[math.min(at, #b)] = rand(256) - 1 end
      end
      local bytes = string.char((table.unpack or unpack)(b))
      local ok, v, why, kind = pcall(read, bytes)
      assert.is_true(ok, v)
      if v == nil then
        assert.are.equal("string", type(why), bytes)
        assert.is_truthy(kind == "io" or kind == "reply", bytes)
      end
    end
  end)

  it("writes a command as an array of bulk strings", function()
    assert.are.equal("*3\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n1\r\n", rate_redis.resp { "EVALSHA", "ab", 1 })
  end)
end)
