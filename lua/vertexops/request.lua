-- vertexops.request: the non-blocking API. client:start(method, ...) runs the blocking method in a
-- coroutine whose HTTP exchanges go to the client's libcurl multi handle and whose sleeps return to
-- the caller: one policy code path for retries, deadlines and waiting, stepped by req:poll()
-- without ever blocking. The bulk calls (fleet.lua) run their requests the same way, side by side.
local core = require "vertexops.core"
local host = require "vertexops.host"
local Client = require "vertexops.client"

local error, getmetatable, pairs, pcall, rawget, select, setmetatable, tostring, type =
  error, getmetatable, pairs, pcall, rawget, select, setmetatable, tostring, type
local unpack = table.unpack or unpack -- luacheck: ignore 143
local math_max, math_min = math.max, math.min
local coroutine_create, coroutine_resume, coroutine_running, coroutine_status, coroutine_yield =
  coroutine.create, coroutine.resume, coroutine.running, coroutine.status, coroutine.yield
-- coroutine.isyieldable is Lua 5.3+ (and LuaJIT). On 5.2 any coroutine but the main one may yield
-- (pcall included); on PUC 5.1 whether a pcall is in the way cannot be told, so req:wait() blocks.
local coroutine_isyieldable = coroutine.isyieldable
  or _VERSION == "Lua 5.2" and function() return not select(2, coroutine_running()) end
  or nil
local is = core.is
local drivers = host.drivers

local errors = require "vertexops.errors"
local raise = errors.raise

local STARTABLE = { cancel = true, get = true, delete = true, list = true, wait = true,
                    cancel_and_wait = true, wait_once = true, cancel_all = true }

---@class vertexops.Request a started request (client:start): stepped by poll(), never blocking
---@field client vertexops.Client
---@field done? true once the call has ended
---@field ok? boolean when done: true if it returned, false if it raised
---@field error? vertexops.Error when done and not ok
---@field results? table when done and ok: pcall's packed results
local Request = {}
Request.__index = Request

local function pack(...) return { n = select("#", ...), ... } end

---@return userdata multi the client's libcurl multi handle, made on first use
function Client:_multi()
  if not self.multi then self.multi = core.multi() end
  return self.multi
end

