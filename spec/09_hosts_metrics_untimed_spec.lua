-- make test: once
-- An attempt is in attempt_duration_seconds only when its transport measured it (docs/contract.md,
-- "Metrics": an attempt whose transport measured no time counts in attempts_total only). With
-- metrics:hooks() as a client's only hooks, a cosocket exchange's time is read on the hooks' own
-- clock (lua/vertexops/hooks.lua REC_METHODS, meter.own_total: no nginx time update per exchange);
-- an attempt no transport measured -- here a worker thread that could not run, there being no such
-- thread pool -- must stay untimed, as on the hooks' general path (a trace context beside the
-- metrics). Witness: the render of the metrics inside a real nginx against the fake.
local H = require "support.helper"
local openresty = require "support.openresty"
local prom = require "support.prometheus"

local TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

describe("metrics:hooks() inside nginx: which attempts are timed", function()
  local fake = H.fake_server()
  local server, app
  setup(function() app = openresty.start(fake.server) end)
  teardown(function() app:stop() end)
  before_each(function() server = fake.server end)

  -- One cancel with options extra (Lua source) and the recorder's render, parsed.
  local function render_after(extra)
    local op = server:create {}
    local text = app:result([[
      local m = require("vertexops.metrics").new()
      pcall(vertexops.cancel, args.name, nil, T.opts { hooks = m:hooks(), retry = false, ]] .. extra .. [[ })
      return m:render()]], { name = op.name })
    return prom.parse(assert(text))
  end

  local THREADLESS = 'transport = "thread", thread_pool = "no_such_pool",'

  it("counts an attempt of a worker thread that could not run, untimed (metrics alone)", function()
    local doc = render_after(THREADLESS)
    assert.are.equal(1, prom.value(doc, "vertexops_attempts_total"))
    assert.are.equal(0, prom.value(doc, "vertexops_attempt_duration_seconds_count"))
    assert.are.equal(0, server:stats().requests) -- (nothing reached the fake)
  end)

  it("counts it the same on the general path (a trace context beside the metrics)", function()
    local doc = render_after(THREADLESS .. ' traceparent = "' .. TRACEPARENT .. '",')
    assert.are.equal(1, prom.value(doc, "vertexops_attempts_total"))
    assert.are.equal(0, prom.value(doc, "vertexops_attempt_duration_seconds_count"))
  end)

  it("times a cosocket exchange on the hooks' clock (metrics alone)", function()
    local doc = render_after("")
    assert.are.equal(1, prom.value(doc, "vertexops_attempts_total", { status = "2xx" }))
    assert.are.equal(1, prom.value(doc, "vertexops_attempt_duration_seconds_count", { status = "2xx" }))
    local sum = prom.value(doc, "vertexops_attempt_duration_seconds_sum", { status = "2xx" })
    assert.is_true(sum > 0 and sum < 60, tostring(sum))
  end)
end)
