-- The deadline of a call (lua/vertexops/deadline.lua): one object, on the call's clock, that every
-- step of the call asks how long is left -- the token fetch and its retries, the attempts, the
-- sleeps between them. First the object on an injected clock, then one call through the fake.
-- Contract: docs/contract.md, "Retry and timeouts".
local cjson = require "cjson"
local vertexops = require "vertexops"
local deadlines = require "vertexops.deadline"
local H = require "support.helper"

describe("a deadline", function()
  it("has what is left of its seconds on its clock, never less than 0", function()
    local t = H.fake_time(100)
    local d = deadlines.new(10, t.clock)
    assert.are.equal(10, d:left())
    t.now = 104
    assert.are.equal(6, d:left())
    t.now = 125
    assert.are.equal(0, d:left())
  end)

  it("gives what is left as one value, and with left_now() the clock's reading beside it", function()
    -- (left() as the last argument of math.min: a second value would be taken as a bound of its own
    -- -- the nginx token lock's lifetime once read min(60, left, now); found by review)
    local t = H.fake_time(30)
    local d = deadlines.new(100, t.clock)
    assert.are.equal(1, select("#", d:left()))
    assert.are.equal(60, math.min(60, d:left()))
    local left, now = d:left_now()
    assert.are.equal(100, left)
    assert.are.equal(30, now)
  end)

  it("has expired from its instant on, not before", function()
    local t = H.fake_time(100)
    local d = deadlines.new(10, t.clock)
    t.now = 109.5
    assert.is_false(d:expired())
    t.now = 110
    assert.is_true(d:expired())
  end)

  it("says whether a sleep of s seconds would reach it", function()
    local t = H.fake_time(100)
    local d = deadlines.new(10, t.clock)
    assert.is_false(d:within(9.9))
    assert.is_true(d:within(10))
  end)

  it("keeps its instant, its start and its clock", function()
    local t = H.fake_time(100)
    local d = deadlines.new(10, t.clock)
    assert.are.equal(110, d:at())
    assert.are.equal(100, d:start())
    assert.are.equal(t.clock, d:clock())
    local a = deadlines.at(150, t.clock)
    assert.are.equal(150, a:at())
    assert.are.equal(50, a:left())
  end)

  it("is unbounded without seconds: math.huge left, never expired", function()
    local t = H.fake_time(100)
    local d = deadlines.new(nil, t.clock)
    t.now = 1e12
    assert.are.equal(math.huge, d:left())
    assert.is_false(d:expired())
    assert.are.equal(math.huge, deadlines.at(nil, t.clock):at())
  end)

  it("gives a child bound that ends no later than itself", function()
    local t = H.fake_time(100)
    local d = deadlines.new(10, t.clock)
    t.now = 105
    local short = d:sub(2)
    assert.are.equal(107, short:at())
    assert.are.equal(105, short:start())
    local long = d:sub(60) -- a token request's own 60 s, within a call with 5 s left
    assert.are.equal(110, long:at())
    assert.are.equal(d:clock(), long:clock())
    t.now = 110
    assert.is_true(long:expired())
    assert.are.equal(160, deadlines.new(nil, t.clock):sub(50):at()) -- unbounded: the child's own
  end)

  it("reads the clock of the options, else the core's", function()
    local t = H.fake_time(100)
    assert.are.equal(t.clock, deadlines.clock_of({ clock = t.clock }))
    assert.are.equal(require("vertexops.core").clock, deadlines.clock_of({}))
    local d = deadlines.for_call({ clock = t.clock, timeout = 7 })
    assert.are.equal(107, d:at())
    assert.are.equal(100 + vertexops.DEFAULTS.timeout, deadlines.for_call({ clock = t.clock }):at())
  end)
end)

describe("one deadline per call", function()
  local fake = H.fake_server()
  local dir
  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p " .. dir)
  end)
  teardown(function() os.execute("rm -rf " .. dir) end)

  local function user_client(server, t, timeout)
    local path = dir .. "/user.json"
    H.fake.write(path, cjson.encode { type = "authorized_user", client_id = "test-client",
      client_secret = "test-secret", refresh_token = "test-refresh", token_uri = server.endpoint .. "/token" })
    return vertexops.client { endpoint = server.endpoint, ca_file = server.ca_file, credentials = path,
                              clock = t.clock, sleep = t.sleep, timeout = timeout }
  end

  -- the get's own backoff (1 + 1.25 + 1.5625 + 1.953125 + 2.44140625 = 8.2 s) fits in 10 s; after
  -- the token fetch's two retries (2.25 s) it no longer does: the fifth retry would start past it
  it("bounds the token fetch, the attempts and the sleeps between them together", function()
    local server = fake.server
    local op = server:create {}
    local t = H.virtual_time(server)
    server:fault { match = "token", status = 503, times = 2 }
    server:fault { match = "get", status = 503, times = 100 }
    local c = user_client(server, t, 10)
    local err = H.raises(c.get, c, op.name)
    assert.are.equal("TimeoutError", err.tags[1])
    assert.are.equal(503, err.cause.code)
    assert.are.equal(3, #server:log("token"))
    assert.are.equal(5, #server:log("get"))
    assert.are.same({ 1, 1.25, 1, 1.25, 1.5625, 1.953125 }, t.delays)
    c:close()
  end)

  it("leaves the attempts their whole backoff when the token comes at once", function()
    local server = fake.server
    local op = server:create {}
    local t = H.virtual_time(server)
    server:fault { match = "get", status = 503, times = 100 }
    local c = user_client(server, t, 10)
    local err = H.raises(c.get, c, op.name)
    assert.are.equal("HttpError", err.tags[1]) -- the retries ran out, not the time
    assert.are.equal(1, #server:log("token"))
    assert.are.equal(6, #server:log("get"))
    c:close()
  end)
end)