-- Easy handles for non-blocking transfers: borrowed from a pool, given back when done.
---@return userdata handle
function Client:_borrow()
  local pool = self.pool
  local n = pool and #pool or 0
  if n > 0 then
    local h = pool[n]
    pool[n] = nil
    return h
  end
  local h = core.handle()
  h:share(self.share)
  self.handles = self.handles or {}
  self.handles[#self.handles + 1] = h
  return h
end

-- A handle with a transfer in flight that nobody will finish (its request was closed): closed,
-- which takes it off the multi and wipes its request's headers, never reused; its counts kept.
---@param h userdata
function Client:_retire(h)
  local st = h:stats()
  local retired = self.retired or { requests = 0, connects = 0 }
  retired.requests, retired.connects = retired.requests + st.requests, retired.connects + st.connects
  self.retired = retired
  h:close()
  local handles = self.handles or {}
  for i = #handles, 1, -1 do
    if handles[i] == h then table.remove(handles, i) end
  end
end

---@param h userdata
function Client:_give_back(h)
  local pool = self.pool
  if not pool then
    pool = {}
    self.pool = pool
  end
  pool[#pool + 1] = h
end

-- Moves every non-blocking transfer of the client forward, without blocking. A host polling many
-- requests in one frame pays for one perform per millisecond, not one per request (libcurl walks
-- every transfer on each perform); force skips that.
local PERFORM_INTERVAL = 0.001
---@param force? boolean
function Client:_perform(force)
  local multi = self.multi
  if not multi then return end
  local now = core.clock()
  if not force and self.performed_at and now - self.performed_at < PERFORM_INTERVAL then return end
  self.performed_at = now
  multi:perform()
end

--- client:poll() -> how many started requests are still running. Steps every request of the
--- client once (one libcurl perform for all): for hosts with many requests in flight.
---@return integer running
function Client:poll()
  self:_perform(true)
  local running = 0
  for r in pairs(self.running or {}) do
    if r:_advance() then self.running[r] = nil else running = running + 1 end
  end
  return running
end

--- client:start(method, ...) -> a request stepped by req:poll() (never blocks) or req:wait().
--- method: "cancel", "get", "delete", "list", "wait", "cancel_and_wait" or "wait_once".
--- Bad arguments raise TypeError or ValueError here, before any I/O.
---@param method "cancel"|"get"|"delete"|"list"|"wait"|"cancel_and_wait"|"wait_once"
---@param ... any the arguments of that method
---@return vertexops.Request
function Client:start(method, ...)
  if type(method) ~= "string" then raise("TypeError", "method must be a string, got " .. type(method)) end
  if not STARTABLE[method] then raise("ValueError", "method '" .. method .. "' cannot be started") end
  local args = pack(...)
  local r = self:_start(function() return self[method](self, unpack(args, 1, args.n)) end)
  if r.done and not r.ok and (is(r.error, "TypeError") or is(r.error, "ValueError")) then error(r.error, 0) end
  return r
end

-- Inside nginx (a phase where cosockets and light threads work) a request is a light thread
-- (ngx.thread.spawn) running fn with the call's own transport (cosockets by default) and ngx.sleep:
-- it moves on by itself whenever the nginx request that started it yields, poll() only looks at
-- it, and block() waits on a semaphore its end posts. It belongs to that nginx request (nginx
-- ends it with the request). Elsewhere it is a coroutine driven by poll() over the multi handle.
local function finish_light(r, ok, ...)
  r.done, r.ok = true, ok
  if ok then r.results = pack(true, ...) else r.error = ... end
  if r.client.running then r.client.running[r] = nil end
  local waker = r.waker
  if waker then
    r.waker = nil
    waker:post(1)
  end
end

local function start_light(self, ngx, fn)
  local r = setmetatable({ client = self, light = true }, Request)
  self.running = self.running or {}
  self.running[r] = true
  local spawned, err = ngx.thread.spawn(function()
    local co = coroutine_running()
    host.owners[co] = r
    finish_light(r, pcall(fn))
    host.owners[co] = nil
  end)
  if not spawned then finish_light(r, false, errors.new("ConnectionError",
    "nginx could not start a light thread: " .. tostring(err))) end
  r.thread = spawned
  return r
end

-- A request running fn in a coroutine driven by poll() (a light thread inside nginx).
---@param fn function
---@return vertexops.Request
function Client:_start(fn)
  local ngx = host.cosocket_phase()
  if ngx and ngx.thread and not host.driver() then return start_light(self, ngx, fn) end
  local r = setmetatable({ client = self }, Request)
  r.co = coroutine_create(fn)
  drivers[r.co] = r
  host.any_driver = true
  self.running = self.running or {}
  self.running[r] = true
  r:_step()
  return r
end

-- Inside the request's coroutine: one exchange on the multi handle, yielding until it is done.
-- The borrowed handle goes back to the pool on every path, a transfer that fails to start included.
---@param client vertexops.Client
---@param req table a built request
---@param token? string
---@return boolean ok
---@return table|vertexops.Error result_or_err
---@return table? headers
function Request:_exchange(client, req, token, meter)
  local h = client:_borrow()
  local started, err = pcall(h.start, h, req, client.multi or client:_multi(), token)
  if not started then
    client:_give_back(h)
    error(err, 0)
  end
  self.transfer = h
  coroutine_yield("io")
  self.transfer = nil
  local finished, ok, res, headers = pcall(h.finish, h)
  if meter and finished then require("vertexops.transport.curl").measure(h, meter) end
  local pool = client.pool -- (Client:_give_back inline)
  if pool then pool[#pool + 1] = h else client:_give_back(h) end
  if not finished then error(ok, 0) end
  return ok, res, headers
end

--- req:close(): abandons the request (idempotent; also __close). Whatever it holds is given back
--- at once: its libcurl handle (a transfer in flight is stopped), a TLS-handshake or worker-thread
--- slot (inside nginx), a token fetch it leads (a request waiting for that fetch fetches on its
--- own at once) and a shared_dict lock. Inside nginx its light thread is killed when close() runs
--- in the code that started it (nginx lets no other kill it). Afterwards poll(), result() and
--- wait() raise ValueError; a request that had already ended just becomes closed.
function Request:close()
  if getmetatable(self) ~= Request then
    raise("TypeError", "request:close() needs a request as its receiver (called with '.' instead of ':'?)")
  end
  if self.closed then return end
  self.closed = true
  local client = self.client
  if client.running then client.running[self] = nil end
  if self.light and not self.done and self.thread then
    local ngx = rawget(_G, "ngx")
    if ngx then pcall(ngx.thread.kill, self.thread) end
  end
  local h = self.transfer
  if h then
    self.transfer = nil
    if h.retire then h:retire() else client:_retire(h) end -- a bulk call's window (fleet.lua), or a handle
  end
  local held = self.held
  self.held = nil
  for holder in pairs(held or {}) do holder.release() end
  if self.co then drivers[self.co] = nil end
  self.co, self.wake = nil, nil
end
Request.__close = Request.close

local function check_open(self, m)
  if self.closed then raise("ValueError", "request:" .. m .. "() on a closed request") end
end

-- Resumes the coroutine once, and records why it stopped.
function Request:_step()
  local res = pack(coroutine_resume(self.co))
  if coroutine_status(self.co) == "dead" then
    drivers[self.co] = nil
    if self.client.running then self.client.running[self] = nil end
    self.done, self.ok = true, res[1]
    if res[1] then
      self.results = res
    else
      self.error = res[2]
    end
  elseif res[2] == "sleep" then
    self.clock, self.sleep = res[4], res[5]
    self.wake = self.clock() + res[3]
  end
end

-- Steps the request if what it waits for has happened (the multi handle was performed before).
---@return boolean done
function Request:_advance()
  if self.done then return true end
  if self.transfer then
    if self.transfer:done() then self:_step() end
  elseif self.wake and self.clock() >= self.wake then
    self.wake = nil
    self:_step()
  end
  return self.done
end

-- The outcome of a finished request: its results, or its error.
function Request:_outcome()
  if self.ok then return unpack(self.results, 2, self.results.n) end
  return self.error
end

--- req:result() -> done, result_or_err[, ...] as poll() gives them, without stepping anything
--- (after client:poll() has stepped every request).
---@return boolean done
---@return any ... the call's results, or its error object (req.ok tells which)
function Request:result()
  check_open(self, "result")
  if self.done then return true, self:_outcome() end
  return false
end

--- req:poll() -> done, result_or_err[, ...]: never blocks. When done, the call's results follow
--- (cancel_and_wait: operation, cancelled), or its error object (req.ok tells which).
---@return boolean done
---@return any ... the call's results, or its error object
function Request:poll()
  check_open(self, "poll")
  if not self.done then
    self.client:_perform()
    self:_advance()
  end
  if self.done then return true, self:_outcome() end
  return false
end

-- Blocks until one of requests[1..n] can make progress (a transfer has news, or a sleep ends);
-- io: the caller has transfers of its own in the multi handle too (a window's direct sends).
-- A wait on the multi handle lasts POLL_MAX at most: libcurl (7.88) can sit on HTTP/2 answers it
-- has already read until the socket has news again, which with many streams answered at once
-- stalls a whole poll (bench/RESULTS.md, "Fleet"); a short poll picks them up.
local POLL_MAX = 0.01
local LIGHT_MAX = 1 -- seconds a wait on light threads lasts at most before looking again
local function block(client, requests, n, io)
  local wake, sleeper, light = nil, nil, nil
  io = io or false
  for k = 1, n or #requests do
    local r = requests[k]
    if r.light then
      if r.done then return end
      light = light or require("ngx.semaphore").new(0)
      r.waker = light
    elseif r.transfer then
      io = true
    elseif r.wake and (not wake or r.wake < wake) then
      wake, sleeper = r.wake, r
    end
  end
  if light then -- light threads run while this one waits for the first of them to end
    light:wait(LIGHT_MAX)
    for k = 1, n or #requests do requests[k].waker = nil end
  elseif io then
    client:_multi():wait(wake and math_max(0, math_min(POLL_MAX, wake - sleeper.clock())) or POLL_MAX)
  elseif sleeper then
    sleeper.sleep(math_max(0, wake - sleeper.clock()))
  end
end
Request.block = block

--- req:wait() -> the call's results, or raises its error. Inside a coroutine it yields between
--- steps (the host resumes it); elsewhere it blocks.
---@return any ... the call's results
function Request:wait()
  check_open(self, "wait")
  while not self:poll() do
    local co = coroutine_running()
    if co and not drivers[co] and not self.light and coroutine_isyieldable and coroutine_isyieldable() then
      coroutine_yield()
    else
      block(self.client, { self })
    end
  end
  if self.ok then return self:_outcome() end
  error(self.error, 0)
end

return Request
