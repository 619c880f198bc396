-- make bench-fleet (and make bench, after bench/run.lua): cancel_all against the fake server next
-- to raw libcurl multi (bench/fleet_curl.c) doing the same list + cancel sweep with the same window.
-- Writes the "## Fleet" section of bench/RESULTS.md (replacing the one there) and prints it.
--
-- Scaling: 1,000, 10,000 and 100,000 running operations, the fake answering at once (the clients'
-- own cost decides); the window: 10,000 operations, every answer held 10 ms (concurrency decides);
-- the wait: what re-listing and one GET per operation cost; a quota: 100,000 operations against the
-- fake's quota on its virtual clock, paced three ways.
local fake = require "support.fake"
local H = require "support.helper"
local cjson = require "cjson"

local OUT = "bench/RESULTS.md"
local RUNS = tonumber(os.getenv("FLEET_RUNS") or "3")
-- rounds at 100,000 (issue 20 §3: >= 5; a median of 5 flips from run to run on a shared 2-core machine)
local RUNS_BIG = tonumber(os.getenv("FLEET_RUNS_BIG") or "9")
local STREAMS = 100 -- a Google front end's SETTINGS_MAX_CONCURRENT_STREAMS
local WINDOW = 100  -- cancel_all's default max_in_flight (lua/vertexops/options.lua)
local LUA54 = 'LUA_PATH="./lua/?.lua;./lua/?/init.lua;;" LUA_CPATH="./build/5.4/?.so;;" lua5.4'
local LUAJIT = 'LUA_PATH="./lua/?.lua;./lua/?/init.lua;;" LUA_CPATH="./build/jit/?.so;;" luajit'

local server = fake.start()

local common = require "bench.common"
local sh, median = common.sh, common.median

-- One sweep: n fresh running operations (spec: how they are made), then the contender's command.
local function sweep(cmd, n, hold, spec)
  server:reset()
  server:config { nolog = true, hold = hold or 0 }
  server:create_many(n, spec or { done_after = 36000 })
  local out = sh(cmd)
  local line = out:match("(%b{})%s*$")
  local doc = line and cjson.decode(line)
  if not doc then error("contender failed: " .. cmd .. "\n" .. out) end
  assert(doc.failed == 0, cmd .. ": " .. doc.failed .. " cancels failed")
  doc.connections = server:stats().connections
  doc.rate = doc.calls / doc.seconds
  return doc
end

-- Every contender of cmds once per round, runs rounds in turn (the machine's state then falls on
-- all of them alike); per contender the round of its median rate, its peak RSS the most of any
-- round, connections (conn_lo, conn_hi) the median (spread) over the rounds, and ratio (ratio_lo,
-- ratio_hi): the median (spread) over the rounds of its rate ÷ the first contender's in the same round.
local function rounds_of(cmds, n, runs)
  local docs = {}
  for r = 1, runs do
    for k, cmd in ipairs(cmds) do
      docs[k] = docs[k] or {}
      docs[k][r] = sweep(cmd, n)
    end
  end
  local out = {}
  for k = 1, #cmds do
    local ratios, rates, conns, rss = {}, {}, {}, 0
    for r = 1, runs do
      local d = docs[k][r]
      ratios[r], rates[r], conns[r], rss = d.rate / docs[1][r].rate, d.rate, d.connections, math.max(rss, d.rss_kb)
    end
    local rate = median(rates)
    local m
    for r = 1, runs do
      if docs[k][r].rate == rate then m = docs[k][r] end
    end
    m.rss_kb = rss
    m.connections, m.conn_lo, m.conn_hi = median(conns)
    m.ratio, m.ratio_lo, m.ratio_hi = median(ratios)
    out[k] = m
  end
  return out
end

local function args(window, page_size, extra)
  return ("%s %s %s %d %d%s"):format(server.endpoint, server.ca_file, H.PARENT, window, page_size or 1000,
    extra and " " .. extra or "")
