-- vertexops.hooks: what a call shows of itself (docs/contract.md, "Hooks, trace context and logs"):
-- the `hooks` option's functions (on_call, on_attempt, on_retry, on_token, on_poll), the W3C trace
-- context options (traceparent, tracestate: request headers of every attempt) and the per-attempt
-- log lines (the `log` option, VERTEXOPS_LOG; lua/vertexops/log.lua).
--
-- observe(client, o) -> an observer, or nil when o has no hooks, no log and no trace context: every
-- event's site costs one nil check then. The observer is made once per options table (a client's
-- own options are one table for all its calls without options). A hook never fails the call: its
-- error is caught, counted in client:stats().hook_errors, and logged once per hook function (warn).
-- No secret reaches a hook: no Authorization or x-goog-api-key header, `key=` in a URL shown as
-- key=REDACTED, never a token.
local deadlines = require "vertexops.deadline"
local log = require "vertexops.log"
local raise = require("vertexops.errors").raise

local ipairs, next, pcall, rawget, setmetatable, tostring, type = ipairs, next, pcall, rawget, setmetatable,
  tostring, type
local string_format, string_lower = string.format, string.lower

local M = {}

M.EVENTS = { "on_call", "on_attempt", "on_retry", "on_token", "on_poll" }

-- A call's hooks run after its client's: options.merge makes one table of both (chain), whose
-- functions are known here (chains[t] = the list of hook tables, in order).
local chains = setmetatable({}, { __mode = "k" })

