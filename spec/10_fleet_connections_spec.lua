-- The connections a bulk call opens: what the server's limits require and no more. A server that
-- ends each HTTP/2 connection with GOAWAY after K requests (Google's front ends do, the fake's
-- keepalive_requests) needs one new connection per K requests; a window of 100 needs one
-- connection's worth of streams (100) at a time. libcurl 7.88 opened a connection for every
-- transfer started while the replacement connection was still in its TLS handshake (each then
-- served one request: 47 connections for 100,000 cancels where 21 do, bench/RESULTS.md "Fleet");
-- csrc/multi.c caps the connections per host at what the transfers in flight need, plus the one
-- replacing a connection that is closing. Counted in the fake's log (its connection ids).
local vertexops = require "vertexops"
local H = require "support.helper"

local PER_CONNECTION = 200 -- requests on a connection before the fake sends GOAWAY

-- "id:requests ..." in the order the connections were first used, for failure messages
local function per_connection(log)
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

  it("cancel_all of 1,000 opens one connection per GOAWAY, none serving a stray request", function()
    server:create_many(1000, { done_after = 36000 })
    local s = client:cancel_all(H.PARENT) -- the default window: 100 requests in flight
    assert.are.equal(1000, s.cancelled)
    local log = server:log()
    assert.are.equal(s.requests, #log)
    local need = math.ceil(#log / PER_CONNECTION) -- 1,001 requests: 6
    local got = H.connections(log)
    assert.is_true(got <= need, ("%d connections for %d requests (%d needed): %s"):format(got, #log, need,
      per_connection(log)))
  end)

  it("cancel_many of 1,000 (concurrency 100) opens one connection per GOAWAY", function()
    local made = server:create_many(1000, { done_after = 36000 })
    local first = tonumber(made.first:match("(%d+)$"))
    local names = {}
    for i = 1, 1000 do names[i] = H.NAME .. (first + i - 1) end
    local results = client:cancel_many(names, nil, { concurrency = 100 })
    for i = 1, 1000 do assert.is_true(results[i].ok, names[i]) end
    local log = server:log()
    local need = math.ceil(#log / PER_CONNECTION)
    local got = H.connections(log)
    assert.is_true(got <= need, ("%d connections for %d requests (%d needed): %s"):format(got, #log, need,
      per_connection(log)))
  end)
end)
