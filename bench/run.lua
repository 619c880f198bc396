-- make bench: every contender on this machine, against the same fake Vertex server (HTTPS, HTTP/2
-- where the client speaks it, loopback), in one run. Writes bench/RESULTS.md and prints it.
--
-- Regimes: "overhead" (the fake answers at once: the client's own cost decides, sequential calls)
-- and "service time" (the fake holds every answer 50 ms: concurrency decides, batches of 1,000).
-- Each measurement is warmed up, run BENCH_RUNS times (default 5), and the median is reported.
local fake = require "support.fake"
local H = require "support.helper"
local cjson = require "cjson"
local vertexops = require "vertexops"
local core = require "vertexops.core"

local RUNS = tonumber(os.getenv("BENCH_RUNS") or "5")
local N_SEQ = tonumber(os.getenv("BENCH_SEQ") or "3000")
local N_BATCH = 1000
local HOLD = 0.05
local OUT = "bench/RESULTS.md"

-- The fake behaves like Google's front ends (support/fake.lua M.DEFAULTS: 100 HTTP/2 streams per
-- connection, GOAWAY after keepalive_requests requests); a second one allowing 1,024 streams gives
-- the one-connection reference for the batch's memory.
local server = fake.start()
local LIMITS = server.settings
local op = server:create {}
local url = server.endpoint .. "/v1beta1/" .. op.name .. ":cancel"
local LUA54 = 'LUA_PATH="./lua/?.lua;./lua/?/init.lua;;" LUA_CPATH="./build/5.4/?.so;;" lua5.4'
local LUAJIT = 'LUA_PATH="./lua/?.lua;./lua/?/init.lua;;" LUA_CPATH="./build/jit/?.so;;" luajit'
local NODE = "cd bench && NODE_EXTRA_CA_CERTS=" .. server.ca_file .. " node"
local has_node = os.execute("test -d bench/node_modules/@google-cloud/aiplatform") == true

local sh = require("bench.common").sh

-- One run of a contender command: its JSON line, plus the connections the server saw.
local function once(cmd)
  server:reset_log()
  local t0 = core.clock()
  local out = sh(cmd)
  local wall = core.clock() - t0
  local line = out:match("(%b{})%s*$")
  local doc = line and cjson.decode(line)
  if not doc then error("contender failed: " .. cmd .. "\n" .. out) end
  doc.seconds = doc.seconds or wall
  doc.connections = server:stats().connections
  return doc
end

local function median(xs)
  table.sort(xs)
  local n = #xs
  return n % 2 == 1 and xs[(n + 1) / 2] or (xs[n / 2] + xs[n / 2 + 1]) / 2
end

-- Warm-up, then RUNS runs; returns calls/s (median), connections, peak RSS.
local function measure(label, cmd, runs)
  io.stderr:write("  ", label, " ...\n")
  once(cmd)
  local secs, conns, rss, calls = {}, 0, 0, 0
  for i = 1, runs or RUNS do
    local d = once(cmd)
    assert(d.failed == 0, label .. ": " .. tostring(d.failed) .. " calls failed")
    secs[i], calls = d.seconds, d.calls
    conns = math.max(conns, d.connections)
    rss = math.max(rss, d.rss_kb or 0)
  end
  return { label = label, rate = calls / median(secs), calls = calls, connections = conns, rss_kb = rss }
end

