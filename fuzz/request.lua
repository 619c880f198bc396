-- Driver of fuzz/request.c. Input: fields separated by byte 0x1F:
--   mode, name, region, endpoint, filter, page_token, page_size, user_project, wait, extra
-- mode's first byte picks the call (byte % 5) and, in its bits 4-7, region nil (16), no opts at all
-- (32), core.check_url on the endpoint field (64; then core.h1_request on the URL it accepts), and
-- core.h1_request on a request of the fields (128: see check_h1_request). A field that starts with '#' is a number
-- (tonumber of the rest), '!' a boolean, '@' a table "k:v;k:v" (values converted the same way),
-- '&' a function; otherwise it is the string. "extra" is "key=value" for one more option.
-- Returns nil when the contract holds, or a text naming the broken invariant.
local core = require "vertexops.core"
local CALLS = { "cancel", "get", "delete", "list", "wait" }
local function value(s, nested)
  if s == nil then return nil end
  local sigil, rest = s:sub(1, 1), s:sub(2)
  if sigil == "#" then return tonumber(rest) or math.tointeger(rest) or rest end
  if sigil == "!" then return rest == "true" end
  if sigil == "&" then return function() return rest end end
  if sigil == "@" and not nested then
    local t = {}
    for k, v in rest:gmatch("([^:;]*):([^;]*)") do t[tonumber(k) or k] = value(v, true) end
    return t
  end
  return s
end

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local function check_error(err, what)
  if type(err) ~= "table" or type(err.tags) ~= "table" then
    return what .. " raised a plain " .. type(err) .. ": " .. tostring(err)
  end
  if getmetatable(err) ~= core.error_mt then return what .. " raised a table without the error metatable" end
  local tag = err.tags[1]
  if tag ~= "TypeError" and tag ~= "ValueError" then return what .. " raised " .. tostring(tag) end
  if type(err.message) ~= "string" then return what .. " raised an error without a message" end
end

local function query(url, key)
  local v = url:match("[?&]" .. key .. "=([^&]*)")
  return v and unescape(v)
end

