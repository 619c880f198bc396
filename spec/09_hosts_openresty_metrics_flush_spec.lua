-- make test: once
-- vertexops.metrics inside nginx keeps a worker's numbers in a Lua table and moves them to the
-- lua_shared_dict at a flush (a timer, the worker's exit, and every render or reset, which asks every
-- worker to flush first): issue 19 §4, the cost of hooks = metrics:hooks(). Two workers
-- (spec/support/openresty.lua); each scrape's numbers against the fake's request log, with no wait
-- for a timer.
local H = require "support.helper"
local openresty = require "support.openresty"
local prom = require "support.prometheus"

describe("OpenResty /metrics, numbers kept per worker (two workers)", function()
  local fake = H.fake_server()
  local app, server

  setup(function() app = openresty.start_two_workers(fake.server) end)
  teardown(function() if app then app:stop() end end)
  before_each(function()
    server = fake.server
    app:result [[ require("vertexops.metrics").new { shared_dict = "vertexops_metrics" }:reset() ]]
  end)

  local function get(path) return app:get(path) end

  it("keeps events out of the dict until a flush: the worker counting them registers its flush", function()
    for _ = 1, 4 do
      local body, code = get("/probe?name=" .. server:create {}.name)
      assert.are.equal(200, code, body)
    end
    -- each worker that served /probe counts through its own buffer and acknowledges flushes
    local r = app:result [[
      local served, acks = 0, 0
      for _, k in ipairs(ngx.shared.vertexops:get_keys(0)) do
        if k:match("^pid ") then served = served + 1 end
      end
      for id = 0, ngx.worker.count() - 1 do
        if ngx.shared.vertexops_metrics:get("\2ack\t" .. id) then acks = acks + 1 end
      end
      return { served, acks } ]]
    local served, acks = r[1], r[2]
    assert.is_true(acks >= served, ("%d worker(s) served /probe, %d flush(es) registered"):format(served, acks))
  end)

  it("shows in a scrape right after the traffic every attempt the fake logged, whichever worker scrapes", function()
    for round = 1, 5 do
      for _ = 1, 3 do
        local body, code = get("/probe?name=" .. server:create {}.name)
        assert.are.equal(200, code, body)
      end
      local body, code = get("/metrics")
      assert.are.equal(200, code, body)
      local doc = prom.parse(body)
      assert.are.equal(#server:log(), prom.value(doc, "vertexops_attempts_total"), "round " .. round)
      assert.are.equal(3 * round, prom.value(doc, "vertexops_calls_total"), "round " .. round)
    end
  end)
end)
