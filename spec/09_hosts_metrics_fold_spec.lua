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

-- The ends of label sets seen before wait in the store's queue (lua/vertexops/metrics.lua, queue:
-- what lua/vertexops/hooks.lua's metrics-only methods call, rec.known_pair, known_call and
-- known_attempt) until the numbers are read, flushed or the queue is full. Witness: two recorders
-- given the same ends, one through the queue as hooks.lua does it, one recording each at once
-- (rec.call, rec.attempt); their renders must be the same text.
describe("metrics' queue of ends", function()
  local hooks_mod = require "vertexops.hooks"

  local function recorder(m)
    return hooks_mod.RECORDERS[m:hooks().on_attempt]
  end

  -- the i-th end: a call with one attempt, or an attempt alone, or a call alone; durations that
  -- fall in every bucket, some without one; bytes, some none
  local function event(i)
    local status = (i % 5 == 0) and 503 or (i % 13 == 0) and 404 or 200
    local dc = metrics.DEFAULT_BUCKETS[i % #metrics.DEFAULT_BUCKETS + 1] * ((i % 3) / 3 + 0.5)
    local da = dc / 2
    if i % 17 == 0 then da = nil end
    local sent, received = 300 + i, (i % 19 == 0) and 0 or 200 + i
    local kind = (i % 7 == 0) and "attempt" or (i % 11 == 0) and "call" or "pair"
    return kind, status, dc, da, sent, received
  end

  -- as hooks.lua does: the queue when it takes the end, else the recorder at once
  local function queued(rec, i)
    local kind, status, dc, da, sent, received = event(i)
    if kind == "pair" and rec.known_pair("cancel", status, dc, da, sent, received) then return true end
    if kind ~= "call" and not rec.known_attempt("cancel", status, nil, da, sent, received) then
      rec.attempt("cancel", status, nil, da, sent, received)
    end
    if kind ~= "attempt" and not rec.known_call("cancel", status, nil, dc) then rec.call("cancel", status, nil, dc) end
  end

  local function at_once(rec, i)
    local kind, status, dc, da, sent, received = event(i)
    if kind ~= "call" then rec.attempt("cancel", status, nil, da, sent, received) end
    if kind ~= "attempt" then rec.call("cancel", status, nil, dc) end
  end

  it("count more ends than wait in it at once as recording each at once does, sums in the same order", function()
    local a, b = metrics.new(), metrics.new()
    local ra, rb = recorder(a), recorder(b)
    local n = math.floor(metrics._EV_MAX / 5) * 3 + 7 -- (the queue full three times, then some)
    local pairs_queued = 0
    for i = 1, n do
      if queued(ra, i) then pairs_queued = pairs_queued + 1 end
      at_once(rb, i)
    end
    assert.is_true(pairs_queued > n / 2, "ends that went through the queue: " .. pairs_queued)
    local text = b:render()
    prom.check_histograms(prom.parse(text))
    assert.are.equal(text, a:render())
  end)
end)

describe("metrics' queue of ends, beside an end recorded at once", function()
  it("add a series' sum in the order its ends came when a first status of a class follows queued ends", function()
    -- 200, 200, then 201: the 201's first end is recorded at once (its status not seen before),
    -- into the 2xx series whose second end still waits in the queue; in the order they came, the
    -- sum is 0.1 + 0.2 + 0.4 (0.7000000000000001), not 0.1 + 0.4 + 0.2 (0.7)
    local hooks_mod = require "vertexops.hooks"
    local m = metrics.new()
    local rec = hooks_mod.RECORDERS[m:hooks().on_attempt]
    for _, e in ipairs { { 200, 0.1 }, { 200, 0.2 }, { 201, 0.4 } } do
      local status, d = e[1], e[2]
      if not rec.known_pair("cancel", status, d, d, 100, 100) then
        if not rec.known_attempt("cancel", status, nil, d, 100, 100) then rec.attempt("cancel", status, nil, d, 100, 100) end
        if not rec.known_call("cancel", status, nil, d) then rec.call("cancel", status, nil, d) end
      end
    end
    local doc = prom.parse(m:render())
    local want = { call = "cancel", status = "2xx", tag = "" }
    assert.are.equal(0.1 + 0.2 + 0.4, prom.value(doc, "vertexops_attempt_duration_seconds_sum", want))
    assert.are.equal(0.1 + 0.2 + 0.4, prom.value(doc, "vertexops_call_duration_seconds_sum", want))
    assert.are.equal(3, prom.value(doc, "vertexops_attempts_total", want))
  end)
end)
