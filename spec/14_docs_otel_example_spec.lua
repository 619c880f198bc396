-- examples/otel/vertexops_otel.lua against a recording stub of opentelemetry-lua's API (the
-- library is in no package registry here): tracer:start(ctx, name, {kind, attributes}) -> ctx, span;
-- span:set_attributes(attr...), span:set_status(code, msg), span:add_event(name, {attributes}),
-- span:context() -> {trace_id, span_id, trace_flags}, span:finish(); attribute.string/int/double/bool
-- make {key, value = {string_value|int_value|double_value|bool_value}}; span_kind and span_status
-- hold opentelemetry-lua's numbers.
local H = require "support.helper"

package.path = "./examples/otel/?.lua;" .. package.path

-- the stub ---------------------------------------------------------------------------------------
local KIND = { unspecified = 0, internal = 1, server = 2, client = 3, producer = 4, consumer = 5 }
local STATUS = { unset = 0, ok = 1, error = 2 }
local ATTR = {}
for kind, field in pairs { string = "string_value", int = "int_value", double = "double_value", bool = "bool_value" } do
  ATTR[kind] = function(key, value)
    assert(type(key) == "string", "an attribute key must be a string")
    return { key = key, value = { [field] = value } }
  end
end

local function recorder()
  local rec = { spans = {}, n = 0 }
  local Span = {}
  Span.__index = Span
  function Span:set_attributes(...)
    assert(not self.ended, "set_attributes after finish")
    for _, a in ipairs { ... } do self.attrs[a.key] = select(2, next(a.value)) end
  end
  function Span:set_status(code, message) self.status = { code = code, message = message } end
  function Span:add_event(name, opts)
    local attrs = {}
    for _, a in ipairs(opts and opts.attributes or {}) do attrs[a.key] = select(2, next(a.value)) end
    self.events[#self.events + 1] = { name = name, attrs = attrs }
  end
  function Span:context() return self.ctx end
  function Span:finish()
    assert(not self.ended, "a span finished twice: " .. self.name)
    self.ended = true
  end
  local root = { trace_id = ("ab"):rep(16), span_id = nil }
  function rec.context() return { span = nil, trace_id = root.trace_id } end
  rec.tracer = {}
  function rec.tracer.start(tracer, ctx, name, opts)
    assert(tracer == rec.tracer, "tracer:start called with . instead of :")
    assert(type(ctx) == "table", "tracer:start needs a parent context")
    rec.n = rec.n + 1
    local span = setmetatable({ name = name, kind = opts and opts.kind, attrs = {}, events = {},
      parent = ctx.span, ended = false,
      ctx = { trace_id = ctx.trace_id, span_id = ("%016x"):format(rec.n), trace_flags = 1 } }, Span)
    for _, a in ipairs(opts and opts.attributes or {}) do span.attrs[a.key] = select(2, next(a.value)) end
    rec.spans[#rec.spans + 1] = span
    return { span = span, trace_id = ctx.trace_id }, span
  end
  return rec
end

local function install()
  package.loaded["opentelemetry.attribute"] = ATTR
  package.loaded["opentelemetry.trace.span_kind"] = KIND
  package.loaded["opentelemetry.trace.span_status"] = STATUS
end
local function uninstall()
  package.loaded["opentelemetry.attribute"] = nil
  package.loaded["opentelemetry.trace.span_kind"] = nil
  package.loaded["opentelemetry.trace.span_status"] = nil
end

local URL = "https://us-central1-aiplatform.googleapis.com/v1beta1/" .. H.NAME .. "7:cancel"

-- the events of one call as the hooks pass them (docs/contract.md, Hooks): a 503, a retry, a 200
local function one_call(hooks, headers)
  headers = headers or {}
  hooks.on_call { phase = "start", call = "cancel", name = H.NAME .. "7", region = "us-central1", clock = 0 }
  hooks.on_token { phase = "start", source = "service_account" }
  hooks.on_token { phase = "end", source = "service_account", ok = true, duration = 0.1 }
  hooks.on_attempt { phase = "start", call = "cancel", method = "POST", url = URL, attempt = 1, headers = headers[1] or {} }
  hooks.on_attempt { phase = "end", call = "cancel", method = "POST", url = URL, attempt = 1, status = 503,
    tag = "HttpError", transport = "curl", timings = { total = 0.01 } }
  hooks.on_retry { call = "cancel", attempt = 1, delay = 1.5, reason = "http_503" }
  hooks.on_attempt { phase = "start", call = "cancel", method = "POST", url = URL, attempt = 2, headers = headers[2] or {} }
  hooks.on_attempt { phase = "end", call = "cancel", method = "POST", url = URL, attempt = 2, status = 200,
    transport = "curl", timings = { total = 0.01 } }
  hooks.on_call { phase = "end", call = "cancel", name = H.NAME .. "7", region = "us-central1", clock = 2,
    ok = true, status = 200, attempts = 2, duration = 2 }
end

describe("examples/otel/vertexops_otel.lua", function()
  local otel, rec, hooks
  before_each(function()
    install()
    package.loaded.vertexops_otel = nil
    otel = require "vertexops_otel"
    rec = recorder()
    hooks = otel.hooks { tracer = rec.tracer, context = rec.context }
  end)
  after_each(uninstall)

  it("makes a span per call (INTERNAL) and a child span per attempt (CLIENT), all finished", function()
    one_call(hooks)
    local names = {}
    for _, s in ipairs(rec.spans) do
      names[#names + 1] = s.name
      assert.is_true(s.ended, s.name .. " not finished")
    end
    assert.are.same({ "vertexops cancel", "vertexops token", "POST", "POST" }, names)
    local call = rec.spans[1]
    assert.are.equal(KIND.internal, call.kind)
    assert.is_nil(call.parent)
    for i = 2, 4 do assert.are.equal(call, rec.spans[i].parent) end
    assert.are.equal(KIND.client, rec.spans[3].kind)
    assert.are.equal(KIND.internal, rec.spans[2].kind)
  end)

  it("names the call's span attributes by the semantic conventions", function()
    one_call(hooks)
    assert.are.same({
      ["vertexops.call"] = "cancel", ["gcp.client.service"] = "aiplatform",
      ["vertexops.resource.name"] = H.NAME .. "7", ["cloud.region"] = "us-central1",
      ["vertexops.attempts"] = 2, ["http.response.status_code"] = 200,
    }, rec.spans[1].attrs)
    assert.is_nil(rec.spans[1].status)
  end)

  it("gives each attempt's span the HTTP client attributes; a 503 is error.type \"503\" with status ERROR", function()
    one_call(hooks)
    local first, second = rec.spans[3], rec.spans[4]
    assert.are.same({
      ["http.request.method"] = "POST", ["url.full"] = URL,
      ["server.address"] = "us-central1-aiplatform.googleapis.com", ["server.port"] = 443,
      ["http.response.status_code"] = 503, ["error.type"] = "503", ["vertexops.transport"] = "curl",
    }, first.attrs)
    assert.are.same({ code = STATUS.error, message = "503" }, first.status)
    assert.are.equal(1, second.attrs["http.request.resend_count"])
    assert.are.equal(200, second.attrs["http.response.status_code"])
    assert.is_nil(second.attrs["error.type"])
    assert.is_nil(second.status)
  end)

  it("records a retry as an event of the call's span", function()
    one_call(hooks)
    assert.are.same({ { name = "vertexops.retry", attrs = {
      ["vertexops.retry.reason"] = "http_503", ["vertexops.retry.delay"] = 1.5, ["vertexops.attempt"] = 1 } } },
      rec.spans[1].events)
  end)

  it("sends each attempt's traceparent: the trace's id and the attempt span's own id", function()
    local headers = { {}, {} }
    one_call(hooks, headers)
    assert.are.equal("00-" .. ("ab"):rep(16) .. "-" .. rec.spans[3].ctx.span_id .. "-01", headers[1].traceparent)
    assert.are.equal("00-" .. ("ab"):rep(16) .. "-" .. rec.spans[4].ctx.span_id .. "-01", headers[2].traceparent)
  end)

  it("adds no header with propagate = false", function()
    hooks = otel.hooks { tracer = rec.tracer, context = rec.context, propagate = false }
    local headers = { {}, {} }
    one_call(hooks, headers)
    assert.is_nil(next(headers[1]))
  end)

  it("marks a failed call ERROR with its tag as error.type; a transport failure's attempt too", function()
    hooks.on_call { phase = "start", call = "get", name = H.NAME .. "8", region = "us-central1", clock = 0 }
    local url = "https://localhost:8443/v1beta1/x"
    hooks.on_attempt { phase = "start", call = "get", method = "GET", url = url, attempt = 1, headers = {} }
    hooks.on_attempt { phase = "end", call = "get", method = "GET", url = url, attempt = 1,
      tag = "ConnectionFailedError", transport = "cosocket", timings = {} }
    hooks.on_call { phase = "end", call = "get", ok = false, tag = "ConnectionFailedError", attempts = 1, duration = 1 }
    local call, attempt = rec.spans[1], rec.spans[2]
    assert.are.equal("ConnectionFailedError", call.attrs["error.type"])
    assert.are.same({ code = STATUS.error, message = "ConnectionFailedError" }, call.status)
    assert.are.equal("ConnectionFailedError", attempt.attrs["error.type"])
    assert.are.equal(8443, attempt.attrs["server.port"])
    assert.are.equal("localhost", attempt.attrs["server.address"])
    assert.is_nil(attempt.attrs["http.response.status_code"])
  end)

  it("marks a failed token fetch ERROR", function()
    hooks.on_call { phase = "start", call = "get", clock = 0 }
    hooks.on_token { phase = "start", source = "metadata" }
    hooks.on_token { phase = "end", source = "metadata", ok = false, tag = "AuthError", duration = 1 }
    hooks.on_call { phase = "end", call = "get", ok = false, tag = "AuthError", attempts = 0, duration = 1 }
    assert.are.equal("metadata", rec.spans[2].attrs["vertexops.credential.type"])
    assert.are.equal("AuthError", rec.spans[2].attrs["error.type"])
    assert.are.equal(STATUS.error, rec.spans[2].status.code)
  end)

  it("records a wait's rounds as events", function()
    hooks.on_call { phase = "start", call = "wait", name = H.NAME .. "9", clock = 0 }
    hooks.on_poll { call = "wait", name = H.NAME .. "9", round = 1, done = false, delay = 1 }
    hooks.on_poll { call = "wait", name = H.NAME .. "9", round = 2, done = true }
    hooks.on_call { phase = "end", call = "wait", ok = true, status = 200, attempts = 2, duration = 1 }
    assert.are.same({ "vertexops.poll", "vertexops.poll" }, { rec.spans[1].events[1].name, rec.spans[1].events[2].name })
    assert.is_true(rec.spans[1].events[2].attrs["vertexops.poll.done"])
  end)

  it("keeps the calls of two coroutines apart, interleaved", function()
    local a = coroutine.wrap(function() one_call(setmetatable({}, { __index = function(_, k)
      return function(info) hooks[k](info); coroutine.yield() end end })) end)
    local b = coroutine.wrap(function() one_call(setmetatable({}, { __index = function(_, k)
      return function(info) hooks[k](info); coroutine.yield() end end })) end)
    for _ = 1, 9 do a(); b() end
    assert.are.equal(8, #rec.spans)
    local calls = {}
    for _, s in ipairs(rec.spans) do
      assert.is_true(s.ended, s.name)
      if s.name == "vertexops cancel" then calls[#calls + 1] = s end
    end
    assert.are.equal(2, #calls)
    for _, s in ipairs(rec.spans) do
      if s.parent then
        local n = 0
        for _, x in ipairs(rec.spans) do if x.parent == s.parent then n = n + 1 end end
        assert.are.equal(3, n, "each call span has its token span and two attempts")
      end
    end
  end)

  it("takes the call's parent from opentelemetry.context's current() by default", function()
    local current = { span = "incoming", trace_id = ("cd"):rep(16) }
    package.loaded["opentelemetry.context"] = { current = function() return current end }
    local ok, err = pcall(function()
      otel.hooks { tracer = rec.tracer }.on_call { phase = "start", call = "get", clock = 0 }
    end)
    package.loaded["opentelemetry.context"] = nil
    assert(ok, err)
    assert.are.equal("incoming", rec.spans[1].parent)
  end)

  it("finds server.address and server.port in URLs by name, IPv4, [IPv6], with and without a port", function()
    assert.are.same({ "h.example", 443 }, { otel._server_of("https://h.example/v1") })
    assert.are.same({ "127.0.0.1", 8080 }, { otel._server_of("http://127.0.0.1:8080/x") })
    assert.are.same({ "::1", 9443 }, { otel._server_of("https://[::1]:9443/x") })
    assert.are.same({ "::1", 443 }, { otel._server_of("https://[::1]/x") })
  end)
end)

-- End to end: the adapter as a client's hooks against the fake: the spans match the fake's log.
describe("examples/otel/vertexops_otel.lua with a client", function()
  local fake = H.fake_server()
  local has_hooks = pcall(require("vertexops").client, { hooks = {} })
  local otel, rec
  before_each(function()
    install()
    package.loaded.vertexops_otel = nil
    otel = require "vertexops_otel"
    rec = recorder()
  end)
  after_each(uninstall)

  it("makes one attempt span per request the fake logged, each sent with its own traceparent", function()
    if not has_hooks then return pending("the hooks option (issue 19 §1) is not in this tree yet") end
    local server = fake.server
    local t = H.virtual_time(server)
    local client = require("vertexops").client(H.timed_opts(server, t,
      { hooks = otel.hooks { tracer = rec.tracer, context = rec.context } }))
    local op = server:create {}
    server:fault { match = "cancel", status = 503, times = 2 }
    local ok, err = pcall(client.cancel, client, op.name)
    client:close()
    assert(ok, err)
    local log = server:log("cancel")
    assert.are.equal(3, #log)
    local attempts = {}
    for _, s in ipairs(rec.spans) do
      assert.is_true(s.ended, s.name)
      if s.kind == KIND.client then attempts[#attempts + 1] = s end
    end
    assert.are.equal(3, #attempts)
    for i, s in ipairs(attempts) do
      assert.are.equal("00-" .. ("ab"):rep(16) .. "-" .. s.ctx.span_id .. "-01", log[i].headers.traceparent)
      assert.are.equal(i < 3 and 503 or 200, s.attrs["http.response.status_code"])
      assert.are.equal(rec.spans[1], s.parent)
    end
    assert.are.equal("vertexops cancel", rec.spans[1].name)
    assert.are.equal(3, rec.spans[1].attrs["vertexops.attempts"])
    assert.are.equal(2, #rec.spans[1].events)
  end)
end)
