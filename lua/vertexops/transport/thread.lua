-- vertexops.transport.thread: what runs on an nginx worker thread (ngx.run_worker_thread) for vertexops.
-- Each worker thread has its own Lua state; this module keeps one libcurl handle per state so the
-- thread's connections stay alive between calls. Results cross back as plain values and tables.
local core = require "vertexops.core"

local error, pcall, setmetatable, type = error, pcall, setmetatable, type

local _M = {}
local handle

--- One exchange on this worker thread's handle.
---@param req table a built request
---@param token? string
---@return boolean ok
---@return table result_or_err (an error without its metatable: it crosses threads as a plain table)
---@return table? headers
function _M.exchange(req, token)
  if not handle then handle = core.handle() end
  local called, ok, res, headers = pcall(handle.call, handle, req, token)
  if not called then
    -- an error object raised before any I/O (a token that cannot go in a header): it crosses back
    -- as the exchange's failure, its fields intact (a raised table would arrive as a string)
    if type(ok) ~= "table" then error(ok, 0) end
    return false, setmetatable(ok, nil)
  end
  if not ok then setmetatable(res, nil) end
  return ok, res, headers
end

return _M
