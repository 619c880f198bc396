-- vertexops.nginx: an opt-in wrapper for nginx handlers (content phase). An error that escapes a
-- handler is logged by lua-nginx-module as "runtime error: unknown reason" when it is a table (as
-- every vertexops error is) and answered with nginx's HTML 500; handle(f, ...) runs f instead, logs
-- tostring(err) ("Tag: message") and answers a JSON 500.
--
--   content_by_lua_block {
--     require("vertexops.nginx").handle(function()
--       local op, cancelled = client:cancel_and_wait(ngx.var.arg_name)
--       return { cancelled = cancelled, operation = op }   -- answered as JSON (200)
--     end)
--   }
local errors = require "vertexops.errors"

local pcall, rawget, tostring, type = pcall, rawget, tostring, type
local _G = _G

local M = {}

-- The JSON answer of an error: {"error": {"tags": [...], "message": "..."}}; the tags of a
-- vertexops error ({"Error"} for any other), its one-line message (never a token: the contract).
local function error_body(err)
  if errors.is_error(err) then
    return { error = { tags = err.tags, message = err.message, code = err.code } }
  end
  return { error = { tags = { "Error" }, message = tostring(err) } }
end

--- handle(f, ...): runs f(...) in the current nginx request. A non-nil result is answered as JSON
--- (status 200 unless f set ngx.status); nil means f answered itself. An error is logged at ERR with
--- tostring(err) and, when the headers are not sent yet, answered as a JSON 500. Returns true when f
--- succeeded, false and the error otherwise.
---@param f function
---@return boolean ok, any err
function M.handle(f, ...)
  if type(f) ~= "function" then
    errors.raise("TypeError", "vertexops.nginx.handle: f must be a function, got " .. type(f))
  end
  local ngx = rawget(_G, "ngx")
  if type(ngx) ~= "table" then errors.raise("ValueError", "vertexops.nginx.handle: not inside nginx (no ngx)") end
  local cjson = require "cjson.safe"
  local ok, res = pcall(f, ...) -- pcall yields through in LuaJIT, as cosockets need
  if ok then
    if res ~= nil then
      ngx.header["Content-Type"] = "application/json"
      ngx.say(cjson.encode(res))
    end
    return true
  end
  ngx.log(ngx.ERR, tostring(res))
  if not ngx.headers_sent then
    ngx.status = 500
    ngx.header["Content-Type"] = "application/json"
    ngx.say(cjson.encode(error_body(res)) or '{"error":{"tags":["Error"]}}')
  end
  return false, res
end

return M
