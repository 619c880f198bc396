-- OpenTelemetry spans for vertexops calls, written against opentelemetry-lua's tracer API
-- (https://github.com/yangxikun/opentelemetry-lua; not in LuaRocks: vendor it or install it from
-- its repository). Copy this file next to your code; it only uses vertexops' `hooks` option.
--
--   local vertexops_otel = require "vertexops_otel"
--   local tracer = tracer_provider:tracer("vertexops")
--   local client = vertexops.client { hooks = vertexops_otel.hooks { tracer = tracer } }
--
-- What it makes (OpenTelemetry semantic conventions: HTTP client spans, stable; gcp.*, cloud.*):
--   * one span per call (cancel, get, delete, wait, a list page, ...), kind INTERNAL, named
--     "vertexops <call>": vertexops.call, vertexops.resource.name (the operation or job name, or a
--     listing's parent), cloud.region, gcp.client.service = "aiplatform"; at its end
--     vertexops.attempts, http.response.status_code (the last answer's), and on failure error.type
--     (the error's tag) with status ERROR;
--   * a child span per HTTP attempt, kind CLIENT, named by its method ("POST"): http.request.method,
--     url.full (as the hooks give it: an API key shows as key=REDACTED), server.address,
--     server.port, http.request.resend_count (attempt 2 and later), then
--     http.response.status_code, error.type (the status code as a string for 4xx/5xx, the
--     transport's tag when no answer came) with status ERROR, vertexops.transport;
--     the attempt's W3C `traceparent` is sent with it (propagate = false: not);
--   * a child span "vertexops token" (INTERNAL) per access-token fetch: vertexops.credential.type;
--   * events on the call's span: "vertexops.retry" (vertexops.retry.reason, vertexops.retry.delay,
--     vertexops.attempt) and, for waits, "vertexops.poll" (vertexops.poll.round, vertexops.poll.done).
--
-- hooks{tracer = t, context = f?, propagate = true?, attribute = m?, span_kind = m?, span_status = m?}
--   tracer       a tracer (tracer_provider:tracer(name)): tracer:start(ctx, name, {kind, attributes})
--                returning ctx, span
--   context      function() -> the parent context of a call's span (default: opentelemetry.context's
--                current(), e.g. the one your access_by_lua attached after extracting the incoming
--                traceparent)
--   attribute, span_kind, span_status: the modules (default: require "opentelemetry.attribute",
--                "opentelemetry.trace.span_kind", "opentelemetry.trace.span_status")
--
-- Spans are matched to their events per coroutine (each nginx request and light thread, each
-- client:start() request, has its own): a call's events come in order within its coroutine.
-- cancel_many and cancel_all run their requests in coroutines of their own (light threads inside
-- nginx): those attempts' spans are children of `context()` there, not of the bulk call's span.
local M = {}

local coroutine_running, setmetatable, tostring, type = coroutine.running, setmetatable, tostring, type
local unpack = table.unpack or unpack -- luacheck: ignore 143
local MAIN = {} -- the key of the main coroutine when coroutine.running() gives nil (Lua 5.1, LuaJIT)

-- server.address and server.port of a URL (scheme://host[:port]/...)
local function server_of(url)
  local scheme, authority = url:match("^(%a[%w+.-]*)://([^/?#]*)")
  if not authority then return nil end
  local host, port = authority:match("^%[([^%]]+)%]:?(%d*)$") -- [IPv6]
  if not host then host, port = authority:match("^([^:]*):?(%d*)$") end
  port = tonumber(port) or (scheme == "https" and 443 or scheme == "http" and 80 or nil)
  return host, port
end
M._server_of = server_of

--- hooks{tracer = t, ...} -> a table for vertexops' `hooks` option.
function M.hooks(opts)
  assert(type(opts) == "table" and opts.tracer, "vertexops_otel.hooks: opts.tracer (a tracer) is required")
  local tracer = opts.tracer
  local attr = opts.attribute or require "opentelemetry.attribute"
  local kind = opts.span_kind or require "opentelemetry.trace.span_kind"
  local status = opts.span_status or require "opentelemetry.trace.span_status"
  local parent_context = opts.context or function()
    return require("opentelemetry.context").current()
  end
  local propagate = opts.propagate ~= false

  local stacks = setmetatable({}, { __mode = "k" }) -- coroutine -> {frame, ...}
  local function stack()
    local co = coroutine_running() or MAIN
    local s = stacks[co]
    if not s then s = {}; stacks[co] = s end
    return s, co
  end
  -- the innermost open frame of a kind ("call", "attempt", "token"), closing any opened after it
  -- that never ended (a frame is never left open: a span is finished once)
  local function pop(s, co, what)
    for i = #s, 1, -1 do
      local f = s[i]
      if f.what == what then
        for j = #s, i + 1, -1 do
          s[j].span:finish()
          s[j] = nil
        end
        s[i] = nil
        if #s == 0 then stacks[co] = nil end
        return f
      end
    end
    return nil
  end
  local function innermost(s, what)
    for i = #s, 1, -1 do
      if s[i].what == what then return s[i] end
    end
    return nil
  end
  local function parent(s)
    local top = s[#s]
    if top then return top.ctx end
    return parent_context()
  end

  local hooks = {}

  function hooks.on_call(info)
    local s, co = stack()
    if info.phase == "start" then
      local a = { attr.string("vertexops.call", info.call), attr.string("gcp.client.service", "aiplatform") }
      if info.name then a[#a + 1] = attr.string("vertexops.resource.name", info.name) end
      if info.region then a[#a + 1] = attr.string("cloud.region", info.region) end
      local ctx, span = tracer:start(parent(s), "vertexops " .. tostring(info.call), {
        kind = kind.internal, attributes = a })
      s[#s + 1] = { what = "call", ctx = ctx, span = span }
      return
    end
    local f = pop(s, co, "call")
    if not f then return end
    local a = { attr.int("vertexops.attempts", info.attempts or 0) }
    if info.status then a[#a + 1] = attr.int("http.response.status_code", info.status) end
    if not info.ok then a[#a + 1] = attr.string("error.type", info.tag or "_OTHER") end
    f.span:set_attributes(unpack(a))
    if not info.ok then f.span:set_status(status.error, info.tag or "error") end
    f.span:finish()
  end

  function hooks.on_attempt(info)
    local s, co = stack()
    if info.phase == "start" then
      local url = info.url or ""
      local host, port = server_of(url)
      local a = { attr.string("http.request.method", info.method or "_OTHER"), attr.string("url.full", url) }
      if host then a[#a + 1] = attr.string("server.address", host) end
      if port then a[#a + 1] = attr.int("server.port", port) end
      if info.attempt and info.attempt > 1 then a[#a + 1] = attr.int("http.request.resend_count", info.attempt - 1) end
      local ctx, span = tracer:start(parent(s), info.method or "HTTP", { kind = kind.client, attributes = a })
      s[#s + 1] = { what = "attempt", ctx = ctx, span = span }
      if propagate and info.headers then
        local sc = span:context()
        if sc and sc.trace_id and sc.span_id then
          info.headers.traceparent = ("00-%s-%s-%02x"):format(sc.trace_id, sc.span_id, sc.trace_flags or 1)
        end
      end
      return
    end
    local f = pop(s, co, "attempt")
    if not f then return end
    local a = {}
    local code = info.status
    if code then a[#a + 1] = attr.int("http.response.status_code", code) end
    local err
    if code and code >= 400 then err = tostring(code)
    elseif info.tag then err = info.tag end
    if err then a[#a + 1] = attr.string("error.type", err) end
    if info.transport then a[#a + 1] = attr.string("vertexops.transport", info.transport) end
    if #a > 0 then f.span:set_attributes(unpack(a)) end
    if err then f.span:set_status(status.error, err) end
    f.span:finish()
  end

  function hooks.on_retry(info)
    local f = innermost((stack()), "call")
    if f and f.span.add_event then
      f.span:add_event("vertexops.retry", { attributes = {
        attr.string("vertexops.retry.reason", tostring(info.reason)),
        attr.double("vertexops.retry.delay", info.delay or 0),
        attr.int("vertexops.attempt", info.attempt or 0) } })
    end
  end

  function hooks.on_poll(info)
    local f = innermost((stack()), "call")
    if f and f.span.add_event then
      f.span:add_event("vertexops.poll", { attributes = {
        attr.int("vertexops.poll.round", info.round or 0), attr.bool("vertexops.poll.done", info.done and true or false) } })
    end
  end

  function hooks.on_token(info)
    local s, co = stack()
    if info.phase == "start" then
      local ctx, span = tracer:start(parent(s), "vertexops token", { kind = kind.internal,
        attributes = { attr.string("vertexops.credential.type", tostring(info.source)) } })
      s[#s + 1] = { what = "token", ctx = ctx, span = span }
      return
    end
    local f = pop(s, co, "token")
    if not f then return end
    if not info.ok then
      f.span:set_attributes(attr.string("error.type", info.tag or "_OTHER"))
      f.span:set_status(status.error, info.tag or "error")
    end
    f.span:finish()
  end

  return hooks
end

return M
