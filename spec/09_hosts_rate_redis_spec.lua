-- make test: once
-- Option rate.redis inside nginx (docs/contract.md, "Pacing", "Shared across hosts";
-- lua/vertexops/rate_redis.lua: RESP over a cosocket): a real nginx (examples/openresty/nginx.conf)
-- with WORKERS workers and a real redis-server (spec/support/redis.lua). The load is
-- spec/09_hosts_rate_shared_spec.lua's (spec/support/rate_worker.lua: THREADS light threads a
-- worker calling get for DURATION seconds) against the fake's quota of Q per PER seconds on the real
-- clock; the window's buckets are on Redis's TIME. Witnesses: the fake's log, Redis's keys,
-- nginx's error log.
local H = require "support.helper"
local openresty = require "support.openresty"
local rate_worker = require "support.rate_worker"
local redis = require "support.redis"

local WORKERS, THREADS, DURATION = 3, 4, 3.5
local Q, PER = 120, 2

local CONF = {
  { "worker_processes 1;", "worker_processes " .. WORKERS .. ";" },
  { "lua_shared_dict vertexops 1m;", "lua_shared_dict vertexops 1m;\n"
    .. '  init_worker_by_lua_block { require("support.rate_worker").start() }' },
}

describe("option rate.redis inside nginx (RESP over a cosocket)", function()
  local box = H.fake_server()
  local server, app, r
  local run = 0
  setup(function()
    r = redis.start()
    app = openresty.start(box.server, { conf = CONF })
  end)
  teardown(function()
    app:stop()
    r:stop()
  end)
  before_each(function()
    server = box.server
    if not r.pid then r:start_again() end
    r:cli("FLUSHALL")
  end)

  -- Runs the job in every worker (as spec/09_hosts_rate_shared_spec.lua); returns the ops' names.
  local function load(rate)
    run = run + 1
    local reports, names = rate_worker.load(app, server, { run = run, workers = WORKERS, threads = THREADS,
      duration = DURATION, rate = rate, requests = Q, per = PER })
    for _, report in ipairs(reports) do
      for tag in pairs(report.errors) do assert.are.equal("TimeoutError", tag) end
    end
    return names
  end

  -- The most requests the fake accepted in any PER seconds (a sliding window over the log), and
  -- how many it accepted; how many it refused.
  local function busiest(log)
    local times = H.quota_log(log).times
    return H.busiest(times, PER), #times
  end
  local function refused(log) return H.quota_log(log).refused end

  it("makes the clients of one window wait for each other, on the options' clock", function()
    local op = server:create {}
    local res = app:result([[
      local now, delays = 1000, {}
      local function opts() return T.opts { rate = { requests = 1, per = 60, redis = { port = args.port } },
        clock = function() return now end, sleep = function(s) delays[#delays + 1] = s; now = now + s end } end
      local a, b = vertexops.client(opts()), vertexops.client(opts())
      a:get(args.name)
      b:get(args.name) -- another client (as another worker or host would): waits for a's request to leave
      return { delays = delays }]], { name = op.name, port = r.port })
    assert.are.equal(1, #res.delays)
    assert.is_true(res.delays[1] >= 60.5 and res.delays[1] <= 60.65, res.delays[1]) -- as outside nginx
    assert.are.equal(2, #server:log("get"))
    assert.is_truthy(r:cli("KEYS", "*"):find("{1/60/test-project/us-central1}:666", 1, true))
  end)

  it("keeps the workers together within the quota, fills it, and starves no worker", function()
    -- (timeout 5 s: a loaded machine's slow answer is no fall to local windows here)
    local names = load { requests = Q, per = PER, redis = { port = r.port, timeout = 5 } }
    local log = server:log("get")
    local most, total = busiest(log)
    local counts = H.quota_log(log).by_name
    print(("\nredis: %d accepted in %g s, busiest %g s: %d, per worker: %d %d %d, refused %d"):format(
      total, DURATION, PER, most, counts[names[1]] or 0, counts[names[2]] or 0, counts[names[3]] or 0, refused(log)))
    assert.are.equal(0, refused(log))
    assert.is_true(most <= Q, most)
    assert.is_true(total >= 0.85 * Q * DURATION / PER, total) -- as the shared dict's spec
    for i = 1, WORKERS do
      local mine = counts[names[i]] or 0
      assert.is_true(mine >= 0.5 * total / WORKERS, ("worker %d: %d of %d"):format(i, mine, total))
    end
    assert.is_false(app:error_log():find("option rate.redis", 1, true) ~= nil, app:error_log())
  end)

  it("falls back to requests / participants with one warning a worker when Redis is down", function()
    local port = H.closed_port()
    local names = load { requests = Q, per = PER, redis = { port = port, participants = WORKERS } }
    local log = server:log("get")
    local most, total = busiest(log)
    print(("\nredis down: %d accepted, busiest %d, refused %d"):format(total, most, refused(log)))
    assert.are.equal(0, refused(log))
    assert.is_true(most <= Q, most)
    for i = 1, WORKERS do
      local mine = 0
      for _, e in ipairs(log) do if e.name == names[i] then mine = mine + 1 end end
      assert.is_true(mine >= Q / WORKERS, mine) -- its share, at least one window's
    end
    local warnings = 0
    for _ in app:error_log():gmatch("option rate.redis %(127.0.0.1:" .. port .. "%)") do warnings = warnings + 1 end
    assert.are.equal(WORKERS, warnings)
  end)
end)
