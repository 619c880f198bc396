-- Driver of fuzz/answer.c: core.classify on the input (see answer.c for the layout). Returns nil
-- when the outcome keeps the contract, or a text naming the broken invariant:
--   a status outside 100..999 (or not whole): a ValueError error object raised;
--   true, table [, headers table]  for a 2xx status with a JSON object (or empty) body;
--   false, error object otherwise: error metatable, a string message, tags[1] HttpError or
--   ResponseTypeError; HttpError carries code == status, body (table or string) and headers;
--   reason and domain are nil or strings, metadata nil or a table, details the table the body's
--   error.details decoded to when that is a non-empty list, else nil; retry.retry_after on it returns nil
--   or a number >= 0 and never raises.
local core = require "vertexops.core"
local root = debug.getinfo(1, "S").source:match("^@(.*)/fuzz/[^/]*$") or "."
package.path = root .. "/lua/?.lua;" .. package.path
local retry = require "vertexops.retry"
local TAGS = { HttpError = true, ResponseTypeError = true }
local function strings_only(t, what)
  for k, v in pairs(t) do
    if type(k) ~= "string" or type(v) ~= "string" then return what .. " has a non-string entry" end
    if k ~= k:lower() then return what .. " has a name that is not lower case: " .. k end
  end
end

local function check_raise(err)
  if type(err) ~= "table" or getmetatable(err) ~= core.error_mt or err.tags[1] ~= "ValueError" then
    return "classify raised " .. tostring(err)
  end
end

return function(data)
  local flags = data:byte(1) or 0
  local rest = data:sub(2)
  local cut = rest:find("\r\n\r\n", 1, true)
  local head, body = rest, ""
  if cut then head, body = rest:sub(1, cut - 1), rest:sub(cut + 4) end
  local status = tonumber(head:match("^HTTP/%S* (%d+)") or "")
  if not status then status = 200 end
  local valid = status >= 100 and status <= 999
  if not valid and flags & 2 == 0 then status = 100 + status % 900; valid = true end
  local ok, a, b, c = pcall(core.classify, status, head, body, flags & 1 == 1)
  if not ok then
    if valid then return "classify raised for status " .. status .. ": " .. tostring(a) end
    return check_raise(a)
  end
  if not valid then return "classify accepted status " .. status end
  if a == true then
    if type(b) ~= "table" then return "success without a table" end
    if c ~= nil and type(c) ~= "table" then return "success headers are not a table" end
    if c then return strings_only(c, "headers") end
    if flags & 1 == 1 then return "no headers with want_headers" end
    return nil
  end
  if a ~= false then return "first result is " .. tostring(a) end
  if type(b) ~= "table" or getmetatable(b) ~= core.error_mt then return "failure without an error object" end
  if type(b.message) ~= "string" then return "error without a message" end
  if type(b.tags) ~= "table" or not TAGS[b.tags[1]] then return "error tag " .. tostring(b.tags and b.tags[1]) end
  if b.tags[1] == "HttpError" then
    if b.code ~= status then return "HttpError code " .. tostring(b.code) .. " for status " .. status end
    if type(b.body) ~= "table" and type(b.body) ~= "string" then return "HttpError body is " .. type(b.body) end
    if b.status ~= nil and type(b.status) ~= "string" then return "HttpError status is " .. type(b.status) end
    if type(b.headers) ~= "table" then return "HttpError without headers" end
    for _, k in ipairs { "reason", "domain" } do
      if b[k] ~= nil and type(b[k]) ~= "string" then return "HttpError " .. k .. " is " .. type(b[k]) end
    end
    if b.metadata ~= nil and type(b.metadata) ~= "table" then return "HttpError metadata is " .. type(b.metadata) end
    local env = type(b.body) == "table" and rawget(b.body, "error")
    local d = type(env) == "table" and rawget(env, "details")
    if type(d) ~= "table" then d = nil end
    if b.details ~= nil and b.details ~= d then return "HttpError details are not the body's error.details" end
    -- a decoded JSON object has string keys only, a list integer keys only; [] and {} both decode
    -- to an empty table, which sets no details
    local k = d and next(d)
    if k == nil and b.details then return "HttpError details set from an empty table" end
    if type(k) == "string" and b.details then return "HttpError details set from an object" end
    if type(k) == "number" and not b.details then return "HttpError details left out for a list" end
    if (b.reason or b.domain or b.metadata) and not b.details then return "HttpError reason without details" end
    local okr, delay = pcall(retry.retry_after, b, 0)
    if not okr then return "retry_after raised: " .. tostring(delay) end
    if delay ~= nil and (type(delay) ~= "number" or not (delay >= 0)) then -- luacheck: ignore 581 (NaN)
      return "retry_after gave " .. tostring(delay)
    end
    return strings_only(b.headers, "HttpError headers")
  end
end
