-- make bench-fleet-shared (and make bench, after bench/fleet.lua): issue 20's shared rows -- a fleet
-- that shares one quota. Several processes cannot share a virtual clock, so these run on the real
-- clock with a scaled quota: the fake's quota of Q requests per PER seconds for one project and
-- location, and for DURATION seconds each
--   - 4 plain Lua 5.4 processes (spec/support/redis_fleet.lua, get in a loop) with option rate = the
--     quota shared through a real redis-server (rate.redis), and without pacing (no rate: each
--     retries its 429s on its own, RetryInfo honoured);
--   - 4 nginx workers x 4 light threads (spec/support/rate_worker.lua) with the rate shared through
--     a lua_shared_dict (rate.shared_dict), and without pacing.
-- Reports the share of Q filled (accepted per PER seconds of the windows spanned, the first
-- window's burst counted once), the 429 rate, and per-worker fairness (the least share / an even
-- share), against issue 20's targets: >= 0.9 Q, <= 2 % 429s, each >= 0.8 of an even share.
-- Writes the "## Fleet: one quota shared" section of bench/RESULTS.md. About a minute and a half.
local cjson = require "cjson"
local fake = require "support.fake"
local H = require "support.helper"
local fleet = require "support.redis_fleet"
local openresty = require "support.openresty"
local redis = require "support.redis"
local socket = require "socket"

local OUT = "bench/RESULTS.md"
local N, THREADS = 4, 4
local Q, PER, DURATION = 1000, 5, 15

local server = fake.start { keepalive_requests = 1000000 }

-- The fake's log of the last run: share filled, 429s, per-worker accepted (by operation name).
local function measure(names)
  local log = server:log("get")
  local q = H.quota_log(log)
  local times, refused, by = q.times, q.refused, q.by_name
  local span = #times > 0 and times[#times] - times[1] or 0
  local per_window = #times / (span / PER + 1)
  local least = math.huge
  for _, n in ipairs(names) do least = math.min(least, by[n] or 0) end
  return { accepted = #times, requests = #log, refused = refused, fill = per_window / Q,
    fairness = #times > 0 and least / (#times / #names) or 0, busiest = H.busiest(times, PER) }
end

local function prepare()
  server:reset()
  server:quota { requests = Q, per = PER }
end

local rows = {}

-- 4 processes ------------------------------------------------------------------------------------
local r = redis.start()
for _, row in ipairs {
  { "4 processes, rate shared through Redis", { requests = Q, per = PER, redis = r:option() } },
  { "4 processes, no pacing (today)", nil },
} do
  io.stderr:write("fleet shared: " .. row[1] .. "\n")
  prepare()
  r:cli("FLUSHALL")
  local run = fleet.start(server, { children = N, duration = DURATION, rate = row[2], timeout = DURATION + 30 })
  run:wait(DURATION + 60)
  local names = {}
  for i = 1, N do names[i] = run.names[i][1] end
  local m = measure(names)
  m.label = row[1]
  rows[#rows + 1] = m
end
r:stop()

-- 4 nginx workers --------------------------------------------------------------------------------
local CONF = {
  { "worker_processes 1;", "worker_processes " .. N .. ";" },
  { "lua_shared_dict vertexops 1m;", "lua_shared_dict vertexops 1m;\n  lua_shared_dict vertexops_rate 1m;\n"
    .. '  init_worker_by_lua_block { require("support.rate_worker").start() }' },
}
local app = openresty.start(server, { conf = CONF })
local run_id = 0
for _, row in ipairs {
  { "4 nginx workers, rate shared through a lua_shared_dict", { requests = Q, per = PER, shared_dict = "vertexops_rate" } },
  { "4 nginx workers, no pacing (today)", cjson.null },
} do
  io.stderr:write("fleet shared: " .. row[1] .. "\n")
  prepare()
  run_id = run_id + 1
  local names = {}
  for i = 1, N do names[i] = server:create({}).name end
  app:result([[
    local job = require("cjson").decode(args.job)
    if job.rate == require("cjson").null then job.rate = nil end
    ngx.update_time()
    job.at = ngx.now() + 0.3
    ngx.shared.vertexops:set("rate job", require("cjson").encode(job))]], { job = cjson.encode {
    run = run_id, names = names, threads = THREADS, duration = DURATION, rate = row[2] } })
  local t0 = socket.gettime()
  repeat
    socket.sleep(0.5)
    local done = app:result([[
      for i = 0, args.workers - 1 do
        if not ngx.shared.vertexops:get("rate done " .. args.run .. " " .. i) then return false end
      end
      return true]], { workers = N, run = run_id })
  until done or socket.gettime() - t0 > DURATION + 60
  local m = measure(names)
  m.label = row[1]
  rows[#rows + 1] = m
end
app:stop()
server:stop()

-- RESULTS.md -------------------------------------------------------------------------------------
local lines = {
  "## Fleet: one quota shared", "",
  ("The fake's quota of %d requests per %d s (one project and location) on the real clock, %d s of `get` "
    .. "as fast as each worker can (a plain process: one at a time; an nginx worker: %d light threads). "
    .. "Filled: requests accepted per %d s of the windows spanned (the first window's burst counted once) "
    .. "/ Q. Fairness: the least worker's accepted / an even share. `make bench-fleet-shared`, one run."):format(
    Q, PER, DURATION, THREADS, PER),
  "",
  "| fleet | accepted | busiest 5 s | filled (× Q) | 429s | fairness (least / even) | target |",
  "|---|---:|---:|---:|---:|---:|---|",
}
for _, m in ipairs(rows) do
  local paced = not m.label:find("no pacing", 1, true)
  local rate429 = m.requests > 0 and m.refused / m.requests or 0
  local met = m.fill >= 0.9 and rate429 <= 0.02 and m.fairness >= 0.8
  lines[#lines + 1] = ("| %s | %d | %d | %.3f | %d of %d (%.1f %%) | %.2f | %s |"):format(m.label, m.accepted,
    m.busiest, m.fill, m.refused, m.requests, 100 * rate429, m.fairness,
    paced and (met and "MET" or "NOT MET") or "(reference)")
end
lines[#lines + 1] = ""
lines[#lines + 1] = "Targets (issue 20): together >= 0.9 Q filled, <= 2 % of requests answered 429, each worker >= 0.8 "
  .. "of an even share (Q / 4). The rows without pacing are what happens today. A paced request holds "
  .. "its place from its answer for the window and up to one bucket more (Redis: 40 buckets a window, "
  .. "lua/vertexops/rate_redis.lua; the dict: 20, lua/vertexops/rate_shared.lua), so on the real clock "
  .. "the answer's latency and the bucket are what a paced fleet leaves unused of each window."
require("bench.common").write_section(OUT, "Fleet: one quota shared", table.concat(lines, "\n") .. "\n")
