-- The connections a bulk call opens: what the server's limits require and no more. A server that
-- ends each HTTP/2 connection with GOAWAY after K requests (Google's front ends do, the fake's
-- keepalive_requests) needs one new connection per K requests; a window of 100 needs one
-- connection's worth of streams (100) at a time. libcurl 7.88 opened a connection for every
-- transfer started while the replacement connection was still in its TLS handshake (each then
-- served one request: 47 connections for 100,000 cancels where 21 do, bench/RESULTS.md "Fleet");
-- csrc/multi.c caps the connections per host at what the transfers in flight need, plus the one
-- replacing a connection that is closing: with 100 in flight, two at a time. So every connection
-- serves K requests and ends with GOAWAY, except the (at most two) still open when the call ends:
-- at most ⌈requests / K⌉ + 1 connections. (Which two are open at the end is a race -- a retried
-- request can find the replacement still in its handshake and open the second -- so that is what
-- is asserted, not ⌈requests / K⌉.) Counted in the fake's log (its connection ids).
local vertexops = require "vertexops"
local H = require "support.helper"

local PER_CONNECTION = 500 -- requests on a connection before the fake sends GOAWAY
local per_connection

-- The connections of the log: at most ⌈requests / K⌉ + 1, at most two serving fewer than K
-- requests (the ones open at the end); the message lists them all.
local function assert_one_per_goaway(log)
  local per = {}
  for _, e in ipairs(log) do per[e.connection] = (per[e.connection] or 0) + 1 end
  local got, partial = 0, 0
  for _, k in pairs(per) do
    got = got + 1
    if k < PER_CONNECTION then partial = partial + 1 end
  end
  local bound = math.ceil(#log / PER_CONNECTION) + 1
  local msg = ("%d connections (%d serving fewer than %d requests) for %d requests, at most %d: %s")
    :format(got, partial, PER_CONNECTION, #log, bound, per_connection(log))
  assert.is_true(got <= bound, msg)
  assert.is_true(partial <= 2, msg)
end

-- "id:requests ..." in the order the connections were first used, for failure messages
function per_connection(log)
  local per, order = {}, {}
  for _, e in ipairs(log) do
    if not per[e.connection] then
      per[e.connection] = 0
      order[#order + 1] = e.connection
    end
    per[e.connection] = per[e.connection] + 1
  end
  local out = {}
  for _, c in ipairs(order) do out[#out + 1] = ("%s:%d"):format(tostring(c), per[c]) end
  return table.concat(out, " ")
end

describe("bulk calls on a server sending GOAWAY every " .. PER_CONNECTION .. " requests", function()
  local server, client
  setup(function() server = H.fake.start { keepalive_requests = PER_CONNECTION } end)
  teardown(function() server:stop() end)
  before_each(function()
    server:reset()
    client = vertexops.client(H.opts(server))
  end)
  after_each(function() client:close() end)

  it("cancel_all of 3,000 opens one connection per GOAWAY (none serving a stray request)", function()
    server:create_many(3000, { done_after = 36000 })
    local s = client:cancel_all(H.PARENT) -- the default window: 100 requests in flight
    assert.are.equal(3000, s.cancelled)
    local log = server:log()
    assert.are.equal(s.requests, #log) -- 3,001: at most 8 connections (6 serving 500, and 2)
    assert_one_per_goaway(log)
  end)

  it("cancel_many of 3,000 (concurrency 100) opens one connection per GOAWAY", function()
    local made = server:create_many(3000, { done_after = 36000 })
    local first = tonumber(made.first:match("(%d+)$"))
    local names = {}
    for i = 1, 3000 do names[i] = H.NAME .. (first + i - 1) end
    local results = client:cancel_many(names, nil, { concurrency = 100 })
    for i = 1, 3000 do assert.is_true(results[i].ok, names[i]) end
    assert_one_per_goaway(server:log())
  end)
end)