end
local function raw(window) return "build/bench/fleet_curl " .. args(window) end
local function vx(lua, window, extra) return lua .. " bench/vx_fleet.lua " .. args(window, 1000, extra) end

local lines = { "## Fleet: cancel_all", "" }
local function add(s) lines[#lines + 1] = s end
local targets = {}
local function target(text, met, detail)
  targets[#targets + 1] = ("| %s | %s | %s |"):format(met and "MET" or "NOT MET", text, detail)
end
local function mib(kb) return ("%.1f MiB"):format(kb / 1024) end

-- Scaling ----------------------------------------------------------------------------------------
io.stderr:write("fleet: scaling (1k, 10k, 100k; the fake answers at once)\n")
add(("Every running operation of a parent listed (pageSize 1000, filter done=false) and cancelled, %d "
  .. "requests in flight (the page fetch among them), HTTPS + HTTP/2 on loopback, the fake answering at once. "
  .. "The contenders take turns, one sweep each per round (1 round at 1,000, 3 at 10,000, %d at 100,000); a "
  .. "row is the round of the contender's median rate, × raw the median (min–max) of its rate ÷ raw "
  .. "libcurl's in the same round: on this shared machine one sweep decides nothing; connections the median "
  .. "(min–max) over the rounds, peak RSS the most of any round."):format(WINDOW, RUNS_BIG))
add("")
add("| operations | contender | seconds | cancels/s | × raw (rounds) | connections | peak RSS |")
add("|---:|---|---:|---:|---:|---:|---:|")
local at = {}
for _, n in ipairs { 1000, 10000, 100000 } do
  local runs = n == 1000 and 1 or n == 100000 and RUNS_BIG or RUNS
  local got = rounds_of({ raw(WINDOW), vx(LUA54, WINDOW), vx(LUAJIT, WINDOW) }, n, runs)
  local r, v, j = got[1], got[2], got[3]
  at[n] = { raw = r, vx = v, jit = j }
  for _, row in ipairs { { "raw libcurl multi (C)", r }, { "cancel_all, Lua 5.4", v }, { "cancel_all, LuaJIT", j } } do
    local d = row[2]
    local ratio = runs > 1 and ("%.2f (%.2f–%.2f)"):format(d.ratio, d.ratio_lo, d.ratio_hi) or ("%.2f"):format(d.ratio)
    local conns = d.conn_lo == d.conn_hi and ("%d"):format(d.connections)
      or ("%d (%d–%d)"):format(d.connections, d.conn_lo, d.conn_hi)
    add(("| %d | %s | %.2f | %.0f | %s | %s | %s |"):format(n, row[1], d.seconds, d.rate, ratio, conns, mib(d.rss_kb)))
  end
end
local big = at[100000]

-- The window -------------------------------------------------------------------------------------
io.stderr:write("fleet: the window (10k, every answer held 10 ms)\n")
add("")
add("The window (`max_in_flight`): 10,000 operations, every answer held 10 ms as a service's own time "
  .. "would; cancel_all on Lua 5.4.")
add("")
add("| max_in_flight | seconds | cancels/s | connections | peak RSS |")
add("|---:|---:|---:|---:|---:|")
for _, w in ipairs { 10, 50, 100, 200 } do
  local d = sweep(vx(LUA54, w), 10000, 0.01)
  add(("| %d | %.2f | %.0f | %d | %s |"):format(w, d.seconds, d.rate, d.connections, mib(d.rss_kb)))
end
add("")
add(("Default: %d, one HTTP/2 connection's worth of streams at Google (%d concurrent streams): past it "
  .. "libcurl opens another connection, and the service's quota, not the client, sets the pace."):format(WINDOW, STREAMS))

-- The wait ---------------------------------------------------------------------------------------
io.stderr:write("fleet: the wait\n")
add("")
add("The wait (`wait = true`): 10,000 operations cancelled, then waited for; requests of the wait alone.")
add("")
add("| wait_by | requests | seconds (whole call) |")
add("|---|---:|---:|")
local waits = {}
for _, by in ipairs { "list", "get", "auto" } do
  local d = sweep(vx(LUA54, WINDOW, by), 10000, 0)
  waits[by] = d
  add(("| %s | %d | %.2f |"):format(by, d.wait_requests, d.seconds))
end
add("")
add("A listing costs a request per page of 1,000; a GET round one request per operation still running. "
  .. "`auto` lists while that costs fewer requests than a GET each (before a full listing is known, the "
  .. "cancel phase's page count is its lower bound), and GETs once the few left cost less.")

-- Under a quota, on the virtual clock (issue 20 §2) ------------------------------------------------
-- One process (this one, the bench's interpreter) sweeps QUOTA_N operations against the fake's quota
-- of QUOTA_Q a minute for its project and location (429 RESOURCE_EXHAUSTED with QuotaFailure and
-- RetryInfo past it, docs/fake.md), three ways: the limiter at the quota, the adaptive pacing (no
-- rate option: what cancel_all does by default) and no pacing at all (rate = false: what cancel_all
-- did before issue 20). The client's clock mirrors the fake's virtual clock: a sleep moves both, so
-- 17 minutes of quota take seconds. Throughput: operations cancelled per minute of the windows the
-- sweep spans (its elapsed virtual time plus the last window: a burst of a whole quota at the start
-- counts once), as spec/10_fleet_quota_spec.lua counts it.
local QUOTA_N, QUOTA_Q = tonumber(os.getenv("FLEET_QUOTA_N") or "100000"), 6000
local vertexops = require "vertexops"
local function quota_sweep(extra)
  server:reset()
  server:config { nolog = true, hold = 0 }
  server:create_many(QUOTA_N, {})
  local t = { now = 1000 }
  server:clock { virtual = t.now }
  server:quota { requests = QUOTA_Q, per = 60 }
  server:reset_log()
  local o = H.opts(server, { timeout = 86400, clock = function() return t.now end,
    sleep = function(sec)
      t.now = t.now + sec
      server:clock { virtual = t.now }
    end }, extra)
  local started = os.clock()
  local summary = vertexops.cancel_all(H.PARENT, nil, o)
  local st = server:stats()
  server:quota(false)
  return { summary = summary, stats = st, cpu = os.clock() - started,
           per_minute = summary.cancelled / (summary.elapsed / 60 + 1) }
end
io.stderr:write(("fleet: %d operations under a quota of %d a minute, virtual clock\n"):format(QUOTA_N, QUOTA_Q))
add("")
add(("Under a quota, on the virtual clock: %d operations, the fake's quota of Q = %d requests a minute for "
  .. "the project and location (429 `RESOURCE_EXHAUSTED` with `QuotaFailure` and `RetryInfo` past it), one "
  .. "process (Lua 5.4) whose clock is the fake's virtual one: a sleep moves both, so the sweep's minutes "
  .. "pass in seconds and only the requests count. Filled: operations cancelled per minute of the windows "
  .. "the sweep spans (its virtual time plus the last window) ÷ Q. Accounted for: cancelled + failed = "
  .. "listed = %d."):format(QUOTA_N, QUOTA_Q, QUOTA_N))
add("")
add("| pacing | cancelled | failed | requests | answered 429 | virtual minutes | filled (× Q) | client CPU s |")
add("|---|---:|---:|---:|---:|---:|---:|---:|")
local quota_rows = {}
for _, row in ipairs { { "`rate = {requests = Q}` (the limiter)", { rate = { requests = QUOTA_Q, per = 60 } } },
                       { "none given: cancel_all's adaptive pacing", {} },
                       { "`rate = false`: no pacing (before issue 20)", { rate = false } } } do
  local d = quota_sweep(row[2])
  quota_rows[#quota_rows + 1] = d
  add(("| %s | %d | %d | %d | %d (%.2f %%) | %.1f | %.3f | %.1f |"):format(row[1], d.summary.cancelled,
    #d.summary.failed, d.stats.requests, d.stats.quota_exceeded, 100 * d.stats.quota_exceeded / d.stats.requests,
    d.summary.elapsed / 60, d.per_minute / QUOTA_Q, d.cpu))
end
server:stop()

-- Targets ----------------------------------------------------------------------------------------
target(("cancel_all of 100,000 ≥ 0.9× raw libcurl multi (Lua 5.4), median of %d rounds"):format(RUNS_BIG),
  big.vx.ratio >= 0.9, ("%.2f× (%.2f–%.2f)"):format(big.vx.ratio, big.vx.ratio_lo, big.vx.ratio_hi))
target(("cancel_all of 100,000 ≥ 0.9× raw libcurl multi (LuaJIT), median of %d rounds"):format(RUNS_BIG),
  big.jit.ratio >= 0.9, ("%.2f× (%.2f–%.2f)"):format(big.jit.ratio, big.jit.ratio_lo, big.jit.ratio_hi))
target("peak RSS < 64 MiB cancelling 100,000", math.max(big.vx.rss_kb, big.jit.rss_kb) < 64 * 1024,
  mib(math.max(big.vx.rss_kb, big.jit.rss_kb)))
-- What the server's limits require: ⌈window / streams⌉ connections at a time, a new one each time a
-- connection has served keepalive_requests requests and sent GOAWAY.
local per_conn = fake.DEFAULTS.keepalive_requests
local requests = 100000 + math.ceil(100000 / 1000)
local need = math.ceil(WINDOW / STREAMS) * math.ceil(requests / per_conn)
-- (the median round's: a sweep now and then opens one more, while a connection that sent GOAWAY
-- still drains its streams and the next is not yet up)
target(("connections ≤ %d (window %d / %d streams, a GOAWAY every %d requests: ⌈%d / %d⌉), median round")
  :format(need, WINDOW, STREAMS, per_conn, requests, per_conn),
  math.max(big.vx.connections, big.jit.connections) <= need,
  ("%d and %d connection(s) (Lua 5.4 %d–%d, LuaJIT %d–%d over the rounds; raw libcurl multi: %d)"):format(
    big.vx.connections, big.jit.connections, big.vx.conn_lo, big.vx.conn_hi, big.jit.conn_lo, big.jit.conn_hi,
    big.raw.connections))
local function quota_target(label, d)
  local accounted = d.summary.cancelled + #d.summary.failed == QUOTA_N and d.summary.listed == QUOTA_N
  target(("%s: %d operations against Q = %d/min on the virtual clock fill ≥ 0.95 Q, ≤ 1 %% of requests "
    .. "answered 429, every operation accounted for"):format(label, QUOTA_N, QUOTA_Q),
    d.per_minute >= 0.95 * QUOTA_Q and d.stats.quota_exceeded <= 0.01 * d.stats.requests and accounted,
    ("%.3f Q, %.2f %% 429, %d cancelled + %d failed of %d listed"):format(d.per_minute / QUOTA_Q,
      100 * d.stats.quota_exceeded / d.stats.requests, d.summary.cancelled, #d.summary.failed, d.summary.listed))
end
quota_target("cancel_all with rate = {requests = Q}", quota_rows[1])
quota_target("cancel_all without a rate (adaptive)", quota_rows[2])
target("wait = true (auto) costs no more requests than the cheaper of list and get",
  waits.auto.wait_requests <= math.min(waits.list.wait_requests, waits.get.wait_requests),
  ("%d vs list %d, get %d"):format(waits.auto.wait_requests, waits.list.wait_requests, waits.get.wait_requests))
add("")
add("| | target | measured |")
add("|---|---|---|")
for _, t in ipairs(targets) do add(t) end
add("")
add("libcurl 7.88 can hold HTTP/2 answers it has already read until its socket has news again; with a "
  .. "window of streams answered at once a 1 s poll then stalls for the whole second. cancel_all polls "
  .. "its multi handle at most 10 ms at a time, and so does the C contender.")

-- RESULTS.md: this section replaces the one there (bench/run.lua writes the rest) ---------------
common.write_section(OUT, "Fleet: cancel_all", table.concat(lines, "\n") .. "\n")
