-- Option rate.redis when the call's deadline, not Redis, ends the permit's exchange
-- (docs/contract.md, "Pacing", "Shared across hosts"; lua/vertexops/rate_redis.lua): a Redis
-- that accepts the connection and never answers (a listening socket nobody reads), a call whose
-- timeout is shorter than rate.redis.timeout. Witnesses: the error, the fake's log, stderr.
local vertexops = require "vertexops"
local rate_redis = require "vertexops.rate_redis"
local H = require "support.helper"
local socket = require "socket"

local stderr_of = H.stderr_of

describe("option rate.redis, the call's deadline during the exchange", function()
  local fake = H.fake_server()
  local silent
  setup(function() silent = assert(socket.bind("127.0.0.1", 0)) end)
  teardown(function() rate_redis.close(); silent:close() end)

  it("ends the call with TimeoutError, nothing sent, and no fall back to a local window", function()
    local op = fake.server:create {}
    local _, port = silent:getsockname()
    local c = vertexops.client(H.opts(fake.server,
      { rate = { requests = 10, per = 60, redis = { port = tonumber(port), timeout = 30 } } }))
    local ok, err
    local said = stderr_of(function() ok, err = pcall(c.get, c, op.name, nil, { timeout = 0.3 }) end)
    assert.is_false(ok)
    assert.are.same({ "TimeoutError" }, err.tags, tostring(err.message))
    assert.are.equal(0, #fake.server:log("get"))
    -- Redis did not fail: the call ran out of time. No warning, and the process's window stays shared
    assert.are.equal("", said)
  end)
end)
