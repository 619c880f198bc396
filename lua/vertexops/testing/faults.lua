-- vertexops.testing.faults: fault injection. Faults are queued by /_control/faults (check, queue),
-- taken by the next request whose call matches (take), and applied by the handler of their kind
-- (HANDLERS, tried in the order of KINDS; apply). Every field a fault may have is in docs/fake.md
-- ("Faults") and at the top of server.lua.
--
-- A new fault kind: a handler in HANDLERS (it answers, or goes on), its place in KINDS (the first
-- kind a fault has that answers wins), the checks of its fields in check(), a line in docs/fake.md.
local check = require "vertexops.testing.check"
local model = require "vertexops.testing.model"
local reply = require "vertexops.testing.reply"
local state = require "vertexops.testing.state"

local ngx = ngx
local number_in, one_of, first, set = check.number_in, check.one_of, check.first, check.set
local LIMITS = check.LIMITS

local M = {}

-- the queue ----------------------------------------------------------------------------------

M.MATCH = set("cancel", "get", "delete", "list", "wait", "token", "metadata", "sts", "iam", "subject_token", "aws_token",
  "aws_metadata", "other",
  "any")

--- A fault's fields: nil, or the message of a 400.
function M.check(f)
  if type(f) ~= "table" then return "a fault must be a JSON object" end
  local m = first(
    one_of(f, "match", nil, M.MATCH), number_in(f, "times", 0, math.huge),
    number_in(f, "delay", 0, LIMITS.seconds), one_of(f, "drop", nil, set("before", "mid")),
    number_in(f, "status", 100, 599, true), one_of(f, "headers", "table"),
    one_of(f, "retry_after", "string|number"), one_of(f, "reason", "string"), one_of(f, "message", "string"),
    one_of(f, "body", "string"), one_of(f, "content_type", "string"),
    number_in(f, "size", 0, LIMITS.size, true), number_in(f, "json_depth", 0, LIMITS.json_depth, true),
    one_of(f, "json_kind", nil, set("array", "object")), one_of(f, "invalid_utf8", "boolean"),
    number_in(f, "header_size", 0, LIMITS.header_size, true), one_of(f, "header_nul", "boolean"),
    f.endless ~= true and number_in(f, "endless", 0, LIMITS.seconds) or nil,
    number_in(f, "trickle", 0, LIMITS.seconds), one_of(f, "redirect", "string"),
    one_of(f, "next_page_token", "string|table"))
  if m then return m end
  for k, v in pairs(f.headers or {}) do
    local ok = type(k) == "string" and (type(v) == "string" or type(v) == "number" or type(v) == "table")
    for _, one in ipairs(type(v) == "table" and v or {}) do ok = ok and type(one) == "string" end
    if not ok then return "headers must map names to strings (or lists of strings)" end
  end
  if type(f.next_page_token) == "table" then
    if #f.next_page_token == 0 then return "next_page_token must be a string or a list of strings" end
    for _, t in ipairs(f.next_page_token) do
      if type(t) ~= "string" then return "next_page_token must be a string or a list of strings" end
    end
  end
end

-- What each queued fault costs (bytes of the control body that brought it), for LIMITS.fault_bytes.
local fault_cost = setmetatable({}, { __mode = "k" })

