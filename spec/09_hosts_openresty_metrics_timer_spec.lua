-- make test: once
-- vertexops.metrics inside nginx flushes a worker's numbers from one timer that sleeps between
-- flushes; nginx drops a timer whose turn comes while all of lua_max_running_timers are running
-- (after ngx.timer.at has returned ok), and a watchdog timer (every 5 s; 1 s here) makes the loop again.
-- Two workers with one running timer each, held 3 s by a timer of the test's own from their start:
-- the metrics' first loop is dropped in each. Witness: a scrape once the slot is free again shows
-- every call the fake logged, at once (no worker left without a flush for the scrape to wait on).
-- Found by an independent review (issue 19 §4). Contract: docs/contract.md, "Metrics".
local H = require "support.helper"
local openresty = require "support.openresty"
local prom = require "support.prometheus"
local socket = require "socket"

describe("OpenResty /metrics with a flush timer nginx dropped (two workers)", function()
  local fake = H.fake_server()
  local app

  setup(function()
    app = openresty.start_two_workers(fake.server, nil, { { "  lua_shared_dict vertexops_metrics 1m;",
      "  lua_shared_dict vertexops_metrics 1m;\n  lua_max_running_timers 1;\n"
        .. "  init_worker_by_lua_block { require('vertexops.metrics')._WATCH_EVERY = 1; "
        .. "ngx.timer.at(0, function() ngx.sleep(3) end) }" } })
  end)
  teardown(function() if app then app:stop() end end)

  it("counts every call once the running timers' slot is free again", function()
    local server = fake.server
    local before = #server:log()
    for _ = 1, 10 do
      local body, code = app:get("/probe?name=" .. server:create {}.name)
      assert.are.equal(200, code, body)
    end
    socket.sleep(4.5) -- (the test's timers end at 3 s; the watchdog's next turn makes the loop again)
    local t0 = socket.gettime()
    local body, code = app:get("/metrics")
    local took = socket.gettime() - t0
    assert.are.equal(200, code, body)
    local doc = prom.parse(body)
    assert.are.equal(#server:log() - before, prom.value(doc, "vertexops_attempts_total"))
    assert.are.equal(10, prom.value(doc, "vertexops_calls_total"))
    assert.is_true(took < 1.5, ("the scrape waited %.2f s for a worker's flush"):format(took))
  end)
end)
