-- vertexops.rate_redis: option rate's window shared by processes on many hosts through a Redis
-- server (`rate = {requests = n, per = s, redis = {host = ..., port = ...}}`), for
-- lua/vertexops/rate.lua's permit.
--
-- The clients: outside nginx, libhiredis (Debian's libhiredis-dev) through core.redis
-- (csrc/redis.c): blocking, each connect and exchange bounded by rate.redis.timeout and what is
-- left of the call's deadline. Inside nginx, the few RESP commands needed (AUTH, SELECT, SCRIPT
-- LOAD, EVALSHA) spoken here over a cosocket (ngx.socket.tcp, its keepalive pool): Debian's
-- lua-nginx-redis (resty.redis 0.27, installed as nginx.redis) depends on nginx-extras and its
-- twenty modules, and Debian's lua-redis has no Lua 5.4 build and blocks on LuaSocket
-- (ARCHITECTURE.md, "Redis").
--
-- The scheme: the window of rate_shared.lua (BUCKETS buckets of g = per / BUCKETS seconds, a
-- request goes when the current bucket and the BUCKETS before it hold fewer than n; 40 buckets,
-- as there: a request holds its place per + at most a bucket, 2.5 % of the window), each
-- permit one atomic Redis script (PERMIT below): it reads the buckets and, when there is room,
-- counts the request in the current one, all at once, so no reservation is ever given back. The
-- bucket's number comes from the caller's clock when the options inject one (the specs' virtual
-- clock: every participant must then read the same clock), else from Redis's TIME, one clock for
-- every host (the monotonic clocks of two hosts are unrelated; a host's wall clock may be off).
-- A refusal answers how long until the oldest counted bucket leaves the window; the process
-- sleeps that long (host.sleep_for) plus a jitter of a tenth of a bucket, DEFER of a bucket more
-- when it took its share (n / participants) or more in the last `per` seconds. An answer moves
-- the request's count to the answer's bucket (MOVE), as the dict's window does.
--
-- Participants: each permit and each answer (MOVE) adds the process's id to the set of the
-- current period of `per` seconds; the scripts answer the larger count of this period's and the
-- last one's (a count read at the answers too: a process whose requests are all in flight asks no
-- permit, and would otherwise keep the count of its first permits, when the others had not come).
-- Latency: each answer (MOVE) reports its request's, permit to answer; Redis keeps the largest for
-- two periods from its last raise and both scripts answer it (st.fleet_latency), for the silence
-- after a fall (below).
--
-- Redis down, slow or answering errors: the window of this process's client is local, at
-- max(1, floor(n / participants)) (the last count read; before any, rate.redis.participants), with
-- one warning on stderr (inside nginx: nginx's error log) naming the server and the rate fallen
-- back to; never an error of a call and never more than the share of one participant. A process
-- that Redis had answered (st.contacted) marks the fall (st.fell) and rate.lua keeps a silence
-- first ("a shared window's fall"): what Redis let go before it failed, for any process, may still
-- reach Google, so nothing goes until a window after the last of those may have arrived -- after
-- the answers of this process's requests still in flight (rate.lua keeps the slots Redis gave in
-- st.flying until their answers), and no sooner than the fall plus the largest latency this process
-- has seen or the fleet reported (st.latency, st.fleet_latency: the other processes' requests in
-- flight). The process asks Redis again
-- `per` seconds after the fall (on the options' clock) and says so when it is back.
local core = require "vertexops.core"
local host = require "vertexops.host"
local errors = require "vertexops.errors"

local math_floor, math_max, math_min, math_random = math.floor, math.max, math.min, math.random
local ipairs, pairs, pcall, rawget, tonumber, tostring, type = ipairs, pairs, pcall, rawget, tonumber, tostring, type
local unpack = rawget(table, "unpack") or rawget(_G, "unpack")
local string_format = string.format
local table_concat = table.concat
local _G = _G

local M = {}

M.BUCKETS = 40 -- buckets per window (as rate_shared.lua's)
M.DEFER = 0.3  -- buckets a process past its share waits more than the others for a freed place

-- The defaults of rate.redis's fields, from the schema (csrc/options.c).
local DEFAULTS = {}
for _, e in ipairs(core.OPTIONS) do
  if e.name == "rate" then
    for _, f in ipairs(e.fields) do
      if f.name == "redis" then
        for _, r in ipairs(f.fields) do DEFAULTS[r.name] = r.default end
      end
    end
  end
end
M.DEFAULTS = DEFAULTS

-- PERMIT: KEYS[1] the window's base key; ARGV: now ("" for Redis's TIME), g, BUCKETS, n, the
-- process's id, per. Answers {1, participants, bucket, "", latency} (counted) or {0, participants,
-- bucket, seconds until the oldest counted bucket leaves, latency}: latency the largest any
-- process reported in the last two periods (MOVE; seconds, "" before any). Fractions are strings:
-- Redis truncates numbers to integers.
M.PERMIT = [[
local base = KEYS[1]
local g, K, n, per = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[6])
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call("TIME")
  now = tonumber(t[1]) + tonumber(t[2]) / 1e6
end
local b = math.floor(now / g)
local p = math.floor(now / per)
local pk = base .. ":p:" .. p
redis.call("SADD", pk, ARGV[5])
redis.call("PEXPIRE", pk, math.ceil(2000 * per))
local parts = math.max(redis.call("SCARD", pk), redis.call("SCARD", base .. ":p:" .. (p - 1)))
local keys = {}
for i = b - K, b do keys[#keys + 1] = base .. ":" .. i end
local vals = redis.call("MGET", unpack(keys))
local total, oldest = 0, nil
for i = 1, #keys do
  local v = tonumber(vals[i])
  if v and v > 0 then
    total = total + v
    oldest = oldest or (b - K + i - 1)
  end
end
local lat = redis.call("GET", base .. ":lat") or ""
if total < n then
  local k = base .. ":" .. b
  redis.call("INCR", k)
  redis.call("PEXPIRE", k, math.ceil(1000 * (per + 2 * g)))
  return {1, parts, b, "", lat}
end
return {0, parts, b, tostring(((oldest or b) + K + 1) * g - now), lat}
]]

