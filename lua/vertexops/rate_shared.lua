-- vertexops.rate_shared: option rate's window shared by the workers of one nginx
-- (`rate = {requests = n, per = s, shared_dict = "name"}`, a lua_shared_dict), for
-- lua/vertexops/rate.lua's permit.
--
-- The scheme: a sliding window counted in BUCKETS buckets of g = per / BUCKETS seconds, one dict
-- counter per bucket (key: the rate, the project and location, the bucket's number on the options'
-- clock -- the built-in clock is CLOCK_MONOTONIC, one for every process of a host). A request may
-- go when the current bucket and the BUCKETS before it (one more than per covers: a request is
-- counted for at least `per` seconds, wherever in its bucket it came) hold at most n with it.
-- Correct under concurrent workers with no lock, because the only write that admits is atomic:
--   1. read the older buckets, oldest first; 2. incr the current bucket (a reservation: its
--   answer counts every reservation made before it, admitted or not yet given back); 3. read the
--   clock again: a bucket that changed meanwhile gives the reservation back and starts over.
-- Of two workers racing for the last place, the one whose incr comes second sees the first's and
-- gives its own back (incr -1); a reservation given back only ever made another wait, never go.
-- A request's count moves, when its answer comes, to the answer's bucket (incr the new one, then
-- decr the old: counted twice for an instant, never zero times; read oldest first, a move is never
-- missed): Google counts a request on arrival, so the window frees it only `per` seconds after the
-- answer, as the local window does. A worker that must wait sleeps (host.sleep_for: ngx.sleep)
-- until the oldest counted bucket leaves the window, plus a jitter of up to a tenth of a bucket
-- (the waiting workers do not all wake on the same instant), and a worker that took its share of
-- the window (n / participants) or more in the last `per` seconds DEFER (0.3) of a bucket later:
-- the workers under their share take the freed places first, and one past it still takes what
-- they leave (no starvation, no place left unused). A permit at or after the call's deadline is
-- its TimeoutError.
--
-- Participants: each worker that takes a permit counts itself once per window period in the dict
-- (add of its pid, then incr of the period's count). A dict that is missing or fails (full: a
-- store that fails, or that evicted other entries) makes that window of the worker's
-- client local for good, at max(1, floor(n / participants)), participants being the last count
-- read (before any, the number of nginx workers), with one ngx.log warning per worker and dict:
-- never an error of the call. A worker the dict had answered (st.contacted) marks the fall
-- (st.fell): rate.lua keeps a silence first, as after Redis's fall ("a shared window's fall").
local host = require "vertexops.host"
local errors = require "vertexops.errors"

local math_floor, math_max, math_random = math.floor, math.max, math.random
local pcall, rawget, tostring, type = pcall, rawget, tostring, type
local string_format = string.format
local _G = _G

local M = {}

