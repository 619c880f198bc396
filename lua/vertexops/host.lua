-- vertexops.host: what the host running us allows -- which nginx phase runs (the transports
-- choose by it: lua/vertexops/transport/), sleeping without owning it (ngx.sleep in OpenResty's
-- yieldable phases, else nanosleep), and the coroutines client:start() drives (whose sleeps and
-- exchanges hand control back to the caller) with what their requests hold (hold, unhold).
local core = require "vertexops.core"
local clock_of = require("vertexops.deadline").clock_of

local pcall, rawget, select, setmetatable = pcall, rawget, select, setmetatable
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

-- In nginx a sleep of SPREAD_MIN seconds or more lasts up to SPREAD (2 %, at most SPREAD_MAX)
-- longer, at random: requests polling in step (1,000 handlers that cancelled at once) then wake
-- over a few dozen event-loop iterations instead of all in one, which would hold the worker for
-- as long as they all take to send their next request (spec/09_hosts_openresty_load_spec.lua). Never
-- shorter: a Retry-After is honoured whole.
local SPREAD, SPREAD_MIN, SPREAD_MAX = 0.02, 0.1, 0.03
local math_min, math_random = math.min, math.random

--- Sleeps s seconds: ngx.sleep in a yieldable nginx phase, else nanosleep.
---@param s number
function M.sleep(s)
  local ngx = M.nginx_phase()
  if ngx then
    if s >= SPREAD_MIN then s = s + math_random() * math_min(SPREAD * s, SPREAD_MAX) end
    return ngx.sleep(s)
  end
  return core.sleep(s)
end
local default_sleep = M.sleep

-- Coroutines run by client:start(), and their requests. M.any_driver: whether this Lua state has
-- made one yet (set where an entry is added; never cleared): until then no code runs in one, and a
-- hot path skips coroutine.running(), which LuaJIT does not compile (a trace ends at it).
local drivers = setmetatable({}, { __mode = "k" })
M.drivers = drivers
M.any_driver = false
-- Light threads run by client:start() inside nginx (ngx.thread.spawn), and their requests.
local owners = setmetatable({}, { __mode = "k" })
M.owners = owners

--- The request (lua/vertexops/request.lua) whose coroutine is running, if any.
---@return vertexops.Request?
function M.driver()
  local co = coroutine_running()
  return co and drivers[co]
end

--- The started request (driven by poll() or a light thread) whose code is running, if any.
---@return vertexops.Request?
function M.request()
  local co = coroutine_running()
  return co and (drivers[co] or owners[co])
end

--- Records that the running started request holds something until release() is called
--- (req:close() calls it); returns a holder for M.unhold, or nil when no started request runs.
---@param release fun()
---@return table? holder
function M.hold(release)
  local r = M.request()
  if not r then return nil end
  local held = r.held
  if not held then
    held = {}
    r.held = held
  end
  local holder = { r = r, release = release }
  held[holder] = true
  return holder
end

--- Forgets what M.hold recorded, without releasing it (the holder gives it back itself; nil is
--- ignored).
---@param holder? table
function M.unhold(holder)
  local held = holder and holder.r.held
  if held then held[holder] = nil end
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
  M.any_driver = true
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
  if co and drivers[co] then return coroutine_yield("sleep", s, clock_of(o), o.sleep or default_sleep) end
  return (o.sleep or default_sleep)(s)
end

return M