-- MOVE: KEYS[1] the base; ARGV: the bucket a request was counted in, now ("": TIME), g, per, the
-- process's id, the request's latency (permit to answer, seconds; "" for none). The process counts
-- among the participants (it has requests), the latency raises the fleet's (kept two periods from
-- its last raise). Answers {participants, the fleet's latency}.
M.MOVE = [[
local base = KEYS[1]
local b, g, per = tonumber(ARGV[1]), tonumber(ARGV[3]), tonumber(ARGV[4])
local now = tonumber(ARGV[2])
if not now then
  local t = redis.call("TIME")
  now = tonumber(t[1]) + tonumber(t[2]) / 1e6
end
local nb = math.floor(now / g)
if nb > b then
  local k = base .. ":" .. nb
  redis.call("INCR", k)
  redis.call("PEXPIRE", k, math.ceil(1000 * (per + 2 * g)))
  local old = base .. ":" .. b
  if redis.call("EXISTS", old) == 1 then redis.call("DECR", old) end
end
local p = math.floor(now / per)
local pk = base .. ":p:" .. p
redis.call("SADD", pk, ARGV[5])
redis.call("PEXPIRE", pk, math.ceil(2000 * per))
local parts = math.max(redis.call("SCARD", pk), redis.call("SCARD", base .. ":p:" .. (p - 1)))
local lk = base .. ":lat"
local lat, mine = tonumber(redis.call("GET", lk)), tonumber(ARGV[6])
if mine and (not lat or mine > lat) then
  lat = mine
  redis.call("SET", lk, ARGV[6], "PX", math.ceil(2000 * per))
end
return {parts, lat and tostring(lat) or ""}
]]

local function ngx_of() return rawget(_G, "ngx") end

-- This process's id among the participants (a Lua state's: unique enough across hosts).
local ID
local function id()
  if not ID then
    local ngx = ngx_of()
    local pid = ngx and ngx.worker and ngx.worker.pid and ngx.worker.pid() or 0
    ID = string_format("%s-%d-%.6f-%s", tostring(pid), os.time(), core.clock() % 1e6, tostring({}):match("0x%x+") or "")
  end
  return ID
