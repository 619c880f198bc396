-- vertexops.transport.thread: libcurl on an nginx worker thread (ngx.run_worker_thread), the
-- transport of option transport = "thread" inside nginx's yieldable phases. Both halves are here:
--
-- exchange(ngx, o, req, token) -> true, decoded[, headers] | false, err  (as handle:call)
--   runs in the nginx worker (a light thread or a request's handler): waits for a slot of the
--   thread pool o.thread_pool, then hands the exchange to a worker thread and waits for it.
-- on_worker(req, token) -> the same
--   runs on the worker thread (the function ngx.run_worker_thread is given, by module and name).
--   Each worker thread has its own Lua state; this module keeps one libcurl handle per state so the
--   thread's connections stay alive between calls. Results cross back as plain values and tables.
local core = require "vertexops.core"
local host = require "vertexops.host"
local slots_new = require("vertexops.transport.slots").new
local options = require "vertexops.options"
local errors = require "vertexops.errors"
local POOL, DEFAULTS = options.POOL, options.DEFAULTS

local error, pairs, pcall, setmetatable, tostring, type = error, pairs, pcall, setmetatable, tostring, type
local math_max, string_format = math.max, string.format

local M = {}

-- The module and function ngx.run_worker_thread runs.
local MODULE, FUNCTION = "vertexops.transport.thread", "on_worker"

-- Exchanges on worker threads are limited per nginx worker: each needs one of the worker's Lua VMs
-- for threads (lua_worker_thread_vm_pool_size, 100 by default) and past that ngx.run_worker_thread
-- fails at once ("no available Lua vm"). Slots per thread pool, thread_pool_size of them, make
-- the rest wait their turn, within the exchange's own timeout (TimeoutError past it). A slot is
-- held until its exchange ends, at most until the exchange's timeout (plus THREAD_GRACE) has
-- passed: the worker thread finishes its exchange by then even when the light thread that waits
-- for it was killed (transport/slots.lua).
local THREAD_GRACE = 1
local thread_slots = {} -- pool name -> slots
M.slots = thread_slots

-- The slots of a thread pool (new ones when thread_pool_size changed: holders of the old ones
-- give their slots back to them).
local function thread_slot(name, size)
  local slots = thread_slots[name]
  if not (slots and slots.size == size) then
    slots = slots_new(size)
    thread_slots[name] = slots
  end
  return slots
end

-- One exchange on a worker thread of the thread pool opts.thread_pool (default "vertexops").
---@param ngx table
---@param o vertexops.Options
---@param req table a built request (its timeout bounds the wait for a slot too)
---@param token? string
---@return boolean ok
---@return table|vertexops.Error result_or_err
---@return table? headers
function M.exchange(ngx, o, req, token, meter)
  local pool = o.thread_pool or DEFAULTS.thread_pool
  local size = o.thread_pool_size or POOL.thread_pool_size
  local slots = thread_slot(pool, size)
  local limit = req.timeout or core.EXCHANGE_TIMEOUT
  ngx.update_time()
  local started = ngx.now()
  local key, why = slots:take(ngx, started + limit + THREAD_GRACE, started + limit)
  if not key then
    return errors.result("TimeoutError", string_format("no worker thread of pool '%s' was free within "
      .. "%g s (option thread_pool_size: %d exchanges at once per nginx worker; %s)", pool, limit, size,
      tostring(why)))
  end
  local function release() slots:give(key) end
  local holder = host.hold(release)
  ngx.update_time()
  local waited = ngx.now() - started
  if waited > 0 then -- the time spent queueing counts in the exchange's timeout (req may be shared)
    local copy = {}
    for k, v in pairs(req) do copy[k] = v end
    copy.timeout = math_max(0.001, limit - waited)
    req = copy
  end
  local called, ok, a, b, c, info = pcall(ngx.run_worker_thread, pool, MODULE, FUNCTION, req, token, meter ~= nil)
  host.unhold(holder)
  release()
  if not (called and ok) then
    return errors.result("ConnectionError", "nginx worker thread failed: " .. tostring(called and a or ok)
      .. " (is there a 'thread_pool " .. pool .. "' directive?)")
  end
  if not a and type(b) == "table" then setmetatable(b, core.error_mt) end -- tables cross without metatables
  if meter then -- the hooks' attempt info: libcurl's measures on the thread's handle
    if type(info) == "table" then
      for k, v in pairs(info) do meter[k] = v end
    end
    meter.transport = "thread"
  end
  return a, b, c
end

local handle -- this worker thread's libcurl handle (on_worker)

--- One exchange on this worker thread's handle.
---@param req table a built request
---@param token? string
---@return boolean ok
---@return table result_or_err (an error without its metatable: it crosses threads as a plain table)
---@return table? headers
---@return table? info with want_info: handle:info() of the exchange (the hooks' timings)
function M.on_worker(req, token, want_info)
  if not handle then handle = core.handle() end
  local called, ok, res, headers = pcall(handle.call, handle, req, token)
  if not called then
    -- an error object raised before any I/O (a token that cannot go in a header): it crosses back
    -- as the exchange's failure, its fields intact (a raised table would arrive as a string)
    if type(ok) ~= "table" then error(ok, 0) end
    return false, setmetatable(ok, nil)
  end
  if not ok then setmetatable(res, nil) end
  return ok, res, headers, want_info and handle:info() or nil
end

return M
