-- vertexops.rate: the client-side request rate (option `rate = {requests = n, per = seconds}`):
-- at most n requests in any `per` seconds for one project and location, the key of Google's
-- quotas ("requests per minute per region"). Every request of a client asks for a permit here
-- before it is sent (Client:_run, lua/vertexops/client.lua: every attempt, retries included, of
-- every call, cancel_many and cancel_all too, on every transport).
--
-- The window slides, as the fake's quota counts (lua/vertexops/testing/quota.lua): a request may
-- go when fewer than n went in the `per` seconds before it, on the options' clock (the injected
-- one in specs: the virtual clock). Each key keeps a ring of the times of the last n requests it
-- let go. A request that must wait sleeps with host.sleep_for: under client:start() that hands
-- control back to the caller of poll() (a request waiting for a permit is simply not sent yet);
-- a permit that would come at or after the call's deadline is a TimeoutError, nothing sent.
local core = require "vertexops.core"
local host = require "vertexops.host"

local ipairs, pairs, tostring, type = ipairs, pairs, tostring, type
local math_max, math_min = math.max, math.min
local string_find, string_format, string_sub = string.find, string.format, string.sub
local errors = require "vertexops.errors"
local deadlines = require "vertexops.deadline"
local options = require "vertexops.options"
local raise = errors.raise
local retry_after = require("vertexops.retry").retry_after
local shared = require "vertexops.rate_shared"
local redis = require "vertexops.rate_redis"

local M = {}

-- The window's default length (seconds), from the option schema (csrc/options.c: rate.per).
local function schema_per()
  for _, e in ipairs(core.OPTIONS) do
    if e.name == "rate" then
      for _, f in ipairs(e.fields) do
        if f.name == "per" then return f.default end
      end
    end
  end
end
M.PER = schema_per()