end

-- RESP over a cosocket (inside nginx) ---------------------------------------------------------
local MAX_BULK, MAX_ITEMS, MAX_DEPTH = 65536, 64, 3

--- resp(args) -> the RESP bytes of one command (an array of bulk strings).
function M.resp(args)
  local out = { "*", #args, "\r\n" }
  for _, a in ipairs(args) do
    a = tostring(a)
    out[#out + 1] = "$" .. #a .. "\r\n"
    out[#out + 1] = a
    out[#out + 1] = "\r\n"
  end
  return table_concat(out)
end

local function count_of(s, lo)
  if not s:find("^%-?%d+$") or #s > 18 then return nil end
  local v = tonumber(s)
  if v < lo then return nil end
  return v
end

--- read(receive, depth) -> one RESP reply read with receive (a cosocket's receive: "*l" a line
--- without its CR LF, n: n bytes), as core.redis answers it (false for nil), or nil, message,
--- kind ("reply": an error reply; "io": the exchange failed or the reply is malformed: the
--- connection must be closed). Strict: a line's type byte, digits only, bounded sizes and depth.
function M.read(receive, depth)
  depth = depth or 0
  local line, err = receive("*l")
  if not line then return nil, "cannot read the reply: " .. tostring(err), "io" end
  local t, rest = line:sub(1, 1), line:sub(2)
  if rest:find("[\r\n]") then return nil, "a malformed reply", "io" end
  if t == "+" then return rest end
  if t == "-" then return nil, rest, "reply" end
  if t == ":" then
    local v = count_of(rest, -math.huge)
    if not v then return nil, "a malformed integer reply", "io" end
    return v
  end
  if t == "$" then
    local n = count_of(rest, -1)
    if not n or n > MAX_BULK then return nil, "a malformed or too long bulk reply", "io" end
    if n == -1 then return false end
    local data, err2 = receive(n + 2)
    if not data then return nil, "cannot read the reply: " .. tostring(err2), "io" end
    if data:sub(-2) ~= "\r\n" then return nil, "a malformed bulk reply", "io" end
    return data:sub(1, n)
  end
  if t == "*" then
    local n = count_of(rest, -1)
    if not n or n > MAX_ITEMS or depth >= MAX_DEPTH then return nil, "a malformed or too long array reply", "io" end
    if n == -1 then return false end
    local out = {}
    for i = 1, n do
      local v, e, kind = M.read(receive, depth + 1)
      if v == nil then
        if kind == "reply" then v = { error = e } else return nil, e, kind end
      end
      out[i] = v
    end
    return out
  end
  return nil, "a malformed reply", "io"
end

-- One command over a cosocket from the pool of the server: connects (AUTH, SELECT when new).
local function cosocket_command(st, timeout, args)
  local ngx = ngx_of()
  local sock = ngx.socket.tcp()
  local ms = math_max(1, math_floor(timeout * 1000))
  sock:settimeouts(ms, ms, ms)
  local ok, err = sock:connect(st.host, st.port, { pool = st.pool })
  if not ok then return nil, string_format("cannot connect to %s:%d: %s", st.host, st.port, tostring(err)), "io" end
  local receive = function(p) return sock:receive(p) end
  local function exchange(a)
    local sent, e = sock:send(M.resp(a))
    if not sent then return nil, "cannot send: " .. tostring(e), "io" end
    return M.read(receive)
  end
  if sock:getreusedtimes() == 0 then
    local setup = {}
    if st.password then setup[#setup + 1] = { "AUTH", st.password } end
    if st.db ~= 0 then setup[#setup + 1] = { "SELECT", st.db } end
    for _, a in ipairs(setup) do
      local v, e, kind = exchange(a)
      if v == nil then
        sock:close()
        return nil, a[1] .. " failed: " .. tostring(e), kind == "reply" and "io" or kind
      end
    end
  end
  local v, e, kind = exchange(args)
  if v == nil and kind == "io" then
    sock:close()
  else
    sock:setkeepalive(60000, 64)
  end
  return v, e, kind
end

-- libhiredis (outside nginx) --------------------------------------------------------------------
local conns = {} -- by server: one connection each (a Lua state's)

local function hiredis_command(st, timeout, args)
  local c = conns[st.pool]
  if not c then
    local err, kind
    c, err, kind = core.redis(st.host, st.port, timeout)
    if not c then return nil, err, kind end
    local setup = {}
    if st.password then setup[#setup + 1] = { "AUTH", st.password } end
    if st.db ~= 0 then setup[#setup + 1] = { "SELECT", tostring(st.db) } end
    for _, a in ipairs(setup) do
      local v, e = c:command(timeout, a[1], a[2])
      if v == nil then
        c:close()
        return nil, a[1] .. " failed: " .. tostring(e), "io"
      end
    end
    conns[st.pool] = c
  end
  local v, e, kind = c:command(timeout, unpack(args))
  if v == nil and kind == "io" then
    c:close()
    conns[st.pool] = nil
  end
  return v, e, kind
end

local function command(st, timeout, args)
  local ngx = ngx_of()
  if ngx and ngx.socket and ngx.socket.tcp then
    local ok, v, e, kind = pcall(cosocket_command, st, timeout, args)
    if not ok then return nil, tostring(v), "io" end -- the cosocket API is off in this phase
    return v, e, kind
  end
  return hiredis_command(st, timeout, args)
end

local shas = {} -- by server, then by script: its SHA1 (SCRIPT LOAD's answer)

-- The script's answer (EVALSHA; loaded first, and again after a NOSCRIPT: a restarted server).
local function eval(st, script, timeout, args)
  local by = shas[st.pool]
  if not by then
    by = {}
    shas[st.pool] = by
  end
  for _ = 1, 2 do
    local sha = by[script]
    if not sha then
      local v, e = command(st, timeout, { "SCRIPT", "LOAD", script })
      if type(v) ~= "string" then return nil, "SCRIPT LOAD failed: " .. tostring(e) end
      sha, by[script] = v, v
    end
    local cmd = { "EVALSHA", sha, "1", st.base }
    for i = 1, #args do cmd[#cmd + 1] = tostring(args[i]) end
    local v, e, kind = command(st, timeout, cmd)
    if v ~= nil then return v end
    if kind ~= "reply" or not tostring(e):find("^NOSCRIPT") then return nil, e end
    by[script] = nil
  end
  return nil, "the script is not loaded"
end

--- state(r, per, key): the Redis state of one window of a client (rate r, key: project/location).
function M.state(r, per, key)
  local rd = r.redis
  local function field(k)
    local v = rd[k]
    if v == nil then return DEFAULTS[k] end
    return v
  end
  local ngx = ngx_of()
  local workers = ngx and ngx.worker and ngx.worker.count and ngx.worker.count() or 1
  local st = {
    host = field("host"), port = field("port"), password = rd.password, db = field("db"),
    timeout = field("timeout"), per = per, n = r.requests, g = per / M.BUCKETS,
    participants = rd.participants or workers,
    mine = { head = 1, tail = 0 }, -- the times of this process's permits in the last per seconds
  }
  st.base = string_format("%s{%d/%.17g/%s}", field("prefix"), r.requests, per, key)
  st.pool = string_format("vertexops redis %s:%d/%d/%s", st.host, st.port, st.db, st.password and "auth" or "")
  st.name = string_format("%s:%d", st.host, st.port)
  return st
end

local function warn(msg)
  local ngx = ngx_of()
  msg = "vertexops: " .. msg
  if ngx and ngx.log and ngx.WARN then ngx.log(ngx.WARN, msg) else io.stderr:write(msg, "\n") end
end

-- Redis failed: this window is local until `per` seconds from now, at n / participants.
local function degrade(st, now, why)
  local n = math_max(1, math_floor(st.n / st.participants))
  if not st.degraded then
    -- a process Redis had answered keeps a silence first (rate.lua: what Redis let go before it
    -- failed, for any process, may still reach Google)
    if st.contacted then st.fell = true end
    warn(string_format("option rate.redis (%s): %s; this process paces on its own at %d requests per %g s "
      .. "(rate.requests / %d participants) and asks Redis again in %g s", st.name, tostring(why), n, st.per,
      st.participants, st.per))
  end
  st.degraded, st.retry_at = n, now + st.per
  return nil, nil, nil, n
end

local function timeout_for(st, deadline, now)
  return math_min(st.timeout, math_max(deadline:at() - now, 0.001))
end

local function clock_arg(o, now)
  if o.clock then return string_format("%.17g", now) end
  return ""
end

--- permit(st, o, req, deadline) -> as rate.permit (nil, sent, slot: go; a TimeoutError), or
--- nil, nil, nil, n: Redis failed, pace locally at n requests per window.
function M.permit(st, o, req, deadline)
  local clock = deadline:clock()
  local g, n = st.g, st.n
  while true do
    local now = clock()
    if st.degraded and now < st.retry_at then return nil, nil, nil, st.degraded end
    local timeout = timeout_for(st, deadline, now)
    local r, err = eval(st, M.PERMIT, timeout,
      { clock_arg(o, now), string_format("%.17g", g), M.BUCKETS, n, id(), string_format("%.17g", st.per) })
    if r == nil and timeout < st.timeout and tostring(err):find("time[d ]*out") then
      -- the call's deadline, not rate.redis.timeout, ended the exchange: Redis did not fail (no
      -- fall back, no warning), the call ran out of time
      return errors.new("TimeoutError", string_format("%s did not finish within the call's timeout: option "
        .. "'rate' (%d requests per %g s for %s, shared through Redis at %s) was still asking Redis for a "
        .. "permit", req.call, n, st.per, req.rate_key, st.name))
    end
    if r == nil then return degrade(st, now, err) end
    if type(r) ~= "table" or (r[1] ~= 0 and r[1] ~= 1) or type(r[2]) ~= "number" or type(r[3]) ~= "number" then
      return degrade(st, now, "an unexpected answer to the window's script")
    end
    st.contacted = true
    st.fleet_latency = tonumber(r[5]) or st.fleet_latency
    if st.degraded then
      st.degraded = nil
      warn(string_format("option rate.redis (%s): Redis answers again; the window is shared again", st.name))
    end
    if r[2] > 0 then st.participants = r[2] end
    local mine = st.mine
    local h = mine.head
    while h <= mine.tail and mine[h] <= now - st.per do mine[h] = nil; h = h + 1 end
    mine.head = h
    if r[1] == 1 then
      mine.tail = mine.tail + 1
      mine[mine.tail] = now
      return nil, now, { redis = st, b = r[3] }
    end
    local wait = tonumber(r[4])
    if not wait then return degrade(st, now, "an unexpected answer to the window's script") end
    wait = math_max(wait, 0)
    if now + wait >= deadline:at() then
      return errors.new("TimeoutError", string_format("%s did not finish within the call's timeout: option "
        .. "'rate' (%d requests per %g s for %s, shared through Redis at %s) lets its next request go only "
        .. "after it", req.call, n, st.per, req.rate_key, st.name))
    end
    -- a process past its share of the window lets the others take the freed places first
    local defer = (mine.tail - mine.head + 1) * st.participants >= n and M.DEFER * g or 0
    host.sleep_for(o, wait + defer + math_random() * g * 0.1)
  end
end

--- answered(slot, o, now): the request of slot was answered at now (on o's clock): its count
--- moves to now's bucket, its latency (from slot.sent, rate.lua's) raises the fleet's, and the
--- answer says how many participate and the fleet's latency. A failure here is left alone (the
--- next permit finds it).
function M.answered(slot, o, now)
  local st = slot.redis
  if st.degraded then return end
  if math_floor(now / st.g) <= slot.b and o.clock then return end -- the same bucket
  local r = eval(st, M.MOVE, st.timeout, { slot.b, clock_arg(o, now), string_format("%.17g", st.g),
    string_format("%.17g", st.per), id(), slot.sent and string_format("%.17g", now - slot.sent) or "" })
  if type(r) == "table" then
    if type(r[1]) == "number" and r[1] > 0 then st.participants = r[1] end
    st.fleet_latency = tonumber(r[2]) or st.fleet_latency
  end
end

--- close(): closes this Lua state's connections (outside nginx).
function M.close()
  for k, c in pairs(conns) do
    c:close()
    conns[k] = nil
  end
end

return M
