-- make test: alone (make load)
-- A busy gateway: examples/openresty/nginx.conf (one worker) takes 1,000 concurrent
-- cancel_and_wait requests (bench/loadgen.c, a connection each) on operations the fake ends
-- CANCELLED 3 s after their cancel, while a concurrent client pings /status of the same worker
-- every 10 ms. What the load does is asserted here: every request ends CANCELLED, no transport
-- fails, the worker is never blocked, connections to the fake are kept alive across requests. How
-- fast (ping percentiles, the wall time against the service time) is make bench's (bench/openresty.lua).
local H = require "support.helper"
local openresty = require "support.openresty"
local loadgen = require "support.loadgen"

local N = 1000
local SERVICE = 3 -- seconds from a cancel to the operation's end

-- A blocked worker stalls every ping for the whole 3 s service time; a busy one, milliseconds (tens
-- to a few hundred on a loaded 2-core machine): only a blocked event loop breaks this bound.
local BLOCKED_MS = 2000

describe("OpenResty under load (one worker, 1,000 concurrent cancel_and_wait)", function()
  local box = H.fake_server()
  local server, app

  setup(function() app = openresty.start(box.server) end)
  teardown(function() app:stop() end)
  before_each(function()
    server = box.server
    server:config { nolog = true }
  end)

  for _, strategy in ipairs { "auto", "poll" } do
    describe("strategy " .. strategy, function()
      local out, stats

      setup(function()
        box.server:config { nolog = true }
        local created = box.server:create_many(N, { cancel_after = SERVICE })
        out = loadgen.run(app, created, N, strategy ~= "auto" and "&strategy=" .. strategy or nil)
        stats = box.server:stats()
      end)

      it("ends every request CANCELLED, with no transport failure", function()
        local what = loadgen.summary(out)
        assert.are.equal(N, out.statuses["200"], what)
        assert.are.equal(N, out.cancelled, what)
        assert.are.equal(0, out.failed, what)
      end)

      it("never blocks the worker: /status answers all along, none waits for the service", function()
        local what = loadgen.summary(out)
        assert.is_true(#out.pings >= 2, what) -- pinged all along (every 10 ms, one at a time)
        assert.are.equal(0, out.ping_failed, what)
        assert.is_true(out.ping_max < BLOCKED_MS, what)
      end)

      it("keeps connections to the service alive: far fewer connections than requests", function()
        local per_op = strategy == "poll" and 3 or 2 -- a cancel, then a :wait or GETs
        assert.is_true(stats.requests >= N * per_op, ("%d requests"):format(stats.requests))
        -- at most one connection per call in flight (1,000), reused for its next requests
        assert.is_true(stats.connections <= N + 24 and stats.connections * per_op <= stats.requests,
          ("%d connections for %d requests"):format(stats.connections, stats.requests))
      end)
    end)
  end
end)
