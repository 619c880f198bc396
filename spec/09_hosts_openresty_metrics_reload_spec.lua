-- make test: once
-- vertexops.metrics inside nginx over a reload: a worker flushes its numbers from one timer that
-- sleeps between flushes for the worker's life (not a timer per flush: each costs nginx a coroutine
-- and a fake request, about 1,000 instructions a request with the collector running; issue 19 §4),
-- and once more at its exit, so what it counted since its last flush reaches the dict before it
-- ends; and the sleeping timer does not keep an old worker alive. Two workers flushing every second
-- (metrics._FLUSH_EVERY set at their start): the traffic's counts wait in the workers when nginx
-- reloads. Witness: a scrape by the new workers against the fake's request log.
-- Contract: docs/contract.md, "Metrics".
local H = require "support.helper"
local openresty = require "support.openresty"
local prom = require "support.prometheus"
local socket = require "socket"

describe("OpenResty /metrics over a reload (two workers)", function()
  local fake = H.fake_server()
  local app

  setup(function()
    app = openresty.start_two_workers(fake.server, nil, { { "  lua_shared_dict vertexops_metrics 1m;",
      "  lua_shared_dict vertexops_metrics 1m;\n"
        .. "  init_worker_by_lua_block { require('vertexops.metrics')._FLUSH_EVERY = 1 }" } })
  end)
  teardown(function() if app then app:stop() end end)

  it("keeps every count an old worker made since its last flush, and lets it end at once", function()
    local server = fake.server
    app:result [[ require("vertexops.metrics").new { shared_dict = "vertexops_metrics" }:reset() ]]
    local before = #server:log()
    for _ = 1, 6 do
      local body, code = app:get("/probe?name=" .. server:create {}.name)
      assert.are.equal(200, code, body)
    end
    local t0 = socket.gettime()
    app:reload() -- (returns once every old worker has ended)
    local took = socket.gettime() - t0
    assert.is_true(took < 5, ("the old workers took %.2f s to end"):format(took))
    local body, code = app:get("/metrics")
    assert.are.equal(200, code, body)
    local doc = prom.parse(body)
    assert.are.equal(#server:log() - before, prom.value(doc, "vertexops_attempts_total"))
    assert.are.equal(6, prom.value(doc, "vertexops_calls_total"))
  end)
end)