--- chain(a, b) -> a hooks table that runs a's functions, then b's (either may itself be a chain).
---@param a? table
---@param b? table
---@return table?
function M.chain(a, b)
  if not a then return b end
  if not b then return a end
  local list = {}
  for _, t in ipairs { a, b } do
    local inner = chains[t]
    if inner then
      for _, x in ipairs(inner) do list[#list + 1] = x end
    else
      list[#list + 1] = t
    end
  end
  local t = {}
  for _, ev in ipairs(M.EVENTS) do
    for _, h in ipairs(list) do
      if h[ev] then t[ev] = h[ev] end -- (only for the schema's check: the list is what runs)
    end
  end
  chains[t] = list
  return t
end

-- Headers a hook may not add: what carries a credential or the framing, and Google's own.
local FORBIDDEN = { authorization = true, host = true, ["content-length"] = true, ["transfer-encoding"] = true,
                    connection = true, ["proxy-authorization"] = true, cookie = true }

--- check_header(name, value): raises ValueError for a header hooks may not add (Authorization, Host,
--- Content-Length, x-goog-*, ...), a name that is no HTTP token, or a value with a control byte.
function M.check_header(name, value)
  if type(name) ~= "string" or not name:find("^[!#$%%&'*+%-.^_`|~%w]+$") then
    raise("ValueError", "a hook added a request header whose name is not an HTTP token: " .. tostring(name):sub(1, 64))
  end
  local lname = string_lower(name)
  if FORBIDDEN[lname] or lname:find("^x%-goog%-") then
    raise("ValueError", string_format("a hook may not add the request header '%s' (Authorization, Host, "
      .. "Content-Length and x-goog-* are vertexops' own)", name))
  end
  if type(value) ~= "string" or #value > 8192 or value:find("[%c\127]") then
    raise("ValueError", string_format("a hook added request header '%s' with a value that is not a string of "
      .. "at most 8192 bytes without control characters", name))
  end
  if lname == "traceparent" then
    local ok, err = pcall(require("vertexops.core").check_options, { traceparent = value })
    if not ok then raise("ValueError", "a hook added a traceparent that is not W3C's: " .. tostring(err.message or err)) end
  end
end

--- valid_traceparent(s) -> whether s is a traceparent the option takes (W3C's format): inside
--- nginx, an incoming header is checked with it before it is passed on.
function M.valid_traceparent(s)
  return type(s) == "string" and (pcall(require("vertexops.core").check_options, { traceparent = s }))
end

--- valid_tracestate(s) -> whether s is a tracestate the option takes (at most 512 bytes of printable ASCII).
function M.valid_tracestate(s)
  return type(s) == "string" and (pcall(require("vertexops.core").check_options, { tracestate = s }))
end

-- A URL as hooks and logs see it: an API key in the query shown as key=REDACTED.
local function redact_url(url)
  -- (most URLs have no query: a plain search first, the pattern only when there is one)
  if not url:find("?", 1, true) or not url:find("[?&][Kk][Ee][Yy]=") then return url end
  return (url:gsub("([?&][Kk][Ee][Yy]=)[^&#]*", "%1REDACTED"))
end
M.redact_url = redact_url

-- on_attempt functions that want the request's header lines (redacted) and the answer's headers
-- (request_headers, response_headers): the CLI's --log-http (internal; a copy of each request).
M.WANT_HEADERS = setmetatable({}, { __mode = "k" })

-- on_call, on_attempt and on_token functions that return at once on phase "start" and keep nothing
-- of an info table once they return, never yielding (vertexops.metrics' own; internal): no start
-- event is made for them, and when an event has no other function its ends reuse one info table
-- (each table made per event cost more than the rest of a pooled exchange's hooks).
M.END_ONLY = setmetatable({}, { __mode = "k" })

-- The on_attempt functions of vertexops.metrics recorders' hooks (m:hooks()), each to its recorder
-- (a client keeps a copy of its hooks table: the functions tell it): rec.call(call,
-- status, tag, duration) and rec.attempt(call, status, tag, total, bytes_sent, bytes_received), what
-- its on_call and on_attempt do with an end's info, taking the numbers themselves (internal). When
-- such a table is a client's only hooks, its ends are recorded with no info table and no dispatch
-- loop (one pcall each: an error is still caught and counted), and an attempt reads no clock of its
-- own (the transport's meter measures it): the hooks' cost per request inside nginx, issue 19 §4.
M.RECORDERS = setmetatable({}, { __mode = "k" })

-- info.headers of an attempt's start: a proxy whose writes are checked (check_header) into the
-- attempt's table of added headers (the proxy's own slot ADDED); one metatable for all.
local ADDED = setmetatable({}, { __tostring = function() return "(vertexops: the headers added)" end })
local HEADERS_MT = {
  __index = function(p, k) return rawget(p, ADDED)[k] end,
  __newindex = function(p, k, v)
    M.check_header(k, v)
    rawget(p, ADDED)[k] = v
  end,
  __pairs = function(p) return next, rawget(p, ADDED), nil end,
}

-- The observers' clock when the options give none: core.clock's clock, read through LuaJIT's FFI
-- where it can be (deadline.fast_clock(): a C function called through the Lua API ends a LuaJIT
-- trace, and a call's end reads the clock before the recorder; issue 19 §4). FFI_C, FFI_TS, FFI_W:
-- what the metrics observer's methods (below) read it with, written out; nil where FFI is not there.
local FFI_C, FFI_TS, FFI_W, ffi_clock
local function default_clock()
  local clock, parts = deadlines.fast_clock()
  if parts and not ffi_clock then FFI_C, FFI_TS, FFI_W, ffi_clock = parts.C, parts.ts, parts.w, clock end
  return clock
end

M._default_clock = default_clock

local Observer = {}
Observer.__index = Observer

local observers = setmetatable({}, { __mode = "k" })

-- The methods of an observer whose only watcher is a metrics recorder (below).
local REC_METHODS = {}

local WEAK_VALUE = { __mode = "v" }

-- The client's record of hook errors (client:stats(): hook_errors, last_hook_error); nil once the
-- client is gone.
local function record(self)
  local client = self.client_ref[1]
  if not client then return nil end
  local rec = client.hook_errors
  if not rec then
    rec = { count = 0, logged = setmetatable({}, { __mode = "k" }) }
    client.hook_errors = rec
  end
  return rec
end

--- observe(client, o) -> the observer of options o (nil when there is nothing to observe).
---@param client vertexops.Client
---@param o vertexops.Options
function M.observe(client, o)
  local ob = observers[o]
  if ob == nil then
    local hooks, sink, level = o.hooks, log.sink(o)
    if hooks or sink or o.traceparent or o.tracestate then
      local list = hooks and (chains[hooks] or { hooks }) or nil
      local want = false
      for _, h in ipairs(list or {}) do want = want or (h.on_attempt and M.WANT_HEADERS[h.on_attempt]) or false end
      -- (the observer holds neither o nor the client strongly: observers is weak-keyed by o, and on
      -- LuaJIT and Lua 5.1 a value that reaches its own key keeps the entry, and o, forever)
      -- starts[event]: whether a function of the list wants that event's phase "start"; scratch[event]:
      -- the one info table of its ends when every function of it is END_ONLY
      local starts, scratch = {}, {}
      for _, ev in ipairs { "on_call", "on_attempt", "on_token" } do
        local any, own = false, true
        for _, h in ipairs(list or {}) do
          if h[ev] then
            any = true
            if not M.END_ONLY[h[ev]] then starts[ev], own = true, false end
          end
        end
        if any and own then scratch[ev] = { phase = "end", timings = ev == "on_attempt" and {} or nil } end
      end
      -- rec: the recorder of a metrics hooks table that is the only one (its functions unchanged)
      local only = list and #list == 1 and list[1] or nil
      local rec = only and only.on_attempt and M.RECORDERS[only.on_attempt] or nil
      if rec and only.on_call ~= rec.fns.on_call then rec = nil end
      ob = setmetatable({ client_ref = setmetatable({ client }, WEAK_VALUE), traceparent = o.traceparent,
                          tracestate = o.tracestate, list = list, sink = sink, level = level, want = want,
                          starts = starts, scratch = scratch, clock = o.clock or default_clock(),
                          rec = rec, untimed = rec and not sink or false,
                          plain = not (starts.on_attempt or want or o.traceparent or o.tracestate) }, Observer)
      -- metrics alone (no log, no trace context, no hook wanting headers): their own methods
      if ob.rec and ob.untimed and ob.plain then
        for k, f in next, REC_METHODS do ob[k] = f end
        ob.ffi = ob.clock == ffi_clock and FFI_TS ~= nil
      end
    else
      ob = false
    end
    observers[o] = ob
  end
  return ob or nil
end

-- The client's record of hook errors (client:stats(): hook_errors, last_hook_error).
local function failed(self, event, fn, err)
  local rec = record(self)
  if not rec then return end
  rec.count = rec.count + 1
  local msg = type(err) == "table" and tostring(err.message or err) or tostring(err)
  rec.last = string_format("%s: %s", event, msg)
  if not rec.logged[fn] then -- once per hook function
    rec.logged[fn] = true
    self:log("warn", "hook_error", { "hook", event, "error", msg })
  end
end

-- Runs event's functions with info (each under pcall; the chain's order).
local function fire(self, event, info)
  local list = self.list
  if not list then return end
  for i = 1, #list do
    local fn = list[i][event]
    if fn then
      local ok, err = pcall(fn, info)
      if not ok then failed(self, event, fn, err) end
    end
  end
end
Observer.fire = fire

-- fire for a phase "start": the functions marked END_ONLY are skipped.
local function fire_start(self, event, info)
  local list, end_only = self.list, M.END_ONLY
  for i = 1, #list do
    local fn = list[i][event]
    if fn and not end_only[fn] then
      local ok, err = pcall(fn, info)
      if not ok then failed(self, event, fn, err) end
    end
  end
end

--- ob:log(level, event, kv): one logfmt line when the sink takes that level. A log function that
--- raises does not fail the call either (counted as a hook error of event "log", never logged).
function Observer:log(level, event, kv)
  local sink = self.sink
  if sink and log.enabled(self.level, level) then
    local ok, err = pcall(sink, level, log.line(event, kv))
    if not ok and event ~= "hook_error" then
      local rec = record(self)
      if rec then
        rec.count = rec.count + 1
        rec.last = "log: " .. tostring(type(err) == "table" and err.message or err)
      end
    end
  end
end

-- Spare records of calls and attempts: a record goes back at its end (no hook ever sees one), so a
-- call with hooks makes no garbage of its own once a few are in use; at most SPARE kept of each.
-- As many as the calls in flight at once: inside nginx at 1,000 connections one worker has up to
-- 1,000, and with 64 spares the rest were made and collected per call (about 450 bytes of a
-- request's garbage, twice the hooks' cost per request that one connection showed; issue 19 §4).
-- At most about 700 KB kept (1,024 of each), by a worker that had that many in flight.
local SPARE = 1024
local spare_calls, spare_attempts = {}, {}
local n_calls, n_attempts = 0, 0

-- A spare call record, or a new one (its caller sets its fields).
local function take_call()
  if n_calls == 0 then
    return { call = nil, name = nil, region = nil, t0 = nil, requests = 0, status = false, t_end = false, ended = false }
  end
  local st = spare_calls[n_calls]
  spare_calls[n_calls], n_calls = nil, n_calls - 1
  return st
end

-- A call's record back among the spares, at its end.
local function give_call(st)
  if n_calls < SPARE then
    n_calls = n_calls + 1
    spare_calls[n_calls] = st
  end
end

-- A spare attempt record and true (its caller clears what it reads), or a new one, its own meter,
-- made with room for every field (no rehash as they come), and false.
local function take_attempt()
  if n_attempts == 0 then
    local a = { req = nil, n = nil, t0 = nil, meter = nil, url = nil, request_headers = nil, transport = nil,
                connect = nil, reused = nil, tls = nil, first_byte = nil, total = nil, bytes_sent = nil,
                bytes_received = nil, status = nil, lean = false, own_total = false }
    a.meter = a
    return a, false
  end
  local a = spare_attempts[n_attempts]
  spare_attempts[n_attempts], n_attempts = nil, n_attempts - 1
  return a, true
end

-- An attempt's record back among the spares, at its end.
local function give_attempt(a)
  if n_attempts < SPARE then
    a.req = nil
    n_attempts = n_attempts + 1
    spare_attempts[n_attempts] = a
  end
end

--- ob:call_start(call, name, region) -> the call's record (on_call, phase "start"), with requests = 0,
--- status = false and t_end = false (Client:_run writes them).
function Observer:call_start(call, name, region)
  local st = take_call()
  st.call, st.name, st.region, st.t0, st.requests, st.status, st.t_end, st.ended = call,
    type(name) == "string" and name or nil, region, self.clock(), 0, false, false, false
  if self.starts.on_call then
    fire_start(self, "on_call", { phase = "start", call = call, name = st.name, region = region, clock = st.t0 })
  end
  return st
end

--- ob:call_end(st, ok, err, ctx, attempts): on_call, phase "end"; ctx: the run's {status}.
function Observer:call_end(st, ok, err, ctx, attempts)
  local now = self.clock()
  local tag = not ok and (type(err) == "table" and err.tags and err.tags[1] or "Error") or nil
  local status = ctx and ctx.status or (type(err) == "table" and err.code) or nil
  attempts = attempts or 0
  local rec = self.rec
  if rec then
    local d = now - st.t0
    if not rec.known_call(st.call, status, tag, d) then
      local fine, e = pcall(rec.call, st.call, status, tag, d)
      if not fine then failed(self, "on_call", rec.fns.on_call, e) end
    end
  elseif self.list then
    local info = self.scratch.on_call
    if info then -- only END_ONLY functions (see attempt_end)
      info.call, info.name, info.region, info.clock, info.ok, info.tag, info.status, info.attempts, info.duration =
        st.call, st.name, st.region, now, ok and true or false, tag, status, attempts, now - st.t0
      fire(self, "on_call", info)
    else
      fire(self, "on_call", { phase = "end", call = st.call, name = st.name, region = st.region, clock = now,
        ok = ok and true or false, tag = tag, status = status, attempts = attempts, duration = now - st.t0 })
    end
  end
  if self.sink then
    self:log(ok and "debug" or "warn", "call", { "call", st.call, "name", st.name or "", "ok", ok and "true" or "false",
      "status", status or "", "tag", tag or "", "attempts", attempts, "ms", math.floor((now - st.t0) * 1000 + 0.5) })
  end
  give_call(st)
end

--- ob:last_end(a, ok, res, headers, st, n) -> status: the end of a call's attempt n that succeeded
--- with nothing after it (Client:_run), then the call's end: attempt_end, the call's record
--- (requests, status, t_end), call_end, st.ended set. One method call where there were two and the
--- record's writes between them: inside nginx a request resumes in LuaJIT's interpreter when its
--- answer comes, and each call from there into a compiled function costs an entry and an exit
--- (issue 19 §4). A metrics-only observer's own attempt_end and call_end are the ones called.
function Observer:last_end(a, ok, res, headers, st, n)
  local status, t_end = self:attempt_end(a, ok, res, headers)
  st.requests, st.status, st.t_end = n, status, t_end or false
  self:call_end(st, ok, res, st, n)
  st.ended = true -- (st is a spare already: nothing runs before Client:_run_call reads this)
  return status
end

-- A copy of built request req with extra header lines (req is cached and shared: never changed).
local function with_headers(req, extra)
  local c = {}
  for k, v in next, req do c[k] = v end
  local h = {}
  for i, line in ipairs(req.headers) do h[i] = line end
  for name, value in next, extra do h[#h + 1] = name .. ": " .. value end
  c.headers = h
  return c
end

-- The request's header lines as --log-http shows them: x-goog-api-key's value and the bearer token
-- (added by the transport, never in req) as REDACTED.
local function shown_headers(req, added, token)
  local out = {}
  for _, line in ipairs(req.headers) do
    local name = line:match("^([^:]+):")
    if name and string_lower(name) == "x-goog-api-key" then line = name .. ": REDACTED" end
    out[#out + 1] = line
  end
  for name, value in next, added do out[#out + 1] = name .. ": " .. value end
  if token then out[#out + 1] = "Authorization: REDACTED" end
  return out
end

--- ob:attempt_start(req, n, token, now) -> the request to send (req, or a copy with the trace context
--- and the hooks' headers) and the attempt's record (its meter, filled by the transport). token:
--- whether one goes with the request (for --log-http's request_headers; never its value); now: a
--- reading of the observer's clock taken just before (the call's deadline's), else it is read.
function Observer:attempt_start(req, n, token, now)
  -- a is its own meter (the fields the transport sets), a spare one cleared or one made with room
  -- for them all (no rehash as they come); t0 is only read for a transport that measures no total
  -- (metrics alone: not at all)
  local a, spare = take_attempt()
  if spare then
    a.url, a.request_headers, a.transport, a.connect, a.reused, a.tls, a.first_byte, a.total, a.bytes_sent,
      a.bytes_received, a.status = nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil
  end
  -- (lean: no hook wants connect, tls or first_byte -- metrics alone -- so a transport may skip them)
  a.req, a.n, a.t0, a.lean, a.own_total = req, n, not self.untimed and (now or self.clock()) or nil, self.rec ~= nil,
    false
  -- (metrics alone: no header to add, no start event)
  if self.plain then return req, a end
  local added = {}
  if self.traceparent then added.traceparent = self.traceparent end
  if self.tracestate then added.tracestate = self.tracestate end
  if self.starts.on_attempt then
    local proxy = setmetatable({ [ADDED] = added }, HEADERS_MT)
    local url = redact_url(req.url)
    a.url = url
    fire_start(self, "on_attempt", { phase = "start", call = req.call, method = req.method, url = url, attempt = n,
      headers = proxy })
  end
  if self.want then -- the CLI's --log-http: the answer's headers, a success's too
    a.request_headers = shown_headers(req, added, token)
    local c = with_headers(req, added)
    c.want_headers = true
    return c, a
  end
  if next(added) == nil then return req, a end
  return with_headers(req, added), a
end

--- ob:attempt_end(a, ok, res, transport): on_attempt phase "end" and the attempt's log line.
function Observer:attempt_end(a, ok, res, headers)
  local m = a.meter
  local req = a.req
  local status = m.status or (not ok and type(res) == "table" and res.code) or nil
  local tag = not ok and type(res) == "table" and res.tags and res.tags[1] or nil
  if not ok and not tag then tag = "Error" end
  local total = m.total or a.t0 and self.clock() - a.t0 or nil
  local rec = self.rec
  if rec then
    local call, sent, received = req.call, m.bytes_sent, m.bytes_received
    if not rec.known_attempt(call, status, tag, total, sent, received) then
      local fine, e = pcall(rec.attempt, call, status, tag, total, sent, received)
      if not fine then failed(self, "on_attempt", rec.fns.on_attempt, e) end
    end
  elseif self.list then
    local info = self.scratch.on_attempt
    if info then -- only END_ONLY functions: they keep nothing of it (the same table each time)
      local t = info.timings
      t.connect, t.tls, t.first_byte, t.total = m.connect, m.tls, m.first_byte, total
      info.call, info.method, info.url, info.attempt, info.status, info.tag = req.call, req.method,
        a.url or redact_url(req.url), a.n, status, tag
      info.bytes_sent, info.bytes_received, info.transport = m.bytes_sent, m.bytes_received, m.transport
      fire(self, "on_attempt", info)
    else
      fire(self, "on_attempt", { phase = "end", call = req.call, method = req.method, url = a.url or redact_url(req.url),
        attempt = a.n, status = status, tag = tag, bytes_sent = m.bytes_sent, bytes_received = m.bytes_received,
        timings = { connect = m.connect, tls = m.tls, first_byte = m.first_byte, total = total },
        transport = m.transport, request_headers = a.request_headers,
        response_headers = self.want and (headers or not ok and type(res) == "table" and res.headers) or nil })
    end
  end
  if self.sink then
    self:log((ok and "info" or "warn"), "attempt", { "call", req.call, "method", req.method,
      "url", a.url or redact_url(req.url), "attempt", a.n, "status", status or "", "tag", tag or "",
      "ms", math.floor(total * 1000 + 0.5), "transport", m.transport or "" })
  end
  give_attempt(a)
  return status
end

-- The methods of an observer whose only watcher is a metrics recorder (metrics:hooks() as the only
-- hooks, no log, no trace context): what call_start, call_end, attempt_start and attempt_end do
-- for it, each one function calling no other Lua function but the recorder's, rec_now and the
-- spares' take_* and give_* (small leaves that LuaJIT inlines into the trace: no difference under callgrind from the clock read
-- written out in each): inside nginx the end of a call runs after its last C call, where LuaJIT's
-- traces stop at every function that has its own, up to Client:_run_call's trace_end (issue 19 §4).
-- A record carries only what the recorder reads (call, t0; an attempt's meter).

-- The observer's clock read: the FFI one written in here (self.ffi), else its own function.
local function rec_now(self)
  if self.ffi then
    FFI_C.clock_gettime(1, FFI_TS)
    return (FFI_W[0] + FFI_W[1] * 4294967296) + FFI_W[2] / 1e9
  end
  return self.clock()
end

function REC_METHODS.call_start(self, call)
  local st = take_call()
  -- (name and region: not read on this path, left as they are)
  st.call, st.t0, st.requests, st.status, st.t_end, st.ended = call, rec_now(self), 0, false, false, false
  return st
end

function REC_METHODS.call_end(self, st, ok, err, ctx)
  local now = st.t_end or rec_now(self)
  local tag = not ok and (type(err) == "table" and err.tags and err.tags[1] or "Error") or nil
  local status = ctx and ctx.status or (type(err) == "table" and err.code) or nil
  local rec, call, d = self.rec, st.call, now - st.t0
  give_call(st)
  if not rec.known_call(call, status, tag, d) then
    local fine, e = pcall(rec.call, call, status, tag, d)
    if not fine then failed(self, "on_call", rec.fns.on_call, e) end
  end
end

function REC_METHODS.attempt_start(self, req, n, _, now)
  local a, spare = take_attempt()
  if spare then
    -- (what a transport reads before it writes, and what says it measured: the rest it writes, or
    -- the recorder does not read)
    a.bytes_received, a.status, a.first_byte, a.total, a.bytes_sent, a.transport = nil, nil, nil, nil, nil, nil
  end
  -- (the attempt timed here, on the observer's clock: a transport that measures a total of its own
  -- (libcurl's) still gives it; the cosocket transport does not (own_total), which spares it
  -- nginx's time update, ngx.update_time(), at each exchange's end; an attempt no transport
  -- measured -- a worker thread that could not run, a connect that used up the time before the
  -- exchange -- stays untimed, as on the observer's general path)
  local t0 = now or rec_now(self)
  a.req, a.n, a.t0, a.lean, a.own_total = req, n, t0, true, true
  return req, a
end

function REC_METHODS.attempt_end(self, a, ok, res)
  local total, now = a.total, nil
  if not total and a.transport == "cosocket" then -- (measured, its total left to us: own_total)
    now = rec_now(self)
    total = now - a.t0
  end
  local status = a.status or (not ok and type(res) == "table" and res.code) or nil
  local tag = not ok and (type(res) == "table" and res.tags and res.tags[1] or "Error") or nil
  local rec, call, sent, received = self.rec, a.req.call, a.bytes_sent, a.bytes_received
  give_attempt(a)
  if not rec.known_attempt(call, status, tag, total, sent, received) then
    local fine, e = pcall(rec.attempt, call, status, tag, total, sent, received)
    if not fine then failed(self, "on_attempt", rec.fns.on_attempt, e) end
  end
  return status, now
end

-- A call's last attempt that got an answer (Client:_run's ok), the call's end with it: one event of
-- the recorder for both (rec.known_pair: one lookup, its numbers queued), on one clock reading;
-- else Observer:last_end (a first event of its status, a call whose attempts are another call's).
function REC_METHODS.last_end(self, a, ok, res, headers, st, n)
  local status, call = a.status, st.call
  if ok and status ~= nil and a.req.call == call then
    local now = rec_now(self)
    local total = a.total
    if not total and a.transport == "cosocket" then total = now - a.t0 end -- (as attempt_end)
    if self.rec.known_pair(call, status, now - st.t0, total, a.bytes_sent, a.bytes_received) then
      give_attempt(a)
      give_call(st)
      st.ended = true -- (as Observer:last_end)
      return status
    end
  end
  return Observer.last_end(self, a, ok, res, headers, st, n)
end

--- ob:retry(call, n, delay, err): on_retry and its log line; reason: http_<status> or the error's tag.
function Observer:retry(call, n, delay, err)
  local reason
  if type(err) == "table" and err.code and err.tags and err.tags[1] == "HttpError" then
    reason = "http_" .. tostring(err.code)
  else
    reason = type(err) == "table" and err.tags and err.tags[1] or "Error"
  end
  if self.list then fire(self, "on_retry", { call = call, attempt = n, delay = delay, reason = reason }) end
  if self.sink then
    self:log("info", "retry", { "call", call, "attempt", n, "reason", reason, "delay", string_format("%g", delay) })
  end
end

--- ob:token_start(source) / ob:token_end(st, ok, err): on_token (never the token).
function Observer:token_start(source)
  local st = { source = source, t0 = self.clock() }
  if self.starts.on_token then fire_start(self, "on_token", { phase = "start", source = source }) end
  return st
end

function Observer:token_end(st, ok, err)
  local d = self.clock() - st.t0
  local tag = not ok and (type(err) == "table" and err.tags and err.tags[1] or "Error") or nil
  if self.list then
    fire(self, "on_token", { phase = "end", source = st.source, ok = ok and true or false, tag = tag, duration = d })
  end
  if self.sink then
    self:log(ok and "debug" or "warn", "token", { "source", st.source, "ok", ok and "true" or "false",
      "tag", tag or "", "ms", math.floor(d * 1000 + 0.5) })
  end
end

--- ob:poll(name, round, done, delay): on_poll after each round of a wait.
function Observer:poll(name, round, done, delay)
  if self.list then fire(self, "on_poll", { call = "wait", name = name, round = round, done = done, delay = delay }) end
end

--- stats(client, st): adds hook_errors (and last_hook_error) to a client's stats table.
function M.stats(client, st)
  local rec = rawget(client, "hook_errors")
  st.hook_errors = rec and rec.count or 0
  st.last_hook_error = rec and rec.last or nil
  return st
end

return M
