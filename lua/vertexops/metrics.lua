-- vertexops.metrics: what the calls of a client did, counted by its hooks (the `hooks` option)
-- and rendered in Prometheus' text exposition format (version 0.0.4).
--
--   local m = require("vertexops.metrics").new { shared_dict = "vertexops_metrics" }
--   local client = vertexops.client { hooks = m:hooks() }
--   ...
--   ngx.print(m:render())          -- in the /metrics location (examples/openresty/)
--
-- The store: a lua_shared_dict inside nginx (every worker adds up into a table of its own, flushed
-- into it with the dict's atomic incr; a scrape has every worker flush first: one scrape shows the
-- whole nginx; dict_store below), else a Lua table (this Lua state's calls). Each event
-- costs a few table lookups (the keys of a label set are made once, on its first event, and kept
-- per label value in nested tables) and one incr per number it moves: a histogram keeps one
-- counter per bucket (not cumulative: one incr, the bucket the value falls in) and the sum; the
-- counts (`_count`, the `_total` counters of calls, attempts and token fetches) are added up from
-- the buckets at render time, so they cost nothing per event. A number's key is short ("\1" id
-- ":" slot, under 12 bytes): the dict's incr costs time per byte of key (measured inside nginx:
-- 8 us per call and attempt with keys holding the label text, 2 us with these).
--
-- Labels (their values are made by the library, so the series are few): `call` (cancel, get,
-- delete, wait, list, ...), `status` (the HTTP status class of the last answer, "2xx" .. "5xx",
-- or its code with status = "code"; "" when no HTTP answer came), `tag` (the error's tag, "" on
-- success), `reason` (why a retry: "http_<status>" or an error's tag), `source` (a
-- credential type).
local errors = require "vertexops.errors"

local pairs, ipairs, next, pcall, rawget, setmetatable, tonumber, tostring, type = pairs, ipairs, next, pcall, rawget,
  setmetatable, tonumber, tostring, type
local math_floor, math_huge, math_abs = math.floor, math.huge, math.abs
local string_format, table_concat, table_sort = string.format, table.concat, table.sort
local _G = _G

local M = {}

--- The default histogram buckets (seconds): a call may last from a millisecond (a pooled
--- cancel) to minutes (a wait's long-polls, cancel_and_wait).
M.DEFAULT_BUCKETS = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300 }