local function check_request(req, call, name, opts)
  if type(req) ~= "table" or type(req.url) ~= "string" then return "build returned no url" end
  local url = req.url
  local bad = url:find("[%z\1-\32\127-\255]")
  if bad then return ("url has byte 0x%02X at %d: %q"):format(url:byte(bad), bad, url) end
  local endpoint = type(opts) == "table" and opts.endpoint
  if endpoint then
    local base = endpoint:gsub("{region}", function() return req.region end):gsub("/+$", "")
    if url:sub(1, #base + 1) ~= base .. "/" then return ("url %q does not start with endpoint %q"):format(url, base) end
  elseif not endpoint and not (url:find("^https://[%w.-]+/") or url:find("^https?://[^/]+/")) then
    return "url has no endpoint: " .. url
  end
  local version = type(opts) == "table" and opts.api_version or "v1beta1"
  if not url:find("/" .. version .. "/" .. name, 1, true) then return "url lacks the name: " .. url end
  local params
  for _, h in ipairs(req.headers) do params = params or h:match("^x%-goog%-request%-params: %a+=(.*)$") end
  if not params or unescape(params) ~= name then return "x-goog-request-params does not decode to the name" end
  if call == "list" and type(opts) == "table" then
    if type(opts.filter) == "string" and query(url, "filter") ~= opts.filter then return "filter does not decode back" end
    if type(opts.page_token) == "string" and query(url, "pageToken") ~= opts.page_token then
      return "page_token does not decode back"
    end
    if math.type(opts.page_size) == "integer" and tonumber(query(url, "pageSize")) ~= opts.page_size then
      return "pageSize differs"
    end
  end
end

-- core.h1_request (the request reader, csrc/reader.c, and its HTTP/1.1 bytes) on a request made of
-- the fields: url = endpoint, body = filter, token = page_token, a header = user_project.
local METHODS = { "GET", "POST", "PUT", "DELETE", "get", 1 }
local function check_h1_request(mode, f)
  local req = { method = METHODS[(mode >> 1) % #METHODS + 1], url = value(f[4]), body = value(f[5]),
                headers = f[8] and { value(f[8]) } or nil }
  local token = value(f[6])
  local ok, parts, target = pcall(core.h1_request, req, token)
  if not ok then
    if type(parts) == "table" and parts.tags and parts.tags[1] == "AuthError" then return nil end
    return check_error(parts, "h1_request")
  end
  local head = parts[1]
  local _, lines = head:gsub("\r\n", "")
  local want = 2 + (req.headers and 1 or 0) + ((req.method == "POST" or req.method == "PUT") and 1 or 0)
    + (token == nil and 1 or 0) -- the empty line ends the head here when no token part follows
  if lines ~= want then return ("h1_request wrote %d lines, not %d: %q"):format(lines, want, head) end
  if head:gsub("\r\n", ""):find("[%z\r\n]") then
    return ("h1_request wrote a bare CR, LF or NUL: %q"):format(head)
  end
  if head:sub(1, #req.method + 2) ~= req.method .. " /" then return ("bad request line: %q"):format(head) end
  if target.authority:find("[/@%s]") or target.port < 1 or target.port > 65535 then
    return ("bad target %q:%s"):format(target.authority, tostring(target.port))
  end
end

-- Whether a and b are the same built request: every field, the header lines in order.
local function same_request(a, b)
  if type(a) ~= "table" or type(b) ~= "table" or getmetatable(a) ~= nil then return false end
  for k, v in pairs(a) do
    if k == "headers" then
      if type(b.headers) ~= "table" or #v ~= #b.headers then return false end
      for i = 1, #v do
        if v[i] ~= b.headers[i] then return false end
      end
    elseif b[k] ~= v then
      return false
    end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

-- core.build_many (csrc/request.c's path for a list: what depends on the options made once, each
-- name read in one pass) gives for each name what core.build gives: the same request, or an error
-- of the same tag and message; it raises where core.build raises for every name (a bad option).
local function check_build_many(call, name, region, opts, ok, req)
  local okm, list = pcall(core.build_many, call, { name, name }, region, opts)
  if not okm then
    if ok then return "build_many raised where build built: " .. tostring(list) end
    return check_error(list, "build_many")
  end
  for i = 1, 2 do
    local r = list[i]
    if ok then
      if not same_request(r, req) then return "build_many's request differs from build's" end
    elseif type(r) ~= "table" or getmetatable(r) ~= core.error_mt or r.tags[1] ~= req.tags[1]
      or r.message ~= req.message then
      return ("build_many gave %s where build raised %s"):format(tostring(r), tostring(req))
    end
  end
end

return function(data)
  local f = {}
  for field in (data .. "\31"):gmatch("(.-)\31") do f[#f + 1] = field end
  local mode = (f[1] or ""):byte(1) or 0
  local call = CALLS[mode % 5 + 1]
  local name, region = value(f[2] or ""), value(f[3])
  if mode & 16 ~= 0 then region = nil end
  local opts = {
    endpoint = value(f[4]), filter = value(f[5]), page_token = value(f[6]),
    page_size = value(f[7]), user_project = value(f[8]),
  }
  if f[10] then
    local k, v = f[10]:match("^([^=]*)=(.*)$")
    if k then opts[k] = value(v) end
  end
  if mode & 32 ~= 0 then opts = nil end
  local wait = value(f[9])

  local ok, res = pcall(core.check_options, opts)
  if not ok then
    local why = check_error(res, "check_options")
    if why then return why end
  end
  local ok2, req = pcall(core.build, call, name, region, opts, wait)
  if ok2 then
    if not ok then return "build accepted options that check_options refused" end
    local why = check_request(req, call, name, opts)
    if why then return why end
  else
    local why = check_error(req, "build")
    if why then return why end
  end
  if wait == nil and type(name) == "string" and (call == "cancel" or call == "get") then
    local why = check_build_many(call, name, region, opts, ok2, req)
    if why then return why end
  end
  if mode & 64 ~= 0 and type(f[4]) == "string" then
    local ok3, url = pcall(core.check_url, f[4])
    if ok3 then
      if url:find("[%z\1-\32\127-\255]") then return ("check_url accepted %q"):format(url) end
      -- one URL grammar: an endpoint accepted is a request URL accepted, with the same host and port
      -- (check_url returns its argument: {region} expanded to "" and trailing '/' dropped here, as it checks)
      local base = url:gsub("{region}", ""):gsub("/+$", "")
      local ok4, _, target = pcall(core.h1_request, { method = "GET", url = base .. "/x" })
      if not ok4 then return ("h1_request refused endpoint %q"):format(base) end
      if target.scheme .. "://" .. target.authority ~= base:match("^[^/]*//[^/]*") then
        return ("h1_request read %q's authority as %q"):format(base, target.authority)
      end
    else
      local why = check_error(url, "check_url")
      if why then return why end
    end
  end
  if mode & 128 ~= 0 then
    return check_h1_request(mode, f)
  end
end
