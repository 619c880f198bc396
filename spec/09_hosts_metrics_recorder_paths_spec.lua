-- metrics:hooks() as a client's only hooks, with no log and no trace context, is recorded by the
-- observer's own methods (lua/vertexops/hooks.lua REC_METHODS: one function per event end, the
-- recorder called without a pcall for a label set it has seen; issue 19 §4); with a log beside
-- it, by the general path. Both count the same: calls, attempts, retries and bytes by the same
-- labels, through successes, retried failures, an answer that never came and a call that failed.
-- Witness: clients against the same fake, one per path (each with the client's clock injected and
-- with the default one), the same calls and faults; their renders' counters (durations aside: the
-- attempts' are measured in real time).
-- Contract: docs/contract.md, "Metrics" and "Hooks, trace context and logs".
local vertexops = require "vertexops"
local metrics = require "vertexops.metrics"
local prom = require "support.prometheus"
local H = require "support.helper"

local COUNTERS = { "vertexops_calls_total", "vertexops_attempts_total", "vertexops_retries_total",
                   "vertexops_attempt_sent_bytes_total", "vertexops_attempt_received_bytes_total" }

-- name{labels} value of every counter sample, sorted
local function counters(m)
  local doc = prom.parse(m:render())
  prom.check_histograms(doc)
  local out = {}
  for _, name in ipairs(COUNTERS) do
    for _, s in ipairs(prom.samples(doc, name)) do
      local labels = {}
      for k, v in pairs(s.labels) do labels[#labels + 1] = k .. "=" .. v end
      table.sort(labels)
      out[#out + 1] = name .. "{" .. table.concat(labels, ",") .. "} " .. s.value
    end
  end
  table.sort(out)
  return out
end

describe("metrics:hooks() alone and with a log beside it", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  it("count the same calls, attempts, retries and bytes", function()
    local got = {}
    -- (with the client's clock injected, and on the default one: LuaJIT's FFI read of it)
    for _, case in ipairs { { log = false, clock = true }, { log = true, clock = true }, { log = false, clock = false },
                            { log = true, clock = false } } do
      local m = metrics.new()
      local t = H.fake_time()
      local client = vertexops.client(H.opts(server, { hooks = m:hooks(), sleep = t.sleep,
        clock = case.clock and t.clock or nil, log = case.log and function() end or nil }))
      local op = server:create {}
      client:cancel(op.name)
      server:fault { match = "cancel", status = 503, times = 1 }
      client:cancel(op.name)
      server:fault { match = "cancel", drop = "before", times = 1 }
      pcall(client.cancel, client, op.name)
      assert.has_error(function() client:get((op.name:gsub("[^/]+$", "missing"))) end)
      client:get(op.name)
      client:close()
      got[#got + 1] = counters(m)
    end
    assert.is_true(#got[1] >= 10, table.concat(got[1], "\n"))
    for i = 2, #got do assert.are.same(got[1], got[i]) end
  end)
end)
