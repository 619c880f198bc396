-- vertexops.transport.curl: libcurl in the calling thread (option transport = "curl", the default
-- outside nginx; inside it the exchange blocks the worker's event loop). The exchange is C's
-- (csrc/handle.c, handle:call): the client's easy handle, whose connections, DNS and TLS sessions
-- are shared with its other handles. Requests of client:start() driven by poll() take libcurl's
-- non-blocking path instead: a borrowed easy handle on the client's multi handle
-- (lua/vertexops/request.lua, Request:_exchange).
--
-- exchange(handle, o, req, token) -> true, decoded[, headers] | false, err  (handle:call's own)
local M = {}

--- One exchange on a client's easy handle (o, the call's options, is the transports' common
--- argument: libcurl's are in req, as core.build put them there).
---@param handle userdata a core.handle()
---@param o vertexops.Options
---@param req table a built request
---@param token? string
---@param meter? table filled with the exchange's timings, sizes and status (lua/vertexops/hooks.lua)
---@return boolean ok
---@return table|vertexops.Error result_or_err
---@return table? headers
function M.exchange(handle, o, req, token, meter) -- luacheck: no unused args
  if not meter then return handle:call(req, token) end
  local ok, res, headers = handle:call(req, token)
  M.measure(handle, meter)
  return ok, res, headers
end

--- measure(handle, meter): what libcurl measured of the handle's last transfer (handle:info():
--- CURLINFO_*_TIME_T, sizes, status), into meter (the hooks' attempt info).
function M.measure(handle, meter)
  handle:info(meter)
  meter.transport = "curl"
end

return M
