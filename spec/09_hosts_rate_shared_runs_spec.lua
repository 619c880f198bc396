-- make test: once
-- The runs of option rate shared by nginx's workers that bench/fleet_shared.lua (its dict row) and
-- spec/09_hosts_rate_shared_spec.lua make with spec/support/rate_worker.lua, one after another in
-- one nginx: each starts against a fresh quota, the fake's and the dict's, and each light thread
-- stops once its permit would come after the run's end. A quota of Q requests per minute, so a
-- run fills it at once and every later permit lies past the run's end: the outcomes are counts
-- (the fake's log, the workers' reports), whatever the machine's speed.
local H = require "support.helper"
local openresty = require "support.openresty"
local rate_worker = require "support.rate_worker"

local WORKERS, THREADS, DURATION = 2, 2, 20
local Q, PER = 40, 60

local CONF = {
  { "worker_processes 1;", "worker_processes " .. WORKERS .. ";" },
  { "lua_shared_dict vertexops 1m;", "lua_shared_dict vertexops 1m;\n  lua_shared_dict vertexops_rate 1m;\n"
    .. '  init_worker_by_lua_block { require("support.rate_worker").start() }' },
}
local RATE = { requests = Q, per = PER, shared_dict = "vertexops_rate" }

describe("the runs of rate shared by nginx's workers (spec/support/rate_worker.lua)", function()
  local box = H.fake_server()
  local app
  local run = 0
  setup(function() app = openresty.start(box.server, { conf = CONF }) end)
  teardown(function() app:stop() end)

  local function load()
    run = run + 1
    return rate_worker.load(app, box.server, { run = run, workers = WORKERS, threads = THREADS,
      duration = DURATION, rate = RATE, requests = Q, per = PER })
  end

  -- as the fake's quota, set again before each run
  it("start with the dict's window empty: a run right after one that filled it gets the whole quota", function()
    load()
    local first = H.quota_log(box.server:log("get"))
    assert.are.equal(Q, #first.times)
    box.server:reset_log()
    -- the first run's Q requests still hold the dict's window (a minute), which the fake forgot
    -- (its quota set again); the bench's runs follow each other like this
    load()
    local second = H.quota_log(box.server:log("get"))
    print(("\n  second run: %d accepted, %d refused"):format(#second.times, second.refused))
    assert.are.equal(0, second.refused)
    assert.are.equal(Q, #second.times)
  end)

  it("stop each light thread at its first TimeoutError (its next permit would come after the run's end)", function()
    local reports = load()
    local log = box.server:log("get")
    local accepted = 0
    for i = 1, WORKERS do
      accepted = accepted + reports[i].ok
      local timeouts = reports[i].errors.TimeoutError or 0
      print(("\n  worker %d: %d ok, %d TimeoutError"):format(i, reports[i].ok, timeouts))
      -- a thread that called again would spin on TimeoutErrors until the run's end (thousands)
      assert.is_true(timeouts <= THREADS, timeouts)
      for tag in pairs(reports[i].errors) do assert.are.equal("TimeoutError", tag) end
    end
    assert.are.equal(Q, accepted)
    assert.are.equal(Q, #H.quota_log(log).times)
  end)
end)
