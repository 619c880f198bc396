-- A histogram's observations wait as plain numbers until its numbers are read, flushed or a
-- thousand of them wait (lua/vertexops/metrics.lua, fold: an event's cost does not depend on its
-- value; issue 19 §4). Nothing of that shows: what render() gives after more observations than
-- wait at once is what putting each in its bucket as it came gives -- bucket counts, _count, and
-- _sum added in the order of the events -- and a call without a duration is counted in
-- calls_total and in no bucket. Witness: the recorder's hooks called with known durations.
-- Contract: docs/contract.md, "Metrics".
local metrics = require "vertexops.metrics"
local prom = require "support.prometheus"

-- what each bucket (le as rendered) should count, cumulative, and the sum added in order
local function expected(bounds, values)
  local counts, sum = {}, 0
  for i = 1, #bounds + 1 do counts[i] = 0 end
  for _, v in ipairs(values) do
    for i = 1, #bounds + 1 do
      if i > #bounds or v <= bounds[i] then counts[i] = counts[i] + 1 end
    end
    sum = sum + v
  end
  return counts, sum
end

local function call_end(hooks, duration)
  hooks.on_call { phase = "end", call = "cancel", status = 200, attempts = 1, ok = true, duration = duration }
end

describe("metrics' histograms", function()
  it("count more observations than wait at once in their buckets, _count and _sum, as they came", function()
    local m = metrics.new()
    local hooks = m:hooks()
    local values = {}
    local n = metrics._FOLD_AT * 2 + 17
    for i = 1, n do
      -- every bucket, bounds themselves included, and values whose sum rounds
      local v = metrics.DEFAULT_BUCKETS[i % #metrics.DEFAULT_BUCKETS + 1] * ((i % 3) / 3 + 0.5)
      if i % 7 == 0 then v = metrics.DEFAULT_BUCKETS[i % #metrics.DEFAULT_BUCKETS + 1] end
      if i % 11 == 0 then v = 1000 end
      values[i] = v
      call_end(hooks, v)
    end
    local doc = prom.parse(m:render())
    prom.check_histograms(doc)
    local counts, sum = expected(metrics.DEFAULT_BUCKETS, values)
    local want = { call = "cancel", status = "2xx", tag = "" }
    for i, b in ipairs(metrics.DEFAULT_BUCKETS) do
      local labels = { le = metrics._number(b) }
      for k, v in pairs(want) do labels[k] = v end
      assert.are.equal(counts[i], prom.value(doc, "vertexops_call_duration_seconds_bucket", labels), "le " .. b)
    end
    assert.are.equal(n, prom.value(doc, "vertexops_call_duration_seconds_count", want))
    assert.are.equal(n, prom.value(doc, "vertexops_calls_total", want))
    assert.are.equal(sum, prom.value(doc, "vertexops_call_duration_seconds_sum", want))
  end)

  it("show an observation as soon as render is called, however few wait", function()
    local m = metrics.new()
    local hooks = m:hooks()
    call_end(hooks, 0.003)
    local doc = prom.parse(m:render())
    assert.are.equal(1, prom.value(doc, "vertexops_call_duration_seconds_bucket", { le = "0.005" }))
    call_end(hooks, 0.2)
    doc = prom.parse(m:render())
    assert.are.equal(1, prom.value(doc, "vertexops_call_duration_seconds_bucket", { le = "0.005" }))
    assert.are.equal(2, prom.value(doc, "vertexops_call_duration_seconds_bucket", { le = "0.25" }))
    assert.are.equal(0.203, prom.value(doc, "vertexops_call_duration_seconds_sum", {}))
  end)

  it("count a call without a duration (nil, NaN) in calls_total and in no bucket", function()
    local m = metrics.new()
    local hooks = m:hooks()
    call_end(hooks, 0.5)
    call_end(hooks, nil)
    call_end(hooks, 0 / 0)
    local doc = prom.parse(m:render())
    prom.check_histograms(doc)
    assert.are.equal(3, prom.value(doc, "vertexops_calls_total", {}))
    assert.are.equal(1, prom.value(doc, "vertexops_call_duration_seconds_count", {}))
    assert.are.equal(1, prom.value(doc, "vertexops_call_duration_seconds_bucket", { le = "+Inf" }))
    assert.are.equal(0.5, prom.value(doc, "vertexops_call_duration_seconds_sum", {}))
  end)
end)
