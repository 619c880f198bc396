-- vertexops.host: what the host running us allows -- sleeping without owning it (ngx.sleep in
-- OpenResty's yieldable phases, else nanosleep), exchanges on an nginx worker thread, and the
-- coroutines client:start() drives (whose sleeps and exchanges hand control back to the caller).
local core = require "vertexops.core"

local pcall, rawget, select, setmetatable, tostring, type = pcall, rawget, select, setmetatable, tostring, type
local unpack = table.unpack or unpack -- luacheck: ignore 143
local coroutine_create, coroutine_resume, coroutine_running, coroutine_status, coroutine_yield =
  coroutine.create, coroutine.resume, coroutine.running, coroutine.status, coroutine.yield
local _G = _G

local M = {}

local YIELDABLE = { rewrite = true, access = true, content = true, timer = true }

--- The ngx table when running in one of nginx's yieldable phases, else nil.
---@return table?
function M.nginx_phase()
  local ngx = rawget(_G, "ngx")
  return ngx and ngx.get_phase and YIELDABLE[ngx.get_phase()] and ngx or nil
end

-- Phases whose handlers may use cosockets (lua-nginx-module's documentation of ngx.socket.tcp).
local COSOCKET = { rewrite = true, access = true, content = true, timer = true, ssl_cert = true,
                   ssl_session_fetch = true, ssl_client_hello = true }

--- ngx when the running code is in an nginx phase where cosockets work, else nil.
function M.cosocket_phase()
  local ngx = rawget(_G, "ngx")
  return ngx and ngx.get_phase and COSOCKET[ngx.get_phase()] and ngx.socket and ngx.socket.tcp and ngx or nil
end

--- The nginx phase running, for messages ("outside nginx" when there is none).
function M.phase_name()
  local ngx = rawget(_G, "ngx")
  return ngx and ngx.get_phase and ("the " .. ngx.get_phase() .. " phase") or "outside nginx"
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

local function pack(...) return { n = select("#", ...), ... } end

-- pcall for code that may yield under client:start(). PUC Lua 5.1 cannot yield across pcall: there
-- f runs in a coroutine of its own, working for the same request, whose yields are passed on.
local PCALL_YIELDS = _VERSION ~= "Lua 5.1" or rawget(_G, "jit") ~= nil
function M.pcall(f, ...)
  local outer = coroutine_running()
  local driver = outer and drivers[outer]
  if PCALL_YIELDS or not driver then return pcall(f, ...) end
  local co = coroutine_create(f)
  drivers[co] = driver
  local res = pack(coroutine_resume(co, ...))
  while coroutine_status(co) ~= "dead" do
    res = pack(coroutine_resume(co, coroutine_yield(unpack(res, 2, res.n))))
  end
  drivers[co] = nil
  return unpack(res, 1, res.n)
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
