-- vertexops.host: what the host running us allows -- sleeping without owning it (ngx.sleep in
-- OpenResty's yieldable phases, else nanosleep), exchanges on an nginx worker thread, and the
-- coroutines client:start() drives (whose sleeps and exchanges hand control back to the caller).
local core = require "vertexops.core"

local pairs, pcall, rawget, select, setmetatable, tostring, type =
  pairs, pcall, rawget, select, setmetatable, tostring, type
local math_max, string_format = math.max, string.format
local POOL = require("vertexops.options").POOL
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
-- as long as they all take to send their next request (spec/26_openresty_load_spec.lua). Never
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

-- Slots with owner deadlines: at most `size` holders at once, each holding its slot until it gives
-- it back or until its own deadline (on ngx.now()) passes, whichever comes first. nginx does not
-- unwind a light thread it kills (the nginx request that started it ended): code after the yield
-- never runs, so a slot given back only "when we are done" would be lost for good. Waiters queue on
-- a semaphore (first come, first served) and wake when a slot is given back or a holder's deadline
-- passes; whoever looks reclaims the slots past their deadline.
local Slots = {}
Slots.__index = Slots

---@param size integer
function M.slots(size)
  return setmetatable({ size = size, held = {}, sema = require("ngx.semaphore").new(size) }, Slots)
end

-- Gives the slots whose holder's deadline passed back to the semaphore; returns the soonest
-- deadline of the others (nil when none).
function Slots:_reap(now)
  local soonest
  for key, hold_until in pairs(self.held) do
    if hold_until <= now then
      self.held[key] = nil
      self.sema:post(1)
    elseif not soonest or hold_until < soonest then
      soonest = hold_until
    end
  end
  return soonest
end

--- Takes a slot, held until hold_until at most (ngx.now() time), waiting until wait_until at most;
--- returns its key, or nil, "timeout" (or the semaphore's error).
---@param ngx table
---@param hold_until number
---@param wait_until number
function Slots:take(ngx, hold_until, wait_until)
  while true do
    ngx.update_time()
    local now = ngx.now()
    local soonest = self:_reap(now)
    local left = wait_until - now
    local wait = left
    if soonest and soonest - now < wait then wait = soonest - now end
    -- (the semaphore counts whole milliseconds: a shorter wait would not wait at all)
    if left > 0 and wait < 0.001 then wait = 0.001 end
    local got, err = self.sema:wait(math_max(0, wait))
    if got then
      local key = {}
      self.held[key] = hold_until
      return key
    end
    if err ~= "timeout" then return nil, err end
    ngx.update_time()
    if ngx.now() >= wait_until then return nil, "timeout" end
  end
end

--- Gives a slot back (idempotent: a key already reclaimed or given back is ignored).
function Slots:give(key)
  if key and self.held[key] then
    self.held[key] = nil
    self.sema:post(1)
  end
end

--- How many slots are held (reclaiming those past their deadline first); for specs.
function Slots:count(ngx)
  self:_reap(ngx.now())
  local n = 0
  for _ in pairs(self.held) do n = n + 1 end
  return n
end

-- Exchanges on worker threads are limited per nginx worker: each needs one of the worker's Lua VMs
-- for threads (lua_worker_thread_vm_pool_size, 100 by default) and past that ngx.run_worker_thread
-- fails at once ("no available Lua vm"). Slots per thread pool, thread_pool_size of them, make
-- the rest wait their turn, within the exchange's own timeout (TimeoutError past it). A slot is
-- held until its exchange ends, at most until the exchange's timeout (plus THREAD_GRACE) has
-- passed: the worker thread finishes its exchange by then even when the light thread that waits
-- for it was killed.
local THREAD_GRACE = 1
local thread_slots = {} -- pool name -> slots
M.thread_slots = thread_slots

-- The slots of a thread pool (new ones when thread_pool_size changed: holders of the old ones
-- give their slots back to them).
local function thread_slot(name, size)
  local slots = thread_slots[name]
  if not (slots and slots.size == size) then
    slots = M.slots(size)
    thread_slots[name] = slots
  end
  return slots
end

-- One exchange on a worker thread of the thread pool opts.thread_pool (default "vertexops").
-- The thread's Lua state keeps its own handle (lua/vertexops/thread.lua), so connections are reused.
---@param ngx table
---@param o vertexops.Options
---@param req table a built request (its timeout bounds the wait for a slot too)
---@param token? string
---@return boolean ok
---@return table|vertexops.Error result_or_err
---@return table? headers
function M.thread_exchange(ngx, o, req, token)
  local pool = o.thread_pool or "vertexops"
  local size = o.thread_pool_size or POOL.thread_pool_size
  local slots = thread_slot(pool, size)
  local limit = req.timeout or core.EXCHANGE_TIMEOUT
  ngx.update_time()
  local started = ngx.now()
  local key, why = slots:take(ngx, started + limit + THREAD_GRACE, started + limit)
  if not key then
    return false, core.error({ "TimeoutError" }, string_format("no worker thread of pool '%s' was free within "
      .. "%g s (option thread_pool_size: %d exchanges at once per nginx worker; %s)", pool, limit, size,
      tostring(why)))
  end
  local function release() slots:give(key) end
  local holder = M.hold(release)
  ngx.update_time()
  local waited = ngx.now() - started
  if waited > 0 then -- the time spent queueing counts in the exchange's timeout (req may be shared)
    local copy = {}
    for k, v in pairs(req) do copy[k] = v end
    copy.timeout = math_max(0.001, limit - waited)
    req = copy
  end
  local called, ok, a, b, c = pcall(ngx.run_worker_thread, pool, "vertexops.thread", "exchange", req, token)
  M.unhold(holder)
  release()
  if not (called and ok) then
    return false, core.error({ "ConnectionError" }, "nginx worker thread failed: " .. tostring(called and a or ok)
      .. " (is there a 'thread_pool " .. pool .. "' directive?)")
  end
  if not a and type(b) == "table" then setmetatable(b, core.error_mt) end -- tables cross without metatables
  return a, b, c
end

-- Coroutines run by client:start(), and their requests.
local drivers = setmetatable({}, { __mode = "k" })
M.drivers = drivers
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