--- check(r): a merged `rate` table names its requests (ValueError before any I/O: a call's
--- {per = s} merges over its client's rate, so the check waits for the merge).
---@param r vertexops.Rate|false|nil
function M.check(r)
  if type(r) == "table" and r.requests == nil then
    raise("ValueError", "option 'rate' needs rate.requests (how many requests in rate.per seconds)")
  end
  if type(r) == "table" and r.redis ~= nil and r.shared_dict ~= nil then
    raise("ValueError", "options 'rate.redis' and 'rate.shared_dict' cannot be used together (Redis shares "
      .. "the window between the workers of an nginx too)")
  end
end

-- The project and location a built request is under: the first /projects/P/locations/L of its URL,
-- as the pattern "/projects/([^/?]+)/locations/([^/?:]+)" finds it (a request without them, none:
-- it is not paced). Kept on the request. Read with plain searches (that pattern's search from every
-- position of the URL was about 5,000 instructions per request of a cancel_many, each of whose
-- requests is a table of its own; issue 20 §3): at each "/projects/", P runs to the next '/' or
-- '?', which must be the '/' of "/locations/", and L (not empty) to the next '/', '?' or ':'.
local function next_of(s, at, a, b, c) -- the first of bytes a, b, c in s from at on (#s + 1: none)
  local first = string_find(s, a, at, true) or #s + 1
  local i = string_find(s, b, at, true)
  if i and i < first then first = i end
  i = c and string_find(s, c, at, true)
  if i and i < first then first = i end
  return first
end

local function key_of(req)
  local key = req.rate_key
  if key == nil then
    local url, at = req.url, 1
    key = false
    while true do
      local s = string_find(url, "/projects/", at, true)
      if not s then break end
      local p = s + 10
      local pe = next_of(url, p, "/", "?")
      if pe > p and string_find(url, "/locations/", pe, true) == pe then
        local l = pe + 11
        local le = next_of(url, l, "/", "?", ":")
        if le > l then
          key = string_sub(url, p, pe - 1) .. "/" .. string_sub(url, l, le - 1)
          break
        end
      end
      at = s + 1
    end
    req.rate_key = key
  end
  return key
end

-- The windows of a client, by requests/per (calls with another rate count on their own), then
-- by key. (Their times are on the calls' clock: a client's calls share one.)
local function windows(client, r)
  local by_rate = client.rate_windows
  if not by_rate then
    by_rate = {}
    client.rate_windows = by_rate
  end
  local rd = r.redis
  local id = string_format("%d/%.17g/%s/%s", r.requests, r.per or M.PER, r.shared_dict or "",
    rd and string_format("%s:%s/%s/%s/%s", tostring(rd.host), tostring(rd.port), tostring(rd.db),
      tostring(rd.prefix), rd.password or "") or "")
  local w = by_rate[id]
  if not w then
    w = {}
    by_rate[id] = w
  end
  return w
end

-- adaptive pacing ----------------------------------------------------------------------------
-- cancel_all and cancel_many without a rate option pace themselves once Google says they went too
-- fast: a 429 that says when to retry (RetryInfo or Retry-After) sets, for its project and
-- location, a rate of as many requests per LEARN_PER seconds (Google's quotas are per minute) as
-- were accepted in the LEARN_PER seconds before it -- the quota as measured. A later 429 measures
-- again (the decrease). Each LEARN_PER seconds without a 429 the rate grows: by GROW_FAST (x1.25)
-- while under the highest rate measured so far, past it by GROW_SLOW (0.5 %, at least one request):
-- a probe that costs a few 429s, finds a raised quota or a share another worker left.
local LEARN_PER, GROW_FAST, GROW_SLOW = 60, 1.25, 0.005
M.LEARN_PER, M.GROW_FAST, M.GROW_SLOW = LEARN_PER, GROW_FAST, GROW_SLOW

--- adaptive() -> the state of one bulk call's adaptive pacing (Client:_run's ctx.adapt).
function M.adaptive() return { keys = {} } end

-- A deque of times (oldest at head): push, drop those at or before t, count.
local function deque() return { head = 1, tail = 0 } end
local function push(d, t) d.tail = d.tail + 1; d[d.tail] = t end
local function trim(d, t)
  local h = d.head
  while h <= d.tail and d[h] <= t do d[h] = nil; h = h + 1 end
  d.head = h
  return d.tail - h + 1
end

local function learned(a, key)
  local s = a.keys[key]
  if not s then
    s = { sent = deque(), accepted = deque(), requests = nil, top = 0, since = nil }
    a.keys[key] = s
  end
  return s
end

-- Pushes t on the deque d of times, dropping those past LEARN_PER before t now and then (every
-- TRIM_EVERY pushes): what nothing counts yet is kept only so that a later count finds it, and
-- the deque stays within the last LEARN_PER seconds (and TRIM_EVERY more).
local TRIM_EVERY = 4096
local function note(d, t)
  local tail = d.tail + 1 -- (push, written out: two notes a cancel, ~800 instructions a cancel on Lua 5.4)
  d.tail, d[tail] = tail, t
  if tail - d.head >= TRIM_EVERY then trim(d, t - LEARN_PER) end
end

-- Whether a request under the learned rate s may go at now (then it is counted); else how many
-- went in the last LEARN_PER seconds and the rate. The rate grows first when a whole window
-- passed without a 429. Before any 429 taught a rate, the request goes and its time is noted.
local function admit(s, now)
  local r = s.requests
  if not r then
    note(s.sent, now)
    return true
  end
  local n = trim(s.sent, now - LEARN_PER)
  if now - s.since >= LEARN_PER then -- a whole window without a 429: grow
    r = r < s.top and math.min(s.top, math.ceil(r * GROW_FAST)) or r + math.max(1, math.floor(r * GROW_SLOW))
    s.requests, s.since = r, now
  end
  if n < r then
    push(s.sent, now)
    return true
  end
  return false, n, r
end

--- admit_now(a, req, now) -> may, sent: whether a bulk call's adaptive pacing (a) lets req go at
--- once (now, on the call's clock) -- then counted as permit() counts it, sent being what to hand
--- answered() (nil: req is not paced) -- or false when permit() would wait
--- (lua/vertexops/fleet.lua: a window's direct send).
function M.admit_now(a, req, now)
  local key = req.rate_key
  if key == nil then key = key_of(req) end
  if not key then return true, nil end
  if admit(a.keys[key] or learned(a, key), now) then return true, now end
  return false
end

-- The adaptive permit: as permit's loop, over the learned rate (none until a 429 set one).
local function adaptive_permit(o, req, deadline, a, key)
  local clock = deadline:clock()
  local s = a.keys[key] or learned(a, key)
  while true do
    local now = clock()
    local may, n, r = admit(s, now)
    if may then return nil, now end
    local free = s.sent[s.sent.head + n - r] + LEARN_PER
    if free >= deadline:at() then
      return errors.new("TimeoutError", string_format("%s did not finish within the call's timeout: the "
        .. "quota Google's 429 answers showed (%d requests per %g s for %s) lets its next request go only "
        .. "after it", req.call, r, LEARN_PER, key))
    end
    host.sleep_for(o, free - now)
  end
end

-- a shared window's fall ----------------------------------------------------------------------
-- A store (rate_shared.lua's dict, rate_redis.lua's Redis) that fails turns the window local, at
-- the share of one participant. What the store let go before it failed, for every process, this
-- process cannot count; Google counts each of those requests when it arrives, which for one still
-- in flight is after the fall. So a process the store had answered keeps a silence first: it sends
-- nothing until a window (`per`) after the last of those may have arrived. Its own: each request
-- the store let go is in st.flying until its answer comes (it arrived before its answer), or until
-- the latest its exchange can end (the call's deadline, request_timeout after it went: an answer
-- that never comes, a request closed under client:start()); the silence waits for every one in
-- flight at the fall and starts at the last answer. Other processes': this process cannot see
-- them, they went before the store failed, so they arrive at the latest their latency after the
-- fall; the silence starts no sooner than the fall plus the largest latency (permit to answer)
-- this process has seen of the store's requests (st.latency) or, through Redis, any process
-- reported in the last two periods (st.fleet_latency, rate_redis.lua: a process starved of CPU
-- reports its own). A `:wait` long-poll (answered when its operation ends or its time is up, not
-- when it arrived) is neither waited for nor a latency.
-- (st.flying's entries are counted in st.flying_n; past st.flying_max, those whose exchange has
-- ended unanswered are dropped: requests closed unanswered do not pile up while nothing fails)
local function fly(st, slot, req, sent, o, deadline)
  if req.call == "wait" then return end
  local flying = st.flying
  if not flying then
    flying = {}
    st.flying, st.flying_n, st.flying_max, st.latency = flying, 0, 64, 0
  end
  if st.flying_n >= st.flying_max then
    for s, last in pairs(flying) do
      if last <= sent then
        flying[s] = nil
        st.flying_n = st.flying_n - 1
      end
    end
    st.flying_max = math_max(64, 2 * st.flying_n)
  end
  slot.sent = sent
  flying[slot] = math_min(deadline:at(), sent + (o.request_timeout or options.DEFAULTS.request_timeout))
  st.flying_n = st.flying_n + 1
end

local function landed(st, slot, now)
  local flying = st.flying
  if not (flying and flying[slot]) then return end
  flying[slot] = nil
  st.flying_n = st.flying_n - 1
  if now - slot.sent > st.latency then st.latency = now - slot.sent end
  if st.quiet and now > st.quiet then st.quiet = now end -- the silence starts at the last answer
end

-- The silence after st's fall (st.quiet: when it starts, as far as known): nil once it is over, or
-- a TimeoutError when it ends at or after the call's deadline (nothing sent).
local function silence(st, o, req, deadline, n, per, clock)
  while st.quiet do
    local now = clock()
    local quiet, waiting = st.quiet, false
    for slot, last in pairs(st.flying or {}) do
      if last <= now then -- no answer came: it may have arrived until then
        st.flying[slot] = nil
        st.flying_n = st.flying_n - 1
        if last > quiet then quiet = last end
      else
        waiting = true
      end
    end
    st.quiet = quiet
    local go = (waiting and math_max(quiet, now) or quiet) + per -- the earliest it can end
    if go <= now then
      st.quiet = nil
      return nil
    end
    if go >= deadline:at() then
      return errors.new("TimeoutError", string_format("%s did not finish within the call's timeout: option "
        .. "'rate' (fallen back to %d requests per %g s for %s) lets its next request go only after it: a "
        .. "window after what the shared window let go before it failed", req.call, n, per, req.rate_key))
    end
    -- waiting for answers: look again a bucket later (the answers come in other requests' turns)
    host.sleep_for(o, waiting and st.g or go - now)
  end
  return nil
end

--- answered(a, o, req, sent, ok, res, slot): the answer to a request permit let go at time sent.
--- With option rate (slot: where its window holds it) the window keeps the time the answer came
--- instead of the time it went: the service counted the request on its arrival, somewhere between
--- the two, so a slot freed `per` seconds after the answer is free at the service too, whatever
--- the latency. With a bulk call's adaptive pacing (a), what it learns: a 429 that says when to
--- retry sets the rate.
function M.answered(a, o, req, sent, ok, res, slot)
  if slot then
    local now = deadlines.clock_of(o)()
    if slot.shared then
      landed(slot.shared, slot, now)
      return shared.answered(slot, now)
    end
    if slot.redis then
      landed(slot.redis, slot, now)
      return redis.answered(slot, o, now)
    end
    local w, i = slot[1], slot[2]
    if w[i] == sent and now > sent then w[i] = now end -- unless the slot went to a later request
    return
  end
  -- adaptive pacing: an answer other than a 429 only adds its time (the common case)
  local key = a and (req.rate_key or key_of(req))
  if not key then return end
  local s = a.keys[key] or learned(a, key)
  if ok or res.code ~= 429 then
    note(s.accepted, sent)
    return
  end
  if not retry_after(res) then return end
  local now = deadlines.clock_of(o)()
  local measured = math.max(1, trim(s.accepted, now - LEARN_PER))
  s.requests, s.since = measured, now
  if measured > s.top then s.top = measured end
end

--- permit(client, o, req, deadline [, adapt]) -> nil when req may be sent now (it is counted), or
--- a TimeoutError when its permit would come at or after deadline (nothing counted). Sleeps (or,
--- under client:start(), yields) until then. With adapt (a bulk call's adaptive state) and no
--- rate option, the rate its 429s taught. When paced, the time it went and (option rate) its slot
--- follow: hand both to answered() with the answer.
---@param client vertexops.Client
---@param o vertexops.Options
---@param req table a built request
---@param deadline vertexops.Deadline the call's (lua/vertexops/deadline.lua)
---@param adapt? table
---@return vertexops.Error?
---@return number? sent
---@return table? slot
function M.permit(client, o, req, deadline, adapt)
  local r = o.rate
  local key = req.rate_key
  if key == nil then key = key_of(req) end
  if not key then return nil end
  if not r then
    if adapt and r == nil then return adaptive_permit(o, req, deadline, adapt, key) end
    return nil
  end
  local clock = deadline:clock()
  local n, per = r.requests, r.per or M.PER
  local by_key = windows(client, r)
  local w = by_key[key]
  if not w then
    w = { n = 0, head = 1 } -- times of the requests let go: n of them, the oldest at head
    by_key[key] = w
  end
  local st -- the store's state when it failed: this window is local
  if r.redis then -- shared through Redis (rate_redis.lua)
    if not w.redis then w.redis = redis.state(r, per, key) end
    local err, sent, slot, local_n = redis.permit(w.redis, o, req, deadline)
    if not local_n then
      if slot then
        w.redis.quiet = nil -- shared again: no silence left
        fly(w.redis, slot, req, sent, o, deadline)
      end
      return err, sent, slot
    end
    n, st = local_n, w.redis -- Redis failed: this window, at the share of one participant
  end
  if r.shared_dict then -- shared by nginx's workers (rate_shared.lua); outside nginx, this window
    if w.shared == nil then
      local d, why = shared.dict(r.shared_dict)
      w.shared = (d or why) and shared.state(r, per, key) or false -- false: not in nginx
    end
    if w.shared then
      local err, sent, slot, local_n = shared.permit(w.shared, o, req, deadline)
      if not local_n then
        if slot then fly(w.shared, slot, req, sent, o, deadline) end
        return err, sent, slot
      end
      n, st = local_n, w.shared -- the dict failed: this window, at the share of one participant
    end
  end
  if w.size ~= n or (st and st.fell) then -- a store fell back: the window starts anew
    for i = 1, w.size or 0 do w[i] = nil end
    w.n, w.head, w.size = 0, 1, n
    if st and st.fell then -- the store had answered this process: a silence first (above)
      st.fell = nil
      st.quiet = clock() + math_max(st.latency or 0, st.fleet_latency or 0)
    end
  end
  if st and st.quiet then
    local err = silence(st, o, req, deadline, n, per, clock)
    if err then return err end
  end
  while true do
    local now = clock()
    if w.n < n then
      local i = (w.head + w.n - 1) % n + 1
      w[i] = now
      w.n = w.n + 1
      return nil, now, { w, i }
    end
    local free = w[w.head] + per -- when the oldest leaves the window (as the fake computes it)
    if free <= now then
      local i = w.head
      w[i] = now
      w.head = i % n + 1
      return nil, now, { w, i }
    end
    if free >= deadline:at() then
      return errors.new("TimeoutError", string_format("%s did not finish within the call's timeout: option "
        .. "'rate' (%d requests per %g s for %s) lets its next request go only after it", req.call, n, per, key))
    end
    host.sleep_for(o, free - now)
  end
end

return M