-- What is stored, one entry per family of numbers kept (id: the key's family part).
-- kind "histogram": `total` names the counter rendered from its counts.
local FAMILIES = {
  { id = "c", name = "call_duration_seconds", kind = "histogram", labels = { "call", "status", "tag" },
    total = "calls_total",
    total_help = "Calls ended (cancel, get, delete, wait, a list page, ...) by call, HTTP status of the last "
      .. "answer and error tag.",
    help = "Duration of calls on the client's clock, retries and waits between them included." },
  { id = "a", name = "attempt_duration_seconds", kind = "histogram", labels = { "call", "status", "tag" },
    total = "attempts_total",
    total_help = "HTTP exchanges (attempts) ended by call, HTTP status and transport or error tag.",
    help = "Duration of one HTTP exchange (connect, TLS, request and answer)." },
  { id = "s", name = "attempt_sent_bytes_total", kind = "counter", labels = { "call" },
    help = "Bytes sent in HTTP exchanges." },
  { id = "b", name = "attempt_received_bytes_total", kind = "counter", labels = { "call" },
    help = "Bytes received in HTTP exchanges." },
  { id = "r", name = "retries_total", kind = "counter", labels = { "call", "reason" },
    help = "Retries by call and reason (http_<status> or an error tag)." },
  { id = "t", name = "token_fetch_duration_seconds", kind = "histogram", labels = { "source", "tag" },
    total = "token_fetches_total",
    total_help = "Access token fetches ended by credential type and error tag.",
    help = "Duration of access token fetches." },
  { id = "w", name = "wait_rounds_total", kind = "counter", labels = { "call" },
    help = "Rounds of waits (each long-poll or GET of a wait)." },
}
local FAMILY = {}
for _, f in ipairs(FAMILIES) do FAMILY[f.id] = f end

local OPTIONS = { shared_dict = true, buckets = true, prefix = true, status = true }

local function bad_type(what, want, v)
  errors.raise("TypeError", ("metrics.new: %s must be %s, got %s"):format(what, want, type(v)))
end

local function bad_value(what, msg)
  errors.raise("ValueError", ("metrics.new: %s %s"):format(what, msg))
end

-- A number as the exposition format writes it: integers without a fraction, others round-trip.
local function number(v)
  if v ~= v then return "NaN" end
  if v == math_huge then return "+Inf" end
  if v == -math_huge then return "-Inf" end
  if v == math_floor(v) and math_abs(v) < 2 ^ 53 then return string_format("%d", v) end
  -- the shortest of these that reads back as v (0.025, not 0.025000000000000001)
  local s = string_format("%.15g", v)
  if tonumber(s) ~= v then
    s = string_format("%.16g", v)
    if tonumber(s) ~= v then s = string_format("%.17g", v) end
  end
  return s
end
M._number = number

local ESCAPES = { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n" }
--- A label value escaped as the exposition format wants it (backslash, double quote, newline).
function M.escape(v)
  return (tostring(v):gsub('[\\"\n]', ESCAPES))
end
local escape = M.escape

local function check_buckets(b)
  if type(b) ~= "table" then bad_type("buckets", "a list of numbers", b) end
  if #b == 0 then bad_value("buckets", "must list at least one bound") end
  local n = 0
  for _ in pairs(b) do n = n + 1 end
  if n ~= #b then bad_value("buckets", "must be a list (keys 1..n)") end
  local out, prev = {}, nil
  for i, v in ipairs(b) do
    if type(v) ~= "number" then bad_type(("buckets[%d]"):format(i), "a number", v) end
    if v ~= v or v == math_huge or v == -math_huge or v < 0 then
      bad_value(("buckets[%d]"):format(i), "must be a finite number >= 0 (+Inf is always added), got " .. tostring(v))
    end
    if prev and v <= prev then bad_value("buckets", "must increase strictly: " .. number(prev) .. " then " .. number(v)) end
    prev = v
    out[i] = v
  end
  return out
end

-- The stores. A number lives under a short key, "\1" .. id .. ":" .. slot (the dict's incr costs
-- time per byte of key: a label set's full text would triple an event's cost), where id names one
-- series (prefix, family and labels) and slot a bucket's le, "+Inf", "sum", "n" or "" (a
-- counter). The ids are the store's: series(identity) -> id (made once per series and process),
-- identity(id) -> the series' text for render. Other keys of a dict are left alone.
--   incr(key, by); each() -> an iterator of key, value over the numbers; reset(ids) deletes the
--   numbers of those ids.
-- A histogram's observations wait as plain numbers in its series entry (e.vals[1 .. e.nv]) and are
-- put in their buckets when the store's numbers are read or flushed (fold_all), or when FOLD_AT of
-- them wait: an event then costs the same few table writes whatever its value (no comparison of it
-- with the bounds, whose branches -- a path per bucket -- kept LuaJIT's traces of a call's end from
-- compiling inside nginx; issue 19 §4). A store keeps every histogram entry (hists), one per
-- series and bounds, shared by the objects of one dict (entries: so they are as few as the
-- series). e.find: the bucket of a value (M._bucket_finder), e.keys, e.sum, e.n: the keys.
local FOLD_AT = 1024
M._FOLD_AT = FOLD_AT

local function fold(e, P)
  local n, vals, keys, find, counts = e.nv, e.vals, e.keys, e.find, e.counts
  e.nv = 0
  if n == 0 then return end
  local ks, kn = e.sum, e.n
  local sum, none, some = P[ks], 0, false
  -- (counted per bucket in e.counts, an array of zeros, then added to P once per bucket: no
  -- lookup of a bucket's key per value)
  for i = 1, n do
    local v = vals[i]
    if type(v) ~= "number" or v ~= v then
      none = none + 1
    else
      local j = find(v)
      counts[j] = counts[j] + 1
      sum = (sum or 0) + v -- (in the order of the events, as they were added before)
      some = true
    end
  end
  if some then
    for j = 1, #keys do
      local c = counts[j]
      if c > 0 then
        counts[j] = 0
        local k = keys[j]
        P[k] = (P[k] or 0) + c
      end
    end
  end
  if sum ~= nil then P[ks] = sum end
  if none > 0 then P[kn] = (P[kn] or 0) + none end
end

local function fold_all(hists, P)
  for i = 1, #hists do
    local e = hists[i]
    if e.nv > 0 then fold(e, P) end
  end
end

-- One observation of entry e, kept as it is until a fold puts it in its bucket and the sum, or
-- the count of observations without a duration.
local function observe(e, v, P)
  local n = e.nv + 1
  e.nv = n
  e.vals[n] = v
  if n >= FOLD_AT then fold(e, P) end
end

-- The ends of label sets seen before wait in a store's queue as they came, a few slots each,
-- until its numbers are read or flushed (or EV_MAX slots wait): at a call's end only the slots are
-- written, and the entries they name are touched when the queue is drained, many events at a time.
-- A recorder's own entries spread over a dozen tables (the label caches, two histograms' entries
-- and their lists of values, two counters' keys in the pending numbers), each a first-level cache
-- miss at a call's end when a busy worker's other requests have been through the cache since the
-- last one: at 1,000 connections most of what the metrics cost a request (issue 19 §4).
-- An event: pr (an answer's label sets of one call and status: pr.c, pr.a the histograms' entries,
-- pr.s, pr.b the byte counters'), the call's duration and the attempt's (false: no such end; nil:
-- an end without a duration), the bytes sent and received (the attempt's).
local EV_W, EV_MAX = 5, 5 * 256
M._EV_MAX = EV_MAX

-- queue(P) -> push(pr, call_duration, attempt_duration, sent, received) -> true, drain()
local function queue(P)
  local ev, nev = {}, 0
  for i = 1, EV_MAX do ev[i] = false end -- (its array part made whole: nil slots stay in it)
  local function drain()
    local n = nev
    nev = 0
    for i = 1, n, EV_W do
      local pr, dc, da = ev[i], ev[i + 1], ev[i + 2]
      if dc ~= false then observe(pr.c, dc, P) end
      if da ~= false then
        observe(pr.a, da, P)
        local sent, received = ev[i + 3], ev[i + 4]
        if type(sent) == "number" and sent > 0 then
          local ks = pr.s.key
          P[ks] = (P[ks] or 0) + sent
        end
        if type(received) == "number" and received > 0 then
          local kb = pr.b.key
          P[kb] = (P[kb] or 0) + received
        end
      end
    end
  end
  -- push -> true, draining the queue when full. The recorder's known_* call it in a tail call, so
  -- that a drain runs in place of their frame, no deeper than their own work went before the queue:
  -- a frame more grew the Lua stack of each coroutine a drain first fell in, under Lua 5.2 and 5.3
  -- about 1 KB (spec/09_hosts_metrics_garbage_spec.lua).
  local function push(pr, dc, da, sent, received)
    local i = nev
    ev[i + 1], ev[i + 2], ev[i + 3], ev[i + 4], ev[i + 5] = pr, dc, da, sent, received
    i = i + EV_W
    nev = i
    if i >= EV_MAX then drain() end
    return true
  end
  return push, drain
end

local function table_store()
  local data, ids, identities, n = {}, {}, {}, 0
  local self = {}
  self.pending, self.eager = data, false -- (the recorder adds into data itself)
  local hists = {}
  self.hists, self.entries = hists, {}
  self.push, self.drain = queue(data)
  local drain = self.drain
  function self.incr(k, v) data[k] = (data[k] or 0) + v end
  function self.series(identity)
    local id = ids[identity]
    if not id then
      n = n + 1
      id = n
      ids[identity], identities[id] = id, identity
    end
    return id
  end
  function self.identity(id) return identities[id] end
  function self.each()
    drain()
    fold_all(hists, data)
    return next, data, nil
  end
  function self.delete(k) data[k] = nil end
  return self
end

local ID_COUNTER, ID_KEY, IDENTITY_KEY = "\2#", "\2i\t", "\2s\t"

-- A worker's numbers wait in a Lua table (pending) and go to the dict in one incr per key at each
-- flush: every 0.1 s (M._FLUSH_EVERY; one timer that sleeps between flushes, started at the
-- worker's first event), when the worker exits, and when a render or reset asks every worker to
-- (sync). A scrape bumps the dict's SYNC_KEY and waits (at most SYNC_WAIT) until each worker that counts (its ACK_KEY .. id,
-- refreshed at each flush, deleted at its exit, expiring after ACK_TTL if it dies) has flushed since: one render
-- shows every worker's events up to the scrape. Where no timer can be made, each incr goes straight
-- to the dict. Per request this replaces six dict incr (a lock, a hash of the key) by table adds.
-- (M._FLUSH_EVERY, read when a worker's timer starts: bench/openresty.lua's callgrind rounds set it
-- so that a tick falls on as many requests as at a native worker's pace)
local SYNC_WAIT, ACK_TTL = 3, 10
local SYNC_KEY, ACK_KEY = "\2sync", "\2ack\t"
M._FLUSH_EVERY = 0.1
-- (M._WATCH_EVERY: the watchdog's period, below; each time a timer fires it cost the worker about
-- a million instructions with the collector running (callgrind), so the watchdog comes rarely)
M._WATCH_EVERY = 5

local function dict_store(dict)
  -- pending: the numbers not yet in the dict (a key's value 0 once flushed: the recorder adds into
  -- this same table, never swapped); eager until the first event has started the flush timer, and
  -- for good where no timer can be made (then touch() after each event moves its numbers at once)
  local pending, hists = {}, {}
  local self = { dropped = 0, pending = pending, eager = true, hists = hists, entries = {} }
  self.push, self.drain = queue(pending)
  local drain = self.drain
  local ngx = rawget(_G, "ngx")
  local direct, started = false, false
  -- incr with an init value: a new key is added (nginx evicts the least recently used entries of a
  -- full dict to make room); a store that still fails is counted in dropped (this worker's).
  local function store(k, v)
    local ok = dict:incr(k, v, 0)
    if not ok then self.dropped = self.dropped + 1 end
  end
  local function flush()
    drain()
    fold_all(hists, pending)
    for k, v in next, pending do
      if v ~= 0 then
        pending[k] = 0 -- (an existing key: allowed while traversing)
        store(k, v)
      end
    end
  end
  local function worker_id()
    local w = ngx.worker
    return w and w.id and w.id() or 0
  end
  local function ack(gen) dict:set(ACK_KEY .. worker_id(), gen, ACK_TTL) end
  local function tick(premature)
    local gen = dict:get(SYNC_KEY) or 0 -- read before the flush: an ack covers what came before it
    flush()
    if premature then dict:delete(ACK_KEY .. worker_id()) else ack(gen) end
  end
  -- One timer that flushes, sleeps and flushes again for as long as the worker runs (at its exit
  -- a last flush and its ack deleted), not a timer per flush: nginx makes a coroutine and a fake
  -- request for each timer it runs, which with the collector running cost a metrics worker about
  -- 900 instructions a request at 0.1 s (callgrind; issue 19 §4). A watchdog timer every 5 s
  -- (M._WATCH_EVERY) makes the loop again when it has ended or its timer never ran (nginx drops a
  -- timer whose turn comes while lua_max_running_timers are all running), and flushes at the
  -- worker's exit when no loop does.
  local running, scheduled_at = false, nil
  local function loop(premature)
    if running then return end -- (a loop runs already: this one was made while its timer waited)
    running = true
    local worker = ngx.worker
    while not premature do
      pcall(tick, false) -- (a flush that failed is tried again at the next: the loop goes on)
      if not pcall(ngx.sleep, M._FLUSH_EVERY) then break end -- (no sleep here: the watchdog's turn)
      premature = worker and worker.exiting and worker.exiting()
    end
    if premature then pcall(tick, true) end
    running, scheduled_at = false, nil
  end
  local function schedule()
    local called, made = pcall(ngx.timer.at, 0, loop)
    if called and made then scheduled_at = ngx.now() end
    return called and made and true or false
  end
  local function watch(premature)
    if running then return end
    if premature then pcall(tick, true) return end
    if not scheduled_at or ngx.now() - scheduled_at > M._WATCH_EVERY then schedule() end
  end
  local function start()
    started = true
    local timer = ngx and ngx.timer
    local ok = false
    if timer and timer.at and timer.every then
      local called, made = pcall(timer.every, M._WATCH_EVERY, watch)
      ok = called and made and schedule() or false
    end
    direct = not ok
    self.eager = direct
    if ok then ack(dict:get(SYNC_KEY) or 0) end
  end
  -- after an event's adds into pending, while eager
  function self.touch()
    if not started then start() end
    if direct then flush() end
  end
  function self.incr(k, v)
    pending[k] = (pending[k] or 0) + v
    if self.eager then self.touch() end
  end
  -- every worker's numbers in the dict (what render and reset read)
  function self.sync()
    flush()
    if direct or not ngx then return end
    local gen = dict:incr(SYNC_KEY, 1, 0)
    if not gen then return end
    local me, count = worker_id(), ngx.worker and ngx.worker.count and ngx.worker.count() or 1
    ngx.update_time()
    local give_up = ngx.now() + SYNC_WAIT
    for id = 0, count - 1 do
      if id ~= me then
        while true do
          local a = dict:get(ACK_KEY .. id)
          if a == nil or a >= gen then break end
          if not pcall(ngx.sleep, 0.002) then break end -- (a phase without ngx.sleep: no wait)
          ngx.update_time()
          if ngx.now() >= give_up then break end
        end
      end
    end
    ack(gen)
  end
  -- the id of a series, the same in every worker: the first to need one takes the next number and
  -- publishes it (its identity first, then the id under the identity with add: of two workers
  -- racing, the second reads the first's); nil when the dict has no room (safe_*: an id never
  -- evicts a number)
  function self.series(identity)
    local key = ID_KEY .. identity
    local id = dict:get(key)
    if id then return id end
    local n = dict:incr(ID_COUNTER, 1, 0)
    if not n then return nil end
    if not dict:safe_set(IDENTITY_KEY .. n, identity) then return nil end
    local ok, err = dict:safe_add(key, n)
    if ok then return n end
    dict:delete(IDENTITY_KEY .. n)
    if err == "exists" then return dict:get(key) end
    return nil
  end
  function self.identity(id) return dict:get(IDENTITY_KEY .. id) end
  function self.each()
    local keys = dict:get_keys(0)
    local i = 0
    return function()
      while true do
        i = i + 1
        local k = keys[i]
        if k == nil then return nil end
        if k:byte(1) == 1 then
          local v = dict:get(k)
          if type(v) == "number" then return k, v end
        end
      end
    end
  end
  function self.delete(k) dict:delete(k) end
  return self
end

local dict_stores = setmetatable({}, { __mode = "k" })

local Metrics = {}
Metrics.__index = Metrics

--- new{shared_dict = name?, buckets = {...}?, prefix = "vertexops"?, status = "class"|"code"?}
---@param opts? table
function M.new(opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then bad_type("opts", "a table", opts) end
  for k in pairs(opts) do
    if not OPTIONS[k] then bad_value(tostring(k), "is not an option of metrics.new (shared_dict, buckets, prefix, status)") end
  end
  local prefix = opts.prefix
  if prefix == nil then prefix = "vertexops" end
  if type(prefix) ~= "string" then bad_type("prefix", "a string", prefix) end
  if prefix ~= "" and not prefix:match("^[%a_:][%w_:]*$") then
    bad_value("prefix", ("must be a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), got %q"):format(prefix))
  end
  local status = opts.status
  if status == nil then status = "class" end
  if status ~= "class" and status ~= "code" then
    if type(status) ~= "string" then bad_type("status", 'a string ("class" or "code")', status) end
    bad_value("status", ('must be "class" or "code", got %q'):format(status))
  end
  local buckets = check_buckets(opts.buckets == nil and M.DEFAULT_BUCKETS or opts.buckets)
  local store
  if opts.shared_dict ~= nil then
    local name = opts.shared_dict
    if type(name) ~= "string" then bad_type("shared_dict", "a string", name) end
    local ngx = rawget(_G, "ngx")
    local shared = ngx and ngx.shared
    if not shared then bad_value("shared_dict", ("%q needs nginx (lua_shared_dict): outside nginx leave it out"):format(name)) end
    local dict = shared[name]
    if not dict then
      bad_value("shared_dict", ("%q is no lua_shared_dict of this nginx (lua_shared_dict %s 1m;)"):format(name, name))
    end
    -- (one store per dict and worker: its pending numbers and its flush are the worker's)
    store = dict_stores[dict]
    if not store then store = dict_store(dict); dict_stores[dict] = store end
  else
    store = table_store()
  end
  local self = setmetatable({
    prefix = prefix, buckets = buckets, status_mode = status, store = store,
    le = {}, caches = {},
  }, Metrics)
  for i, v in ipairs(buckets) do self.le[i] = number(v) end
  for _, f in ipairs(FAMILIES) do self.caches[f.id] = {} end
  return self
end

--- How many stores failed in this worker (a full lua_shared_dict that could not make room).
function Metrics:dropped()
  return self.store.dropped or 0
end

-- The keys of one label set of family f: a counter's key, or a histogram's keys (keys[i]: bucket
-- i's, keys[#bounds + 1]: +Inf's), sum key, and the key counting observations without a duration;
-- nil when the store has no room for it.
function Metrics:_series(f, values)
  local parts = {}
  for i, l in ipairs(f.labels) do parts[i] = l .. '="' .. escape(values[i]) .. '"' end
  local store = self.store
  local identity = self.prefix .. "\t" .. f.id .. "\t" .. table_concat(parts, ",")
  local id = store.series(identity)
  if not id then return nil end
  local base = "\1" .. id .. ":"
  if f.kind == "counter" then return { key = base } end
  local sig = identity .. "\t" .. table_concat(self.le, ",")
  local e = store.entries[sig]
  if e then return e end
  local keys = {}
  for i, le in ipairs(self.le) do keys[i] = base .. le end
  keys[#keys + 1] = base .. "+Inf"
  if not self._find then self._find = M._bucket_finder(self.buckets) end
  local counts = {}
  for i = 1, #keys do counts[i] = 0 end
  e = { keys = keys, sum = base .. "sum", n = base .. "n", vals = {}, nv = 0, find = self._find, counts = counts }
  store.entries[sig] = e
  store.hists[#store.hists + 1] = e
  return e
end

local load_chunk = rawget(_G, "loadstring") or load

--- bucket_finder(bounds) -> a function of a number v (not NaN) giving the index of v's bucket: the
--- first i with v <= bounds[i], #bounds + 1 (+Inf) when there is none. Made once per recorder as a
--- tree of comparisons (about log2 of the bucket count per observation, no loop: an observation's
--- path compiles under LuaJIT where a loop's exit aborted the trace).
function M._bucket_finder(bounds)
  local function lit(b) -- (%.17g reads back as b exactly)
    return string_format("%.17g", b)
  end
  local function tree(lo, hi)
    if lo == hi then return "return " .. lo end
    local mid = math_floor((lo + hi) / 2)
    return "if v <= " .. lit(bounds[mid]) .. " then " .. tree(lo, mid) .. " else " .. tree(mid + 1, hi) .. " end"
  end
  return assert(load_chunk("return function(v) " .. tree(1, #bounds + 1) .. " end", "=metrics.buckets"))()
end

--- The hooks table to pass as the `hooks` option (a client's or a call's; not both, or each event
--- is counted twice). The same table on every call.
function Metrics:hooks()
  if self._hooks then return self._hooks end
  local store, caches = self.store, self.caches
  local cache_c, cache_a, cache_s, cache_b = caches.c, caches.a, caches.s, caches.b
  local cache_r, cache_t, cache_w = caches.r, caches.t, caches.w
  local F = FAMILY
  -- every number goes into P (the table store's data, a dict store's pending adds); a dict store
  -- wants touch() after an event while eager (its first event, or no flush timer)
  local P = store.pending

  -- status numbers to label values, made once per status
  local classes = {}
  local by_code = self.status_mode == "code"
  local function status_label(s)
    local v
    if type(s) == "number" and not by_code then
      v = s >= 100 and s < 600 and (math_floor(s / 100) .. "xx") or tostring(s)
    else
      v = tostring(s)
    end
    classes[s] = v
    return v
  end

  -- a label set's entry, made at its first event (nil: the store had no room; tried again next time)
  local function series3(cache, f, a, b, c)
    local t2 = cache[a]
    if t2 == nil then t2 = {}; cache[a] = t2 end
    local t3 = t2[b]
    if t3 == nil then t3 = {}; t2[b] = t3 end
    local e = self:_series(f, { a, b, c })
    t3[c] = e
    return e
  end
  local function series2(cache, f, a, b)
    if a == nil then a = "" end
    if b == nil then b = "" end
    local t2 = cache[a]
    if t2 == nil then t2 = {}; cache[a] = t2 end
    local e = t2[b]
    if e == nil then
      e = self:_series(f, { a, b })
      t2[b] = e
    end
    return e
  end
  local function series1(cache, f, a)
    local e = self:_series(f, { a })
    cache[a] = e
    return e
  end

  -- a series the store had no room for (a full dict): counted in dropped, tried again next time
  local function lost() store.dropped = (store.dropped or 0) + 1 end
  local function count(e, v)
    if e then
      local k = e.key
      P[k] = (P[k] or 0) + v
    else
      lost()
    end
  end

  -- The recorder's events (lua/vertexops/hooks.lua calls them directly when these hooks are a
  -- client's only ones; the hooks below call them with an info table's fields).
  local rec = {}
  -- (rec.call and rec.attempt observe at once: the ends still queued go first, so that a series'
  -- sum adds its observations in the order they came: a first status of a class, 201 after 200s, or
  -- these hooks chained with others, reach an entry the queue holds ends of)
  local drain = store.drain
  function rec.call(call, status, tag, duration)
    drain()
    if call == nil then call = "" end
    local s = status == nil and "" or classes[status] or status_label(status)
    if tag == nil then tag = "" end
    local t = cache_c[call]
    t = t and t[s]
    local e = t and t[tag] or series3(cache_c, F.c, call, s, tag)
    if e then observe(e, duration, P) else lost() end
    if store.eager then store.touch() end
  end
  function rec.attempt(call, status, tag, total, sent, received)
    drain()
    if call == nil then call = "" end
    local s = status == nil and "" or classes[status] or status_label(status)
    if tag == nil then tag = "" end
    local t = cache_a[call]
    t = t and t[s]
    local e = t and t[tag] or series3(cache_a, F.a, call, s, tag)
    if e then observe(e, total, P) else lost() end
    if type(sent) == "number" and sent > 0 then count(cache_s[call] or series1(cache_s, F.s, call), sent) end
    if type(received) == "number" and received > 0 then
      count(cache_b[call] or series1(cache_b, F.b, call), received)
    end
    if store.eager then store.touch() end
  end

  -- rec.known_call, rec.known_attempt: the same as rec.call and rec.attempt for a label set seen
  -- before, nothing that can raise (called without a pcall); false when they did nothing (a first
  -- event of its labels or status, a store still eager): rec.call / rec.attempt then. rec.known_pair:
  -- a call's end and its last attempt's, both answered with the same status (false: neither
  -- recorded). An answer's label sets (no tag) are found by the status number itself, with no
  -- label text looked up: fast[call][status], the pair of entries queued (store.push) with the
  -- event's numbers; an attempt's once its byte counters are made too (at their first event).
  -- Entries are never dropped: reset deletes numbers only. A set with a tag is observed at once.
  local fast, push = {}, store.push
  local function slow_entry(cache, call, status, tag)
    local s = status == nil and "" or classes[status]
    if s == nil then return nil end
    local t = cache[call == nil and "" or call]
    t = t and t[s]
    return t and t[tag == nil and "" or tag]
  end
  -- the pair of call and status, made at the first known event of either
  local function pair_of(call, status)
    local t = fast[call]
    if not t then
      t = {}
      fast[call] = t
    end
    local pr = t[status]
    if not pr then
      pr = { c = false, a = false, s = false, b = false }
      t[status] = pr
    end
    return pr
  end
  function rec.known_call(call, status, tag, duration)
    local t = tag == nil and fast[call]
    local pr = t and t[status]
    if not (pr and pr.c) then
      if store.eager then return false end
      local e = slow_entry(cache_c, call, status, tag)
      if not e then return false end
      if tag ~= nil or call == nil or status == nil then
        observe(e, duration, P)
        return true
      end
      pr = pair_of(call, status)
      pr.c = e
    end
    return push(pr, duration, false, nil, nil)
  end
  function rec.known_attempt(call, status, tag, total, sent, received)
    local t = tag == nil and fast[call]
    local pr = t and t[status]
    if not (pr and pr.a) then
      if store.eager then return false end
      local e = slow_entry(cache_a, call, status, tag)
      if not e then return false end
      local key = call == nil and "" or call
      local es, eb = cache_s[key], cache_b[key]
      local counted_s, counted_b = type(sent) == "number" and sent > 0, type(received) == "number" and received > 0
      if (counted_s and not es) or (counted_b and not eb) then return false end
      if tag ~= nil or call == nil or status == nil or not (es and eb) then
        observe(e, total, P)
        if counted_s then count(es, sent) end
        if counted_b then count(eb, received) end
        return true
      end
      pr = pair_of(call, status)
      pr.a, pr.s, pr.b = e, es, eb
    end
    return push(pr, false, total, sent, received)
  end
  function rec.known_pair(call, status, duration, total, sent, received)
    local t = fast[call]
    local pr = t and t[status]
    if not (pr and pr.c and pr.a) then return false end
    return push(pr, duration, total, sent, received)
  end

  local hooks = {}
  function hooks.on_call(info)
    if info.phase ~= "end" then return end
    rec.call(info.call, info.status, info.tag, info.duration)
  end
  function hooks.on_attempt(info)
    if info.phase ~= "end" then return end
    local timings = info.timings
    rec.attempt(info.call, info.status, info.tag, timings and timings.total, info.bytes_sent, info.bytes_received)
  end
  function hooks.on_retry(info)
    count(series2(cache_r, F.r, info.call, info.reason), 1)
    if store.eager then store.touch() end
  end
  function hooks.on_token(info)
    if info.phase ~= "end" then return end
    local e = series2(cache_t, F.t, info.source, info.tag)
    if e then observe(e, info.duration, P) else lost() end
    if store.eager then store.touch() end
  end
  function hooks.on_poll(info)
    local call = info.call
    if call == nil then call = "" end
    count(cache_w[call] or series1(cache_w, F.w, call), 1)
    if store.eager then store.touch() end
  end
  -- (they count ends only: no start event is made for them; lua/vertexops/hooks.lua)
  local H = require "vertexops.hooks"
  H.END_ONLY[hooks.on_call], H.END_ONLY[hooks.on_attempt], H.END_ONLY[hooks.on_token] = true, true, true
  -- (weakly: RECORDERS is weak-keyed by on_attempt, and on LuaJIT a value reaching its key keeps both)
  rec.fns = setmetatable({ on_call = hooks.on_call, on_attempt = hooks.on_attempt }, { __mode = "v" })
  H.RECORDERS[hooks.on_attempt] = rec
  self._hooks = hooks
  return hooks
end

-- The numbers of this object: {id = {slot = value}} and each id's family and label text.
function Metrics:_read()
  local store = self.store
  if store.sync then store.sync() end
  local byid, known = {}, {}
  local mine = self.prefix .. "\t"
  for k, v in store.each() do
    local id, slot = k:match("^\1(%d+):(.*)$")
    id = tonumber(id)
    if id then
      local what = known[id]
      if what == nil then
        local identity = store.identity(id)
        what = false
        if identity and identity:sub(1, #mine) == mine then
          local fid, labels = identity:match("^([^\t]*)\t(.*)$", #mine + 1)
          if fid and FAMILY[fid] then what = { fid = fid, labels = labels } end
        end
        known[id] = what
      end
      if what then
        local s = byid[id]
        if not s then s = { what = what, slots = {}, keys = {} }; byid[id] = s end
        s.slots[slot] = (s.slots[slot] or 0) + v
        s.keys[#s.keys + 1] = k
      end
    end
  end
  return byid
end

--- Forgets every number of this object (in the shared dict: for every worker).
function Metrics:reset()
  for _, s in pairs(self:_read()) do
    for _, k in ipairs(s.keys) do self.store.delete(k) end
  end
end

local function help_line(out, name, help, kind)
  out[#out + 1] = "# HELP " .. name .. " " .. help:gsub("\\", "\\\\"):gsub("\n", "\\n")
  out[#out + 1] = "# TYPE " .. name .. " " .. kind
end

--- The numbers in Prometheus' text exposition format (text/plain; version=0.0.4): each family's
--- HELP and TYPE lines (all of them, also before a first event), its samples sorted by labels,
--- histogram buckets cumulative in increasing `le` with `+Inf` equal to `_count`.
---@return string
function Metrics:render()
  -- data[family id][labels] = {slot = value}
  local data = {}
  for _, f in ipairs(FAMILIES) do data[f.id] = {} end
  for _, s in pairs(self:_read()) do
    local series = data[s.what.fid]
    local labels = s.what.labels
    local into = series[labels]
    if not into then into = {}; series[labels] = into end
    for slot, v in pairs(s.slots) do into[slot] = (into[slot] or 0) + v end
  end
  local out = {}
  local pre = self.prefix == "" and "" or self.prefix .. "_"
  for _, f in ipairs(FAMILIES) do
    local series = data[f.id]
    local order = {}
    for labels in pairs(series) do order[#order + 1] = labels end
    table_sort(order)
    if f.kind == "counter" then
      local name = pre .. f.name
      help_line(out, name, f.help, "counter")
      for _, labels in ipairs(order) do
        out[#out + 1] = name .. "{" .. labels .. "} " .. number(series[labels][""] or 0)
      end
    else
      -- the bounds: this object's, and any other a worker configured differently stored
      local les, seen = {}, {}
      for i, b in ipairs(self.buckets) do les[i] = { b, self.le[i] }; seen[self.le[i]] = true end
      for _, labels in ipairs(order) do
        for slot in pairs(series[labels]) do
          if not seen[slot] and slot ~= "sum" and slot ~= "n" and slot ~= "+Inf" and tonumber(slot) then
            seen[slot] = true
            les[#les + 1] = { tonumber(slot), slot }
          end
        end
      end
      table_sort(les, function(x, y) return x[1] < y[1] end)
      local counts = {}
      for i, labels in ipairs(order) do
        local s, c = series[labels], 0
        for _, le in ipairs(les) do c = c + (s[le[2]] or 0) end
        counts[i] = c + (s["+Inf"] or 0)
      end
      local total = pre .. f.total
      help_line(out, total, f.total_help, "counter")
      for i, labels in ipairs(order) do
        out[#out + 1] = total .. "{" .. labels .. "} " .. number(counts[i] + (series[labels].n or 0))
      end
      local name = pre .. f.name
      help_line(out, name, f.help, "histogram")
      for i, labels in ipairs(order) do
        local s, c = series[labels], 0
        local sep = labels == "" and "" or ","
        for _, le in ipairs(les) do
          c = c + (s[le[2]] or 0)
          out[#out + 1] = name .. "_bucket{" .. labels .. sep .. 'le="' .. le[2] .. '"} ' .. number(c)
        end
        out[#out + 1] = name .. "_bucket{" .. labels .. sep .. 'le="+Inf"} ' .. number(counts[i])
        out[#out + 1] = name .. "_sum{" .. labels .. "} " .. number(s.sum or 0)
        out[#out + 1] = name .. "_count{" .. labels .. "} " .. number(counts[i])
      end
    end
  end
  out[#out + 1] = ""
  return table_concat(out, "\n")
end

--- The Content-Type of render()'s text.
M.CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

return M