--- Queues the faults of list (checked), which came in a control body of cost bytes, when the caps
--- allow: nil, or the message of a 400 (then nothing is queued).
function M.queue(list, cost)
  for _, f in ipairs(list) do
    local m = M.check(f)
    if m then return m end
  end
  if #state.faults + #list > LIMITS.faults then
    return ("at most %d faults queued (%d are): clear_faults() or reset() first"):format(LIMITS.faults, #state.faults)
  end
  if state.fault_bytes + cost > LIMITS.fault_bytes then
    return ("queued faults hold at most %d bytes of control bodies: clear_faults() or reset() first")
      :format(LIMITS.fault_bytes)
  end
  state.fault_bytes = state.fault_bytes + cost
  for _, f in ipairs(list) do
    fault_cost[f] = cost / #list
    state.faults[#state.faults + 1] = f
  end
end

--- Forgets the faults not taken yet.
function M.clear()
  state.faults, state.fault_bytes = {}, 0
end

--- The first queued fault matching call, counted as taken once (dropped when used up); or nil.
function M.take(call)
  for i, f in ipairs(state.faults) do
    if (f.match == nil or f.match == "any" or f.match == call) and (f.times or 1) > 0 then
      f.times = (f.times or 1) - 1
      if f.times <= 0 then
        table.remove(state.faults, i)
        state.fault_bytes = state.fault_bytes - (fault_cost[f] or 0)
      end
      return f
    end
  end
end

-- what an answer is made of --------------------------------------------------------------------

-- The extra headers of a fault's answer: headers, retry_after, header_size, header_nul.
local function extra_headers(f)
  local headers = {}
  for k, v in pairs(f.headers or {}) do headers[k] = v end
  if f.retry_after then headers["Retry-After"] = tostring(f.retry_after) end
  if f.header_size then headers["X-Fake-Padding"] = string.rep("p", f.header_size) end
  if f.header_nul then headers["X-Fake-Nul"] = "before\0after" end
  return headers
end

-- A JSON value nested depth levels deep: {"a":{"a":...1...}} or [[[...1...]]].
local function nested(depth, kind)
  if kind == "array" then return string.rep("[", depth) .. "1" .. string.rep("]", depth) end
  return string.rep('{"a":', depth) .. "1" .. string.rep("}", depth)
end

local INVALID_UTF8 = "\xff\xfe\xc3\x28"

-- A 200 body: the operation's real view (or its name alone), with raw JSON text in its metadata.
local function operation_with(name, raw)
  local t = (name and state.ops[name]) and model.view(state.ops[name]) or { name = name }
  t.metadata = t.metadata or {}
  t.metadata.injected = "@INJECTED@"
  return (reply.json(t):gsub('"@INJECTED@"', function() return raw end))
end

-- Answers f.status (default 200) with body, the fault's headers and content type.
local function answer(f, body, content_type)
  reply.start(f.status or 200, extra_headers(f), f.content_type or content_type or "application/json")
  ngx.print(body)
  return true
end

-- Writes the pieces next_piece() gives, each flushed (waiting for the client) before the next, so
-- nginx never holds more than one; until it gives nil or the client is gone.
local function stream(next_piece)
  for piece in next_piece do
    if not ngx.print(piece) or not ngx.flush(true) then return end
  end
end

-- the handlers -------------------------------------------------------------------------------
-- Each handler(f, call, name) answers the request and returns true, returns false to have it
-- served normally (as the fault changed it: a forced page token, extra headers), or returns nil
-- to go on to the fault's next kind.

local HANDLERS = {}
M.HANDLERS = HANDLERS

-- delay: hold the request first (then the rest of the fault, or the normal answer)
function HANDLERS.delay(f)
  ngx.sleep(f.delay)
end

-- drop: "before" closes the connection without an answer; "mid" sends 200 and half a body, closes
function HANDLERS.drop(f)
  if f.drop == "before" then
    ngx.exit(444)
    return true
  end
  ngx.status = 200
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Content-Length"] = 4096
  ngx.print('{"name": "projects/test-project/locations/us-central1/oper')
  ngx.flush(true)
  ngx.exit(ngx.ERROR)
  return true
end

-- next_page_token: a list answers normally with this token (a list of tokens: cycled through, one
-- per answer); any other call is served as if there were no fault
function HANDLERS.next_page_token(f, call)
  if call ~= "list" then return false end
  local token = f.next_page_token
  if type(token) == "table" then
    f.turn = (f.turn or 0) % #token + 1
    token = token[f.turn]
  end
  ngx.ctx.next_page_token = token
  return false
end

-- redirect: a 3xx (status, default 302) to this Location
function HANDLERS.redirect(f)
  local headers = extra_headers(f)
  headers.Location = f.redirect
  reply.start(f.status or 302, headers, "text/html")
  ngx.print("<a href=\"" .. f.redirect .. "\">moved</a>")
  return true
end

-- body: the raw body (with status: of that error, text/html unless content_type; without: of a 200)
function HANDLERS.body(f)
  return answer(f, f.body, f.status and "text/html")
end

-- size: a body of that many spaces, streamed a MiB at a time
function HANDLERS.size(f)
  reply.start(f.status or 200, extra_headers(f), f.content_type or "application/json")
  local chunk, left = string.rep(" ", 1024 * 1024), f.size
  stream(function()
    if left <= 0 then return nil end
    local n = math.min(left, #chunk)
    left = left - n
    return n == #chunk and chunk or chunk:sub(1, n)
  end)
  return true
end

-- json_depth: a 200 operation whose metadata.injected nests that deep, or with status Google's
-- error envelope whose details[1] does
function HANDLERS.json_depth(f, _, name)
  local deep = nested(f.json_depth, f.json_kind)
  return answer(f, f.status and reply.envelope(f.status, "Injected failure.", deep) or operation_with(name, deep))
end

-- invalid_utf8: bytes that are not UTF-8 in the error message (with status), else in a 200
-- operation's metadata.injected
function HANDLERS.invalid_utf8(f, _, name)
  return answer(f, f.status and reply.envelope(f.status, "Injected failure " .. INVALID_UTF8 .. " in the message.")
    or operation_with(name, '"' .. INVALID_UTF8 .. '"'))
end

-- endless: a 200 whose body never ends (1 MiB chunks while the client reads; stops after
-- `endless` seconds, default 300)
function HANDLERS.endless(f)
  reply.start(f.status or 200, extra_headers(f), "application/json")
  ngx.print('{"name":"')
  local chunk, stop = string.rep("a", 1024 * 1024), ngx.now() + (tonumber(f.endless) or 300)
  stream(function() return ngx.now() < stop and chunk or nil end)
  return true
end

-- trickle: a 200 whose body comes one byte per `trickle` seconds (stops after 300 bytes)
function HANDLERS.trickle(f)
  reply.start(f.status or 200, extra_headers(f), "application/json")
  local sent = 0
  stream(function()
    if sent > 0 then ngx.sleep(f.trickle) end
    sent = sent + 1
    return sent <= 300 and "{" or nil
  end)
  return true
end

-- status: this HTTP status with Google's error envelope (message, reason, retry_delay)
function HANDLERS.status(f)
  reply.gerror(f.status, f.message or "Injected failure.", extra_headers(f),
    { reason = f.reason, retry_delay = f.retry_delay })
  return true
end

--- The kinds a fault may have, in the order they are tried.
M.KINDS = { "delay", "drop", "next_page_token", "redirect", "body", "size", "json_depth", "invalid_utf8",
            "endless", "trickle", "status" }

--- Applies fault f to a request for call on name: true when the request has been answered (or
--- dropped), false when it is to be served normally. A fault of headers alone (headers,
--- retry_after, header_size, header_nul) has the normal answer carry them.
function M.apply(f, call, name)
  for _, kind in ipairs(M.KINDS) do
    if f[kind] then
      local answered = HANDLERS[kind](f, call, name)
      if answered ~= nil then return answered end
    end
  end
  local headers = extra_headers(f)
  if next(headers) then ngx.ctx.extra_headers = headers end
  return false
end

return M