local rows, targets = {}, {}
local function target(text, met, detail)
  targets[#targets + 1] = ("| %s | %s | %s |"):format(met and "MET" or "NOT MET", text, detail)
end

-- Overhead: sequential calls -----------------------------------------------------------------
io.stderr:write("overhead regime (sequential, the fake answers at once)\n")
server:config { nolog = true, hold = 0 }
local seq = {}
seq.raw = measure("raw libcurl (C), one easy handle", ("build/bench/raw_curl seq %s %s %d"):format(url, server.ca_file, N_SEQ))
seq.vx = measure("vertexops, Lua 5.4", ("%s bench/vx_client.lua seq %s %s %s %d"):format(LUA54, server.endpoint,
  server.ca_file, op.name, N_SEQ))
seq.jit = measure("vertexops, LuaJIT", ("%s bench/vx_client.lua seq %s %s %s %d"):format(LUAJIT, server.endpoint,
  server.ca_file, op.name, N_SEQ))
if has_node then
  seq.node = measure("Google's Node client (REST), sequential", ("%s node_client.js seq 127.0.0.1 %d %s %d")
    :format(NODE, server.https_port, op.name, 500))
end
seq.luasec = measure("LuaSec ssl.https.request", ("%s bench/luasec_client.lua %s %s %d"):format(LUA54, url,
  server.ca_file, 50), 3)
local curl_n = 100
seq.curl = measure("curl command, one process per call", ("sh bench/curl_cli.sh %s %s %d"):format(url,
  server.ca_file, curl_n), 3)
for _, k in ipairs { "raw", "vx", "jit", "node", "luasec", "curl" } do
  if seq[k] then rows[#rows + 1] = { regime = "overhead", r = seq[k], base = seq.raw } end
end

-- 10,000 sequential cancels: connections
local ten = once(("%s bench/vx_client.lua seq %s %s %s %d"):format(LUA54, server.endpoint, server.ca_file, op.name, 10000))

-- RSS across 100,000 calls
io.stderr:write("  RSS across 100,000 calls ...\n")
local rss = once(("%s bench/vx_client.lua rss %s %s %s %d"):format(LUA54, server.endpoint, server.ca_file, op.name, 100000))
local growth_kb = rss.rss_after_kb - rss.rss_before_kb

-- Service time: batches -----------------------------------------------------------------------
io.stderr:write("service-time regime (every answer held 50 ms, batches of 1,000)\n")
server:config { nolog = true, hold = HOLD }
local batch = {}
batch.raw = measure("raw libcurl multi (C), HTTP/2 multiplexing", ("build/bench/raw_curl multi %s %s %d %d")
  :format(url, server.ca_file, N_BATCH, N_BATCH))
batch.vx = measure("vertexops cancel_many, Lua 5.4", ("%s bench/vx_client.lua many %s %s %s %d %d"):format(LUA54,
  server.endpoint, server.ca_file, op.name, N_BATCH, N_BATCH))
batch.jit = measure("vertexops cancel_many, LuaJIT", ("%s bench/vx_client.lua many %s %s %s %d %d"):format(LUAJIT,
  server.endpoint, server.ca_file, op.name, N_BATCH, N_BATCH))
if has_node then
  batch.node = measure("Google's Node client, Promise.all", ("%s node_client.js all 127.0.0.1 %d %s %d")
    :format(NODE, server.https_port, op.name, N_BATCH))
end
for _, k in ipairs { "raw", "vx", "jit", "node" } do
  if batch[k] then rows[#rows + 1] = { regime = "service time 50 ms", r = batch[k], base = batch.raw } end
end
server:config { nolog = true, hold = 0 }
-- the same batch where one connection carries it all (1,024 streams): the RSS reference
local wide = fake.start { max_streams = 1024 }
local wide_op = wide:create {}
wide:config { nolog = true, hold = HOLD }
local one_conn = { rss = 0, connections = 0 }
io.stderr:write("  vertexops cancel_many, Lua 5.4, one connection (1,024 streams) ...\n")
for _ = 1, RUNS do
  wide:reset_log()
  local out = sh(("%s bench/vx_client.lua many %s %s %s %d %d"):format(LUA54, wide.endpoint, wide.ca_file, wide_op.name,
    N_BATCH, N_BATCH))
  local d = cjson.decode(out:match("(%b{})%s*$"))
  one_conn.rss = math.max(one_conn.rss, d.rss_kb)
  one_conn.connections = math.max(one_conn.connections, wide:stats().connections)
end
wide:stop()

-- Instructions per call (callgrind): the marginal cost of one more call -------------------------
io.stderr:write("instructions per call (callgrind) ...\n")
local function instructions(env, cmd_for)
  local function total(n)
    local f = os.tmpname()
    sh(("%s valgrind --tool=callgrind --callgrind-out-file=%s %s"):format(env, f, cmd_for(n)))
    local summary = sh("callgrind_annotate " .. f .. " | grep -m1 'PROGRAM TOTALS'")
    os.remove(f)
    local ir = tonumber(((summary:match("^%s*([%d,]+)") or ""):gsub(",", "")), 10)
    if not ir then error("callgrind gave no total for: " .. cmd_for(n)) end
    return ir
  end
  local a, b = total(100), total(400)
  return (b - a) / 300
end
local ipc_raw = instructions("", function(n) return ("build/bench/raw_curl seq %s %s %d"):format(url, server.ca_file, n) end)
local ipc_vx = instructions('LUA_PATH="./lua/?.lua;./lua/?/init.lua;;" LUA_CPATH="./build/5.4/?.so;;"', function(n)
  return ("lua5.4 bench/vx_client.lua seq %s %s %s %d"):format(server.endpoint, server.ca_file, op.name, n)
end)

-- Waiting efficiency: operations that finish at random times within 10 minutes ----------------
io.stderr:write("waiting efficiency (virtual time) ...\n")
math.randomseed(42)
local finishes = {}
for i = 1, 20 do finishes[i] = math.random() * 600 end
local client = vertexops.client { endpoint = server.endpoint, ca_file = server.ca_file, token = "test-token" }
local function waiting(strategy)
  local requests, delay = 0, 0
  for _, t_end in ipairs(finishes) do
    server:reset()
    server:config { nolog = true }
    local t = H.virtual_time(server, 0)
    local o = server:create { done_after = t_end }
    client:wait(o.name, nil, { strategy = strategy, clock = t.clock, sleep = t.sleep })
    requests = requests + server:stats().requests
    delay = delay + math.max(0, t.clock() - t_end)
  end
  return requests / #finishes, delay / #finishes
end
local auto_req, auto_delay = waiting("auto")
local poll_req, poll_delay = waiting("poll")
-- Google's Node client: LROperation.promise() polls with google-gax's default backoff; read the
-- numbers from the installed google-gax and simulate its schedule (it runs on real timers).
local gax_init, gax_mult, gax_max = 100, 1.3, 60000
local gax = io.open("bench/node_modules/google-gax/build/src/gax.js")
if gax then
  local src = gax:read("*a")
  gax:close()
  local a, b, c = src:match("function createDefaultBackoffSettings%(%)%s*{%s*return "
    .. "createBackoffSettings%(([%d.]+),%s*([%d.]+),%s*([%d.]+)")
  if a then gax_init, gax_mult, gax_max = tonumber(a), tonumber(b), tonumber(c) end
end
local node_req, node_delay = 0, 0
for _, t_end in ipairs(finishes) do
  local now, d, n = 0, gax_init / 1000, 0
  while true do
    now = now + d
    n = n + 1
    if now >= t_end then break end
    d = math.min(d * gax_mult, gax_max / 1000)
  end
  node_req, node_delay = node_req + n, node_delay + (now - t_end)
end
node_req, node_delay = node_req / #finishes, node_delay / #finishes
server:stop()

-- Report ---------------------------------------------------------------------------------------
local lines = {
  "# Benchmark results",
  "",
  ("Generated by `make bench` on %s (%s, %d cores). Fake Vertex server: nginx + Lua on loopback, "
    .. "HTTPS with HTTP/2, limits like Google's front ends: %d concurrent streams per connection, GOAWAY after "
    .. "%d requests on a connection. Medians of %d runs after a warm-up."):format(os.date("!%Y-%m-%d %H:%M UTC"),
    sh("uname -m"):gsub("%s+$", ""), tonumber(sh("nproc")) or 0, LIMITS.max_streams, LIMITS.keepalive_requests, RUNS),
  "",
  "| regime | contender | calls | calls/s | × raw libcurl | connections | peak RSS |",
  "|---|---|---:|---:|---:|---:|---:|",
}
for _, row in ipairs(rows) do
  local r = row.r
  lines[#lines + 1] = ("| %s | %s | %d | %.0f | %.2f | %d | %s |"):format(row.regime, r.label, r.calls, r.rate,
    r.rate / row.base.rate, r.connections, r.rss_kb > 0 and ("%.1f MiB"):format(r.rss_kb / 1024) or "n/a")
end
lines[#lines + 1] = ""
lines[#lines + 1] = ("Instructions per call (callgrind, marginal cost of one more sequential cancel): "
  .. "raw libcurl %.0f, vertexops (Lua 5.4) %.0f — %.2f×."):format(ipc_raw, ipc_vx, ipc_vx / ipc_raw)
lines[#lines + 1] = ""
lines[#lines + 1] = ("10,000 sequential cancels through one vertexops client: %d connection(s) (GOAWAY every %d "
  .. "requests). RSS from call 1,000 to call 100,000: %+d KiB."):format(ten.connections, LIMITS.keepalive_requests,
  growth_kb)
lines[#lines + 1] = ""
lines[#lines + 1] = ("The batch of %d on a server allowing 1,024 streams (one connection): peak RSS %.1f MiB, "
  .. "%d connection(s). Against the 100-stream server, vertexops and raw libcurl multi cap their connections per "
  .. "host at %d (core.MAX_HOST_CONNECTIONS): transfers past streams × connections wait in libcurl for a free "
  .. "stream instead of opening one TLS connection each."):format(N_BATCH, one_conn.rss / 1024, one_conn.connections,
  core.MAX_HOST_CONNECTIONS)
lines[#lines + 1] = ""
lines[#lines + 1] = "## Waiting: 20 operations finishing at random times within 10 minutes"
lines[#lines + 1] = ""
lines[#lines + 1] = "| strategy | requests per wait | detection delay (finish → wait returns) |"
lines[#lines + 1] = "|---|---:|---:|"
lines[#lines + 1] = ("| vertexops `auto` (`:wait` long-poll) | %.1f | %.2f s |"):format(auto_req, auto_delay)
lines[#lines + 1] = ("| vertexops `poll` (Workflows: 1 s ×1.25 ≤ 60 s) | %.1f | %.2f s |"):format(poll_req, poll_delay)
lines[#lines + 1] = ("| Node `LROperation.promise()` (google-gax default %g ms ×%g ≤ %g s, simulated) | %.1f | %.2f s |")
  :format(gax_init, gax_mult, gax_max / 1000, node_req, node_delay)
lines[#lines + 1] = ""
lines[#lines + 1] = "vertexops waits run against the fake server on its virtual clock (real requests, simulated minutes)."

-- targets
target("vertexops sequential ≥ 0.85× raw libcurl (Lua 5.4)", seq.vx.rate >= 0.85 * seq.raw.rate,
  ("%.2f×"):format(seq.vx.rate / seq.raw.rate))
target("vertexops sequential ≥ 0.85× raw libcurl (LuaJIT)", seq.jit.rate >= 0.85 * seq.raw.rate,
  ("%.2f×"):format(seq.jit.rate / seq.raw.rate))
if seq.node then
  target("≥ 8× the Node client's calls per second", seq.vx.rate >= 8 * seq.node.rate,
    ("%.1f×"):format(seq.vx.rate / seq.node.rate))
end
local ten_max = math.ceil(10001 / LIMITS.keepalive_requests) -- bench/vx_client.lua warms up with one more call
target(("10,000 sequential cancels (+1 warm-up) open at most ⌈10,001 / %d⌉ = %d connection(s) (one per GOAWAY)")
  :format(LIMITS.keepalive_requests, ten_max), ten.connections <= ten_max and ten.failed == 0,
  ("%d connection(s), %d failed"):format(ten.connections, ten.failed))
target("cancel_many of 1,000 (50 ms service) ≥ 0.8× raw libcurl multi", batch.vx.rate >= 0.8 * batch.raw.rate,
  ("%.2f×"):format(batch.vx.rate / batch.raw.rate))
if batch.node then
  target("cancel_many ≥ 5× the Node client's Promise.all", batch.vx.rate >= 5 * batch.node.rate,
    ("%.1f×"):format(batch.vx.rate / batch.node.rate))
end
local batch_max = math.ceil(N_BATCH / LIMITS.max_streams)
target(("cancel_many of %d on at most ⌈%d / %d⌉ = %d connections"):format(N_BATCH, N_BATCH, LIMITS.max_streams,
  batch_max), batch.vx.connections <= batch_max and batch.jit.connections <= batch_max,
  ("%d (Lua 5.4), %d (LuaJIT) connection(s)"):format(batch.vx.connections, batch.jit.connections))
-- peak RSS is noisy by a few hundred KiB between runs: 2% of slack
target("cancel_many's peak RSS no higher than on one connection (1,024 streams), within 2%",
  batch.vx.rss_kb <= one_conn.rss * 1.02, ("%.1f MiB vs %.1f MiB on one connection"):format(batch.vx.rss_kb / 1024,
  one_conn.rss / 1024))
target("RSS grows < 2 MiB across 100,000 calls", growth_kb < 2048, ("%+d KiB"):format(growth_kb))
target("instructions per call ≤ 1.3× raw libcurl", ipc_vx <= 1.3 * ipc_raw, ("%.2f×"):format(ipc_vx / ipc_raw))
target("auto detects within 0.5 s on average, with fewer requests than poll",
  auto_delay <= 0.5 and auto_req < poll_req, ("%.2f s, %.1f vs %.1f requests"):format(auto_delay, auto_req, poll_req))

lines[#lines + 1] = ""
lines[#lines + 1] = "## Targets"
lines[#lines + 1] = ""
lines[#lines + 1] = "| | target | measured |"
lines[#lines + 1] = "|---|---|---|"
for _, t in ipairs(targets) do lines[#lines + 1] = t end
if not has_node then
  lines[#lines + 1] = ""
  lines[#lines + 1] = "The Node client was not installed (npm unreachable): its lines are missing."
end

local text = table.concat(lines, "\n") .. "\n"
local f = assert(io.open(OUT, "w"))
f:write(text)
f:close()
io.write(text)
