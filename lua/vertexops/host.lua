-- vertexops.host: what the host running us allows -- sleeping without owning it (ngx.sleep in
-- OpenResty's yieldable phases, else nanosleep), exchanges on an nginx worker thread, and the
-- coroutines client:start() drives (whose sleeps and exchanges hand control back to the caller).
local core = require "vertexops.core"

local rawget, setmetatable, tostring, type = rawget, setmetatable, tostring, type
local coroutine_running, coroutine_yield = coroutine.running, coroutine.yield
local _G = _G

local M = {}

local YIELDABLE = { rewrite = true, access = true, content = true, timer = true }

--- The ngx table when running in one of nginx's yieldable phases, else nil.
---@return table?
function M.nginx_phase()
  local ngx = rawget(_G, "ngx")
  return ngx and ngx.get_phase and YIELDABLE[ngx.get_phase()] and ngx or nil
end

--- Sleeps s seconds: ngx.sleep in a yieldable nginx phase, else nanosleep.
---@param s number
function M.sleep(s)
  local ngx = M.nginx_phase()
  if ngx then return ngx.sleep(s) end
  return core.sleep(s)
end
local default_sleep = M.sleep

-- One exchange on a worker thread of the thread pool opts.thread_pool (default "vertexops").
-- The thread's Lua state keeps its own handle (lua/vertexops/thread.lua), so connections are reused.
---@param ngx table
---@param o vertexops.Options
---@param req table a built request
---@param token? string
---@return boolean ok
---@return table|vertexops.Error result_or_err
---@return table? headers
function M.thread_exchange(ngx, o, req, token)
  local ok, a, b, c = ngx.run_worker_thread(o.thread_pool or "vertexops", "vertexops.thread", "exchange", req, token)
  if not ok then
    return false, core.error({ "ConnectionError" }, "nginx worker thread failed: " .. tostring(a)
      .. " (is there a 'thread_pool " .. (o.thread_pool or "vertexops") .. "' directive?)")
  end
  if not a and type(b) == "table" then setmetatable(b, core.error_mt) end -- tables cross without metatables
  return a, b, c
end

-- Coroutines run by client:start(), and their requests.
local drivers = setmetatable({}, { __mode = "k" })
M.drivers = drivers

--- The request (lua/vertexops/request.lua) whose coroutine is running, if any.
---@return vertexops.Request?
function M.driver()
  local co = coroutine_running()
  return co and drivers[co]
end

-- Waits s seconds: under client:start() by handing control back to the caller of poll().
---@param o vertexops.Options its sleep and clock
---@param s number seconds
function M.sleep_for(o, s)
  local co = coroutine_running()
  if co and drivers[co] then return coroutine_yield("sleep", s, o.clock or core.clock, o.sleep or default_sleep) end
  return (o.sleep or default_sleep)(s)
end

return M
