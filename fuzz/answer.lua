-- Driver of fuzz/answer.c: fuzz_classify() runs vx_result on the input (see answer.c for the
-- layout). Returns nil when the outcome keeps the contract, or a text naming the broken invariant:
--   true, table [, headers table]  for CURLE_OK and a 2xx status with a JSON object (or empty) body;
--   false, error object otherwise: error metatable, a string message, tags[1] one of the contract's
--   tags; HttpError carries code == status, body (table or string) and headers (table of strings).
-- Known findings reported and not yet fixed, skipped so fuzzing can go on:
-- VERTEXOPS_FUZZ_KNOWN=deep (vx_fixints recursion without lua_checkstack: bodies nested > 20 deep)
local core = require "vertexops.core"
local KNOWN = {}
for k in (os.getenv("VERTEXOPS_FUZZ_KNOWN") or ""):gmatch("[%w_]+") do KNOWN[k] = true end
local TAGS = { HttpError = true, ResponseTypeError = true, ConnectionError = true,
  ConnectionFailedError = true, TimeoutError = true }

local function depth(s)
  local d, max = 0, 0
  for c in s:gmatch("[%[%]{}]") do
    d = (c == "[" or c == "{") and d + 1 or d - 1
    if d > max then max = d end
  end
  return max
end

local function strings_only(t, what)
  for k, v in pairs(t) do
    if type(k) ~= "string" or type(v) ~= "string" then return what .. " has a non-string entry" end
    if k ~= k:lower() then return what .. " has a name that is not lower case: " .. k end
  end
end

return function(data)
  if KNOWN.deep and depth(data) > 20 then return nil end
  local ok, a, b, c = pcall(fuzz_classify)
  if not ok then return "vx_result raised: " .. tostring(a) end
  if a == true then
    if type(b) ~= "table" then return "success without a table" end
    if c ~= nil and type(c) ~= "table" then return "success headers are not a table" end
    if c then return strings_only(c, "headers") end
    return nil
  end
  if a ~= false then return "first result is " .. tostring(a) end
  if type(b) ~= "table" or getmetatable(b) ~= core.error_mt then return "failure without an error object" end
  if type(b.message) ~= "string" then return "error without a message" end
  if type(b.tags) ~= "table" or not TAGS[b.tags[1]] then return "error tag " .. tostring(b.tags and b.tags[1]) end
  if b.tags[1] == "HttpError" then
    if math.type(b.code) ~= "integer" then return "HttpError without an integer code" end
    if type(b.body) ~= "table" and type(b.body) ~= "string" then return "HttpError body is " .. type(b.body) end
    if b.status ~= nil and type(b.status) ~= "string" then return "HttpError status is " .. type(b.status) end
    if type(b.headers) ~= "table" then return "HttpError without headers" end
    return strings_only(b.headers, "HttpError headers")
  end
end