M.BUCKETS = 40 -- buckets per window: a request holds its place per + at most per / BUCKETS seconds
               -- (rate_redis.lua's 40: at 20, a place waited half a bucket, per / 40, more on average)
M.DEFER = 0.3  -- buckets a worker past its share waits more than the others for a freed place

local warned = {} -- dict names this worker warned about

local function ngx_of() return rawget(_G, "ngx") end

--- The lua_shared_dict named name, or nil and why not (not in nginx: nil, nil).
function M.dict(name)
  local ngx = ngx_of()
  local shared = ngx and ngx.shared
  if not shared then return nil, nil end
  local d = shared[name]
  if not d then return nil, "no lua_shared_dict of this nginx is named '" .. name .. "'" end
  return d
end

-- Calls dict:what(...) with pcall: value, or nil and the error.
local function call(dict, what, ...)
  local ok, a, b, c = pcall(dict[what], dict, ...)
  if not ok then return nil, tostring(a) end
  return a, b, c
end

-- Counts this worker among the window's participants (once per period) and reads their count.
local function participate(st, dict, now)
  local per = st.per
  local p = math_floor(now / per)
  if st.period ~= p then
    st.period = p
    local ngx = ngx_of()
    local pid = ngx.worker and ngx.worker.pid and ngx.worker.pid() or 0
    local added, _, evicted = call(dict, "add", st.prefix .. " pid " .. p .. " " .. pid, true, 2 * per)
    if added then
      local _, _, evicted2 = call(dict, "incr", st.prefix .. " workers " .. p, 1, 0, 2 * per)
      evicted = evicted or evicted2
    end
    if evicted then st.full = true end -- the next permit degrades: the dict evicts to store
  end
  local a = call(dict, "get", st.prefix .. " workers " .. p)
  local b = call(dict, "get", st.prefix .. " workers " .. (p - 1))
  local n = math_max(type(a) == "number" and a or 0, type(b) == "number" and b or 0)
  if n > 0 then st.participants = n end
end

--- The shared state of one window of a client (rate r, key): kept by rate.lua beside its windows.
function M.state(r, per, key)
  local ngx = ngx_of()
  local workers = ngx and ngx.worker and ngx.worker.count and ngx.worker.count() or 1
  return {
    dict_name = r.shared_dict, per = per, n = r.requests, g = per / M.BUCKETS,
    prefix = string_format("vertexops rate %d/%.17g %s", r.requests, per, key),
    participants = workers, degraded = nil,
    mine = { head = 1, tail = 0 }, -- the times of this worker's permits in the last per seconds
  }
end

-- Gives up on the dict: this window is local from now on, at n / participants; warns once.
local function degrade(st, why)
  local n = math_max(1, math_floor(st.n / st.participants))
  -- a worker the dict had answered keeps a silence first (rate.lua: what the dict let go before it
  -- failed, for any worker, may still reach Google)
  if not st.degraded and st.contacted then st.fell = true end
  st.degraded = n
  if not warned[st.dict_name] then
    warned[st.dict_name] = true
    local ngx = ngx_of()
    local msg = string_format("vertexops: option rate.shared_dict '%s': %s; this worker paces on its own at "
      .. "%d requests per %g s (rate.requests / %d participants)", st.dict_name, why, n, st.per, st.participants)
    if ngx and ngx.log and ngx.WARN then ngx.log(ngx.WARN, msg) else io.stderr:write(msg, "\n") end
  end
  return nil, nil, nil, n
end

--- permit(st, o, req, deadline) -> as rate.permit (nil, sent, slot: go; a TimeoutError), or
--- nil, nil, nil, n: the dict failed, pace locally at n requests per window.
function M.permit(st, o, req, deadline)
  if st.degraded then return nil, nil, nil, st.degraded end
  if st.full then return degrade(st, "the dict is full (storing the window evicted other entries)") end
  local dict, why = M.dict(st.dict_name)
  if not dict then return degrade(st, why) end
  local clock = deadline:clock()
  local g, K, n, prefix = st.g, M.BUCKETS, st.n, st.prefix
  local ttl = st.per + 2 * g
  while true do
    local now = clock()
    local b = math_floor(now / g)
    local total, oldest = 0, nil
    for i = b - K, b - 1 do -- oldest first (see the head of this file)
      local v, err = call(dict, "get", prefix .. " " .. i)
      if v == nil and err then return degrade(st, "get failed: " .. err) end
      if type(v) == "number" and v > 0 then
        total = total + v
        oldest = oldest or i
      end
    end
    local key = prefix .. " " .. b
    local c, err, forcible = call(dict, "incr", key, 1, 0, ttl)
    if not c then return degrade(st, "incr failed: " .. tostring(err)) end
    if forcible then
      call(dict, "incr", key, -1)
      return degrade(st, "the dict is full (storing the window evicted other entries)")
    end
    local same = math_floor(clock() / g) == b
    if same and total + c <= n then
      participate(st, dict, now)
      st.contacted = true
      local mine = st.mine
      mine.tail = mine.tail + 1
      mine[mine.tail] = now
      return nil, now, { shared = st, key = key, b = b }
    end
    call(dict, "incr", key, -1) -- the reservation goes back
    if same then
      local free = ((oldest or b) + K + 1) * g -- when the oldest counted bucket leaves
      if free >= deadline:at() then
        return errors.new("TimeoutError", string_format("%s did not finish within the call's timeout: option "
          .. "'rate' (%d requests per %g s for %s, shared through '%s') lets its next request go only after it",
          req.call, n, st.per, req.rate_key, st.dict_name))
      end
      -- a worker past its share of the window (n / participants) lets the others take the freed
      -- places first: it wakes DEFER buckets later (no worker starves another)
      local h, mine = st.mine.head, st.mine
      while h <= mine.tail and mine[h] <= now - st.per do mine[h] = nil; h = h + 1 end
      mine.head = h
      local defer = (mine.tail - h + 1) * st.participants >= n and M.DEFER * g or 0
      host.sleep_for(o, free - now + defer + math_random() * g * 0.1)
    end
  end
end

--- answered(slot, now): the request of slot was answered at now (on its clock): its count moves
--- to now's bucket (incr there first, then decr where it was).
function M.answered(slot, now)
  local st = slot.shared
  local b = math_floor(now / st.g)
  if b <= slot.b then return end
  local dict = M.dict(st.dict_name)
  if not dict then return end
  local ok = call(dict, "incr", st.prefix .. " " .. b, 1, 0, st.per + 2 * st.g)
  if ok then call(dict, "incr", slot.key, -1) end
end

return M
