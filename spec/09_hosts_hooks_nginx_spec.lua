-- make test: once
-- Hooks, trace context and log lines inside nginx (examples/openresty/, spec/support/openresty.lua):
-- on_attempt over cosockets (timings measured on nginx's clock) and worker threads, on_retry with
-- the fault injected, the example carrying the incoming traceparent through to every request, and
-- VERTEXOPS_LOG's lines in nginx's error log, redacted.
-- Contract: docs/contract.md, "Hooks, trace context and logs" and "Hosts".
local http = require "socket.http"
local ltn12 = require "ltn12"
local H = require "support.helper"
local openresty = require "support.openresty"

local TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

-- A scenario's hooks recording {event, info} into a list the scenario returns as `events`.
local RECORD = [[
  local events = {}
  local function on(ev) return function(i)
    local c = {}
    for k, v in pairs(i) do if k ~= "headers" then c[k] = v end end
    c.event = ev
    events[#events + 1] = c
  end end
  local hooks = { on_call = on("on_call"), on_attempt = on("on_attempt"), on_retry = on("on_retry") }
]]

local function of(events, ev, phase)
  local out = {}
  for _, e in ipairs(events) do
    if e.event == ev and (phase == nil or e.phase == phase) then out[#out + 1] = e end
  end
  return out
end

describe("hooks in nginx", function()
  local fake = H.fake_server()
  local server, app

  setup(function() app = openresty.start(fake.server) end)
  teardown(function() app:stop() end)
  before_each(function() server = fake.server end)

  it("fire on_attempt over cosockets with the status, sizes and timings nginx measured", function()
    local op = server:create {}
    local res = app:result(RECORD .. [[
      vertexops.get(args.name, nil, T.opts { hooks = hooks })
      return events]], { name = op.name })
    local ends = of(res, "on_attempt", "end")
    assert.are.equal(#server:log("get"), #ends)
    local e = ends[1]
    assert.are.same({ "cosocket", 200, "GET", 1 }, { e.transport, e.status, e.method, e.attempt })
    assert.is_true(e.bytes_sent > 0 and e.bytes_received > 0)
    for _, k in ipairs { "connect", "first_byte", "total" } do assert.are.equal("number", type(e.timings[k]), k) end
    assert.is_true(e.timings.first_byte <= e.timings.total)
    local calls = of(res, "on_call")
    assert.are.same({ "start", "end" }, { calls[1].phase, calls[2].phase })
    assert.are.equal(1, calls[2].attempts)
  end)

  it("fire on_retry over cosockets with the reason of the fault injected, one attempt per logged request", function()
    local op = server:create {}
    server:fault { match = "cancel", status = 503 }
    server:fault { match = "cancel", status = 429 }
    local res = app:result(RECORD .. [[
      local sleep = T.recorder()
      vertexops.cancel(args.name, nil, T.opts { hooks = hooks, sleep = sleep })
      return events]], { name = op.name })
    assert.are.equal(#server:log("cancel"), #of(res, "on_attempt", "start"))
    local retries = of(res, "on_retry")
    assert.are.same({ "http_503", "http_429" }, { retries[1].reason, retries[2].reason })
    assert.are.same({ 1, 2 }, { retries[1].attempt, retries[2].attempt })
  end)

  it("fire on_attempt over a worker thread (transport thread) with libcurl's measures from the thread", function()
    local op = server:create {}
    local res = app:result(RECORD .. [[
      vertexops.cancel(args.name, nil, T.opts { hooks = hooks, transport = "thread", ca_file = args.ca_file })
      return events]], { name = op.name, ca_file = server.ca_file })
    local ends = of(res, "on_attempt", "end")
    assert.are.equal(#server:log("cancel"), #ends)
    assert.are.same({ "thread", 200, "number", "number" }, { ends[1].transport, ends[1].status,
      type(ends[1].timings.total), type(ends[1].timings.first_byte) })
    assert.is_true(ends[1].bytes_received > 0)
  end)

  it("send the traceparent option and hook-added headers over cosockets; a raising hook does not fail the call", function()
    local op = server:create {}
    local res = app:result([[
      local c = vertexops.client(T.opts { traceparent = args.tp, hooks = { on_attempt = function(i)
        if i.phase == "start" then i.headers["x-request-id"] = "r1" end
        error("broken")
      end } })
      c:cancel(args.name)
      return c:stats()]], { name = op.name, tp = TP })
    assert.are.equal(2, res.hook_errors)
    local h = server:log("cancel")[1].headers
    assert.are.same({ TP, "r1" }, { h.traceparent, h["x-request-id"] })
  end)

  it("carries the incoming traceparent of the example's /cancel through to every request it makes", function()
    local op = server:create { done_after = 0 }
    local out = {}
    local _, code = http.request { url = app:url("/cancel?name=" .. op.name), sink = ltn12.sink.table(out),
      headers = { traceparent = TP, tracestate = "gw=1" } }
    assert.are.equal(200, code, table.concat(out))
    local log = server:log()
    assert.is_true(#log >= 2)
    for _, e in ipairs(log) do
      assert.are.same({ TP, "gw=1" }, { e.headers.traceparent, e.headers.tracestate }, e.call)
    end
    -- a malformed one is dropped, not a failure
    server:reset_log()
    local op2 = server:create { done_after = 0 }
    _, code = http.request { url = app:url("/cancel?name=" .. op2.name), sink = ltn12.sink.table({}),
      headers = { traceparent = "not-a-traceparent" } }
    assert.are.equal(200, code)
    assert.is_nil(server:log()[1].headers.traceparent)
  end)
end)

describe("VERTEXOPS_LOG in nginx", function()
  local fake = H.fake_server()
  local server, app

  setup(function()
    app = openresty.start(fake.server, { env = { VERTEXOPS_LOG = "info" },
      conf = { { "env VERTEXOPS_CA_FILE;", "env VERTEXOPS_CA_FILE;\nenv VERTEXOPS_LOG;" } } })
  end)
  teardown(function() app:stop() end)
  before_each(function() server = fake.server end)

  it("writes a failed attempt's logfmt line to nginx's error log (ngx.log, warn), with no secret", function()
    local op = server:create {}
    server:fault { match = "get", status = 503 }
    local doc = app:run([[return vertexops.get(args.name, nil, T.opts { retry = false })]], { name = op.name })
    assert.is_false(doc.ok)
    assert.are.equal(1, #server:log("get"))
    local log = app:error_log()
    local line = log:match("[^\n]*vertexops attempt call=get[^\n]*")
    assert.is_truthy(line, log)
    assert.is_truthy(line:find("[warn]", 1, true), line)
    assert.is_truthy(line:find(" status=503 tag=HttpError ms=%d+ transport=cosocket"), line)
    assert.is_nil(log:find("test-token", 1, true))
  end)
end)
