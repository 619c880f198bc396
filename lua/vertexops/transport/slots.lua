-- vertexops.transport.slots: slots with owner deadlines, for what the nginx transports hold at
-- most N of at once per worker (the TLS handshakes of transport/cosocket.lua, the worker threads
-- of transport/thread.lua). At most `size` holders at once, each holding its slot until it gives
-- it back or until its own deadline (on ngx.now()) passes, whichever comes first. nginx does not
-- unwind a light thread it kills (the nginx request that started it ended): code after the yield
-- never runs, so a slot given back only "when we are done" would be lost for good. Waiters queue on
-- a semaphore (first come, first served) and wake when a slot is given back or a holder's deadline
-- passes; whoever looks reclaims the slots past their deadline.
local pairs, setmetatable = pairs, setmetatable
local math_max = math.max

local M = {}

local Slots = {}
Slots.__index = Slots

---@param size integer
function M.new(size)
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

return M
