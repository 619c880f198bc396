-- vertexops.deadline: the one deadline a call runs against, on one clock. Every place that asks
-- "how long is left?" -- a call's retries and their sleeps, a wait, a token fetch (and the waits
-- for another's fetch, the nginx shared_dict lock), cancel_all -- asks the deadline object it was
-- given, and a bound of its own (a token request's 60 s, a fetch's lead) is a child of it that ends
-- no later than its parent (sub). Modelled on LuaSocket's timeout.c (start, total, what is left,
-- never negative). The clock is options.clock, resolved here (clock_of), or core.clock.
local core = require "vertexops.core"
local options = require "vertexops.options"

local getmetatable, setmetatable = getmetatable, setmetatable
local math_huge = math.huge

local M = {}

---@class vertexops.Deadline an instant on a clock; math.huge when unbounded
---@field _t number the instant (absolute, on _clock)
---@field _start number the clock's reading when it was made
---@field _clock fun(): number
local Deadline = {}
Deadline.__index = Deadline

--- The clock of options o: o.clock (options.copy wraps it in a check), else core.clock.
---@param o? vertexops.Options
---@return fun(): number
function M.clock_of(o)
  return o and o.clock or core.clock
end

--- deadline.at(t, clock): the deadline at instant t on clock (nil: unbounded); its start() is nil.
---@param t? number absolute, on clock
---@param clock? fun(): number core.clock when nil
---@return vertexops.Deadline
function M.at(t, clock)
  local d = setmetatable({ _t = t or math_huge, _clock = clock or core.clock }, Deadline)
  return d
end

--- deadline.new(seconds, clock): the deadline seconds from now on clock (nil: unbounded).
---@param seconds? number
---@param clock? fun(): number core.clock when nil
---@return vertexops.Deadline
function M.new(seconds, clock)
  clock = clock or core.clock
  local start = clock()
  -- (not a tail call of setmetatable: LuaJIT cannot compile a return through one, "NYI: return to
  -- lower frame", and a call's whole path then stayed in the interpreter)
  local d = setmetatable({ _t = seconds and start + seconds or math_huge, _start = start, _clock = clock }, Deadline)
  return d
end

--- The deadline of a call made with options o: o.timeout (or its default) from now, on o's clock.
---@param o vertexops.Options
---@return vertexops.Deadline
function M.for_call(o)
  return M.new(o.timeout or options.DEFAULTS.timeout, M.clock_of(o))
end

--- true when v is a deadline object.
function M.is(v)
  return getmetatable(v) == Deadline
end

-- core.clock's clock (CLOCK_MONOTONIC) read through LuaJIT's FFI where it can be (Linux), and the
-- parts it reads with: the same numbers, (double)tv_sec + (double)tv_nsec / 1e9 as csrc/sys.c's
-- vx_monotonic, without a C function called through the Lua API, which ends a LuaJIT trace (about
-- 200 instructions a request inside nginx, callgrind; issue 19 §4).
local function make_ffi_clock()
  if not rawget(_G, "jit") then return nil end
  local ok, ffi = pcall(require, "ffi")
  if not ok or ffi.os ~= "Linux" then return nil end
  if not pcall(ffi.typeof, "struct timespec") and not pcall(ffi.cdef, "struct timespec { long tv_sec; long tv_nsec; };") then
    return nil
  end
  local C = ffi.C
  if not pcall(function() return C.clock_gettime end)
    and not pcall(ffi.cdef, "int clock_gettime(int clk_id, struct timespec *tp);") then
    return nil
  end
  -- The timespec is read as four 32-bit words (tv_sec's low and high, tv_nsec's low and high;
  -- 64-bit little-endian Linux): a word is a plain Lua number, where reading a long field gives an
  -- int64 cdata -- an allocation of its own wherever the read is not compiled (two per reading, 48
  -- bytes). The same double as core.clock's: tv_sec is an integer below 2^53, so lo + hi * 2^32 is
  -- exact.
  if ffi.sizeof("struct timespec") ~= 16 or not ffi.abi("le") then return nil end
  local made, w = pcall(ffi.new, "uint32_t[4]")
  if not made then return nil end
  local ts = ffi.cast("struct timespec *", w) -- (w, kept below, holds the memory)
  local function clock()
    C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
    return (w[0] + w[1] * 4294967296) + w[2] / 1e9
  end
  -- (used only when it agrees with core.clock)
  local fine, t = pcall(clock)
  if not fine or type(t) ~= "number" or math.abs(t - core.clock()) > 1 then return nil end
  return clock, { C = C, ts = ts, w = w }
end

local fast, fast_parts

--- deadline.fast_clock() -> core.clock's clock read through LuaJIT's FFI (and its parts {C, ts, w},
--- for a caller that writes the read out: lua/vertexops/hooks.lua), else core.clock itself. Made
--- once. Deadline:left_now() reads with it; making a deadline keeps core.clock: that C call ends the
--- trace before Client:_run's loop, which a trace begun above it may not enter ("inner loop in root
--- trace": the call's whole path left to the interpreter, +5,000 a request).
---@return fun(): number
---@return table?
function M.fast_clock()
  if fast == nil then
    fast, fast_parts = make_ffi_clock()
    fast = fast or core.clock
  end
  return fast, fast_parts
end

local core_clock = core.clock

--- Seconds left, never negative (math.huge when unbounded): one value (callers pass it on as the
--- last argument of math.min and the like).
---@return number
function Deadline:left()
  return (self:left_now())
end

--- Seconds left, as left(), and the clock's reading they were taken from (what an attempt's timing
--- counts from: Client:_run).
---@return number left
---@return number now
function Deadline:left_now()
  local clock = self._clock
  if clock == core_clock then clock = fast or M.fast_clock() end
  local now = clock()
  local left = self._t - now
  return left > 0 and left or 0, now
end

--- true once the deadline has come.
---@return boolean
function Deadline:expired()
  return self._clock() >= self._t
end

--- true when the deadline comes within s seconds from now (a sleep of s would reach it).
---@param s number
---@return boolean
function Deadline:within(s)
  return self._clock() + s >= self._t
end

--- The instant (absolute, on the clock; math.huge when unbounded).
---@return number
function Deadline:at()
  return self._t
end

--- The clock's reading when the deadline was made (what elapsed times count from; nil for at()).
---@return number?
function Deadline:start()
  return self._start
end

--- The clock the deadline is on.
---@return fun(): number
function Deadline:clock()
  return self._clock
end

--- A child bound: s seconds from now, or this deadline when that comes sooner (never later).
---@param s number
---@return vertexops.Deadline
function Deadline:sub(s)
  local clock = self._clock
  local now = clock()
  local t = now + s
  if self._t < t then t = self._t end
  local d = setmetatable({ _t = t, _start = now, _clock = clock }, Deadline)
  return d
end

M.Deadline = Deadline
return M
