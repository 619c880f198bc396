-- Runs inside the nginx of support/openresty.lua (location /_scenario, content phase): the request
-- body is {code, args}; code is the body of a function of (vertexops, args, T), run with pcall.
-- Answers {ok = true, result = ...} or {ok = false, error = ...}, with error objects turned into
-- plain tables {tags, message, code, status, ...} and the cosocket transport's counters (stats).
local cjson = require "cjson.safe"
local vertexops = require "vertexops"
local cosocket = require "vertexops.transport.cosocket"

local ngx = rawget(_G, "ngx")
local M = {}

local function plain(v, depth)
  if type(v) ~= "table" then
    if type(v) == "function" or type(v) == "userdata" or type(v) == "cdata" then return tostring(v) end
    return v
  end
  if depth > 20 then return "..." end
  local out = {}
  if vertexops.is_error(v) then
    for _, k in ipairs { "tags", "message", "code", "status", "reason", "headers" } do out[k] = plain(v[k], depth + 1) end
    if v.cause then out.cause = plain(v.cause, depth + 1) end
    return out
  end
  for k, x in pairs(v) do out[type(k) == "number" and k or tostring(k)] = plain(x, depth + 1) end
  return out
end

-- What scenarios get besides vertexops and args.
local T = {}

--- Options that reach the fake server through the app's endpoint with its token, plus extra's keys.
function T.opts(extra)
  local o = { token = "test-token" }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

--- Calls f(...): its results as a list, or the error it raised as {raised = error}.
function T.catch(f, ...)
  local r = { pcall(f, ...) }
  if r[1] then return { select(2, unpack(r)) } end
  return { raised = r[2] }
end

--- A sleep that records and does not wait (for retry delays), and the list it fills.
function T.recorder()
  local delays = {}
  return function(s) delays[#delays + 1] = s end, delays
end

T.stats = cosocket.stats
T.ngx = ngx

function M.run()
  ngx.req.read_body()
  local req = cjson.decode(ngx.req.get_body_data() or "")
  ngx.header["Content-Type"] = "application/json"
  if type(req) ~= "table" or type(req.code) ~= "string" then
    ngx.status = 400
    return ngx.say('{"error":"want {code, args}"}')
  end
  local f, err = loadstring("local vertexops, args, T = ...\n" .. req.code, "=scenario")
  if not f then
    return ngx.say(cjson.encode { ok = false, error = "does not compile: " .. err })
  end
  local before = {}
  for k, v in pairs(cosocket.stats) do before[k] = v end
  local ok, res = xpcall(f, function(e)
    if type(e) == "table" then return e end
    return debug.traceback(tostring(e), 2)
  end, vertexops, req.args or {}, T)
  local stats = {}
  for k, v in pairs(cosocket.stats) do stats[k] = v - before[k] end
  local doc = { ok = ok, stats = stats }
  if ok then doc.result = plain(res, 0) else doc.error = plain(res, 0) end
  local text, eerr = cjson.encode(doc)
  ngx.say(text or cjson.encode { ok = false, error = "result not encodable: " .. tostring(eerr) })
end

return M
