-- vertexops.thread: what runs on an nginx worker thread (ngx.run_worker_thread) for vertexops.
-- Each worker thread has its own Lua state; this module keeps one libcurl handle per state so the
-- thread's connections stay alive between calls. Results cross back as plain values and tables.
local core = require "vertexops.core"

local _M = {}
local handle

function _M.exchange(req)
  if not handle then handle = core.handle() end
  local ok, res, headers = handle:call(req)
  if not ok then setmetatable(res, nil) end
  return ok, res, headers
end

return _M
