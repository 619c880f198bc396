-- vertexops.transport: one HTTP exchange, over the transport the option `transport` and the host
-- running us choose (docs/contract.md, "Hosts"):
--   "cosocket"  transport/cosocket.lua  HTTP/1.1 over ngx.socket.tcp; the default in nginx phases
--                                       where cosockets work, an error anywhere else
--   "thread"    transport/thread.lua    libcurl on an nginx worker thread; opt-in, yieldable nginx
--                                       phases only
--   "curl"      transport/curl.lua      libcurl in the calling thread; the default elsewhere
-- Each transport's exchange(means, o, req, token) -- means being the ngx table or the client's
-- easy handle -- returns as handle:call does: true, decoded[, headers] or false, err, and raises
-- only for bad arguments, before any I/O. All three end in the same classification (C's
-- vx_classify), so a call's results and errors do not depend on the transport. Requests of
-- client:start() driven by poll() (everywhere but nginx's cosocket phases, where they are light
-- threads that come here) go to the client's multi handle instead (lua/vertexops/request.lua).
local host = require "vertexops.host"
local curl = require "vertexops.transport.curl"
local cosocket = require "vertexops.transport.cosocket"
local thread = require "vertexops.transport.thread"
local raise = require("vertexops.errors").raise

local M = {}

--- One exchange of a built request, by o.transport (nil: the host's default).
---@param handle userdata the client's easy handle (transport "curl")
---@param o vertexops.Options
---@param req table a built request
---@param token? string
---@param meter? table filled with the exchange's timings, sizes and status (lua/vertexops/hooks.lua)
---@return boolean ok
---@return table|vertexops.Error result_or_err
---@return table? headers when req.want_headers
function M.exchange(handle, o, req, token, meter)
  local transport = o.transport
  if transport == "curl" then return curl.exchange(handle, o, req, token, meter) end
  if transport == "thread" then
    local ngx = host.nginx_phase()
    if not (ngx and ngx.run_worker_thread) then
      raise("ValueError", "transport 'thread' needs ngx.run_worker_thread in a yieldable nginx phase (rewrite, "
        .. "access, content, timer), not " .. host.phase_name())
    end
    return thread.exchange(ngx, o, req, token, meter)
  end
  local ngx = host.cosocket_phase()
  if ngx then return cosocket.exchange(ngx, o, req, token, meter) end
  if transport == "cosocket" then
    raise("ValueError", "transport 'cosocket' needs an nginx phase where cosockets work (rewrite, access, "
      .. "content, timer, ssl_certificate), not " .. host.phase_name())
  end
  return curl.exchange(handle, o, req, token, meter)
end

return M
