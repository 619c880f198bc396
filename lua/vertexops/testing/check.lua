-- vertexops.testing.check: what control input may hold (LIMITS) and the checks that hold it there.
-- Each check returns nil, or the message of a 400 naming the field; the control API (control.lua)
-- answers that message and changes nothing. The checks of one kind of input live with it:
-- an operation spec in model.lua, a fault in faults.lua, oauth settings and tokens in tokens.lua.
local cjson = require("cjson.safe").new()

local M = {}

-- Caps on what one control request, or the request log, can make the fake hold (docs/fake.md,
-- "Limits"): a control request past one answers 400 {"error": "..."} naming it, and changes nothing.
local MiB = 1024 * 1024
M.LIMITS = {
  create = 200000,        -- operations one POST /_control/operations makes (count)
  operations = 1000000,   -- operations made since the last reset
  log_entries = 100000,   -- requests kept in the log (later ones are counted: stats().log_dropped)
  log_body = 64 * 1024,   -- bytes of one request's body kept in the log (body_truncated beyond)
  log_bytes = 64 * MiB,   -- bytes of request bodies kept in the whole log
  faults = 10000,         -- faults queued
  fault_bytes = 64 * MiB, -- bytes of control bodies the queued faults came in
  size = 64 * MiB,        -- a size fault's body (streamed)
  json_depth = 1000000,   -- a json_depth fault's nesting
  header_size = MiB,      -- a header_size fault's header
  seconds = 3600,         -- delay, hold, endless, trickle
  tokens = 10000,         -- bearer tokens in tokens(list)
  token_length = 4096,    -- bytes of one of them
  clock = 1e11,           -- the virtual clock stays in [0, 1e11] seconds (year 5138)
}

local function is_number(v) return type(v) == "number" and v == v and v > -math.huge and v < math.huge end
local function is_whole(v) return is_number(v) and v == math.floor(v) end
M.is_whole = is_whole

--- body[k], when present, is a number (whole: an integer) in [lo, hi].
function M.number_in(body, k, lo, hi, whole)
  local v = body[k]
  if v == nil then return nil end
  if not (whole and is_whole or is_number)(v) or v < lo or v > hi then
    return ("%s must be %s from %s to %s, got %s"):format(k, whole and "an integer" or "a number",
      string.format("%.14g", lo), string.format("%.14g", hi), cjson.encode(v) or tostring(v))
  end
end

--- body[k], when present, is one of set's keys (set given), else of one of the Lua types in kinds
--- ("string|number").
function M.one_of(body, k, kinds, set)
  local v = body[k]
  if v == nil then return nil end
  if set then
    if set[v] then return nil end
    local names = {}
    for name in pairs(set) do names[#names + 1] = '"' .. name .. '"' end
    table.sort(names)
    return ("%s must be one of %s, got %s"):format(k, table.concat(names, ", "), cjson.encode(v) or tostring(v))
  end
  if kinds:find(type(v), 1, true) then return nil end
  return ("%s must be a %s, got %s"):format(k, kinds:gsub("|", " or "), cjson.encode(v) or type(v))
end

--- The first message of those given (the checks of one input, in the order they are reported).
function M.first(...)
  for i = 1, select("#", ...) do
    local m = select(i, ...)
    if m then return m end
  end
end

--- The checks of a settings body of the control API (/_control/oauth, /_control/sts, /_control/aws):
--- nil, or the message of a 400. body must be a JSON object whose keys are kinds' (else "unknown
--- <what> setting K"); each value is of the Lua types kinds[k] names ("string|number", as one_of),
--- or passes kinds[k](body, k) when that is a function (returning nil or a message).
function M.settings(what, kinds, body)
  if type(body) ~= "table" then return what .. " settings must be a JSON object" end
  for k in pairs(body) do
    if not kinds[k] then return ("unknown %s setting %s"):format(what, tostring(k)) end
  end
  for k, kind in pairs(kinds) do
    local m
    if type(kind) == "function" then m = kind(body, k) else m = M.one_of(body, k, kind) end
    if m then return m end
  end
end

--- A set of the strings given.
function M.set(...)
  local t = {}
  for _, v in ipairs { ... } do t[v] = true end
  return t
end

--- A JSON text of v (for messages naming what was sent).
function M.shown(v)
  return cjson.encode(v) or tostring(v)
end

return M
