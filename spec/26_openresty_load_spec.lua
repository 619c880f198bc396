-- A busy gateway: examples/openresty/nginx.conf (one worker) takes 1,000 concurrent
-- cancel_and_wait requests (bench/loadgen.c, a connection each) on operations the fake ends
-- CANCELLED 3 s after their cancel, while a concurrent client pings /status of the same worker
-- every 10 ms. Every request ends CANCELLED, the whole load within 1.5x the service time, every
-- ping within 50 ms, and connections to the fake are kept alive across requests.
local H = require "support.helper"
local fake = require "support.fake"
local openresty = require "support.openresty"

local N = 1000
local SERVICE = 3 -- seconds from a cancel to the operation's end

local repo = fake.spec_dir:gsub("/spec$", "")
local LOADGEN = repo .. "/build/bench/loadgen"

-- Runs the load: N requests to /cancel (names FIRST .. FIRST+N-1) and pings; returns the summary.
local function load(app, created, query)
  assert(os.execute("make -s -C " .. repo .. " build/bench/loadgen >/dev/null") == true
    or io.open(LOADGEN) ~= nil, "bench/loadgen.c does not build")
  local prefix = created.first:match("^(.*/operations/)%d+$")
  local first = tonumber(created.first:match("(%d+)$"))
  local cmd = ("ulimit -n 16384 2>/dev/null; %s '%s' %d %d '%s' '%s' 10"):format(LOADGEN,
    app:url("/cancel?name=" .. prefix), first, N, query or "", app:url("/status"))
  local p = assert(io.popen(cmd))
  local out = { statuses = {}, cancelled = 0, failed = 0, pings = {}, ping_max = 0 }
  for line in p:lines() do
    local kind, a, b, c, d = line:match("^(%u) (%S+) ?(%S*) ?(%S*) ?(%S*)")
    if kind == "R" then
      out.statuses[a] = (out.statuses[a] or 0) + 1
      if c == "1" then out.cancelled = out.cancelled + 1 end
      if d ~= "0" then out.failed = out.failed + 1 end
    elseif kind == "P" then
      local ms = tonumber(a)
      out.pings[#out.pings + 1] = ms
      if b ~= "200" then out.ping_failed = (out.ping_failed or 0) + 1 end
      if ms > out.ping_max then out.ping_max = ms end
    elseif kind == "W" then
      out.wall = tonumber(a) / 1000
    end
  end
  p:close()
  return out
end

local function summary(out)
  local parts = {}
  for k, v in pairs(out.statuses) do parts[#parts + 1] = k .. ": " .. v end
  return ("statuses {%s}, cancelled %d, transport failures %d, wall %.2f s, %d pings, slowest %.1f ms")
    :format(table.concat(parts, ", "), out.cancelled, out.failed, out.wall or -1, #out.pings, out.ping_max)
end

-- A timing claim about one nginx worker holds only when nothing else runs beside it: make test
-- runs this file alone, in its own stage (make load, VERTEXOPS_LOAD=1), not beside the other
-- interpreters' suites.
if not os.getenv("VERTEXOPS_LOAD") then
  describe("OpenResty under load", function()
    it("runs alone in make load", function() pending("make load runs it, with nothing beside it") end)
  end)
  return
end

describe("OpenResty under load (one worker, 1,000 concurrent cancel_and_wait)", function()
  local box = H.fake_server()
  local server, app

  setup(function() app = openresty.start(box.server) end)
  teardown(function() app:stop() end)
  before_each(function()
    server = box.server
    server:config { nolog = true }
  end)

  local function run(strategy)
    local created = server:create_many(N, { cancel_after = SERVICE })
    local out = load(app, created, strategy and "&strategy=" .. strategy)
    return out, server:stats()
  end

  for _, strategy in ipairs { "auto", "poll" } do
    describe("strategy " .. strategy, function()
      local out, stats
      setup(function() end)

      it("ends every request CANCELLED, within 1.5x the service time, /status answered within 50 ms", function()
        out, stats = run(strategy ~= "auto" and strategy or nil)
        local what = summary(out)
        assert.are.equal(N, out.statuses["200"], what)
        assert.are.equal(N, out.cancelled, what)
        assert.is_true(out.wall < 1.5 * SERVICE, what)
        assert.is_true(#out.pings >= SERVICE * 20, what) -- pinged all along (every 10 ms, one at a time)
        assert.is_nil(out.ping_failed, what)
        assert.is_true(out.ping_max < 50, what)
      end)

      it("keeps connections to the service alive: far fewer connections than requests", function()
        assert.is_truthy(stats, "the load did not run")
        local per_op = strategy == "poll" and 3 or 2 -- a cancel, then a :wait or GETs
        assert.is_true(stats.requests >= N * per_op, ("%d requests"):format(stats.requests))
        -- at most one connection per call in flight (1,000), reused for its next requests
        assert.is_true(stats.connections <= N + 24 and stats.connections * per_op <= stats.requests,
          ("%d connections for %d requests"):format(stats.connections, stats.requests))
      end)
    end)
  end
end)
