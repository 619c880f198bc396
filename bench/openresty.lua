-- make bench-openresty (make bench runs it): vertexops inside nginx next to nginx's own proxy_pass.
-- examples/openresty/nginx.conf (one worker, spec/support/openresty.lua) gets three locations that
-- each send one cancel of the same operation to the fake Vertex server's plain-HTTP port (both
-- sides plain HTTP/1.1 on loopback: no TLS on either):
--   /vx      vertexops.cancel over cosockets (the default transport inside nginx)
--   /thread  the same over libcurl on nginx worker threads (transport = "thread", opt-in)
--   /proxy   proxy_pass to the fake with upstream keep-alive: the native limit
-- and wrk drives each at 50 and at 1,000 connections. Writes the "## OpenResty" section of
-- bench/RESULTS.md (replacing the one there) and prints it.
local fake = require "support.fake"
local openresty = require "support.openresty"

local OUT = "bench/RESULTS.md"
local SECONDS = tonumber(os.getenv("BENCH_OPENRESTY_SECONDS") or "5")
-- BENCH_OPENRESTY_RUNS: rounds, the contenders interleaved in each; a row is the median round
-- (by req/s) with the spread of req/s and p99 over the rounds (a loaded machine: use >= 5).
local RUNS = tonumber(os.getenv("BENCH_OPENRESTY_RUNS") or "1")
-- BENCH_OPENRESTY_CONNS: the connection counts, e.g. "1000" (default "50,1000").
local CONNS = {}
for n in (os.getenv("BENCH_OPENRESTY_CONNS") or "50,1000"):gmatch("%d+") do CONNS[#CONNS + 1] = tonumber(n) end
-- BENCH_OPENRESTY_LOAD=0 skips the cancel_and_wait load section (kept as it was in bench/RESULTS.md).
local LOAD = os.getenv("BENCH_OPENRESTY_LOAD") ~= "0"

local sh = require("bench.common").sh

local server = fake.start()
server:config { nolog = true }
-- BENCH_OPENRESTY_DELAY=s: the fake holds each cancel s seconds before it answers (diagnosis: with
-- one connection under callgrind the answer is then never in before the worker asks for it, so
-- each request yields in receiveany and resumes when it comes, as every request does at 1,000
-- connections; its cache misses per request then match those at 1,000 connections; issue 19 §4)
if os.getenv("BENCH_OPENRESTY_DELAY") then
  server:fault { match = "cancel", delay = tonumber(os.getenv("BENCH_OPENRESTY_DELAY")), times = 1e12 }
end
local op = server:create {}
local host_port = server.http_endpoint:match("^http://(.*)$")

local UPSTREAM = ([[
  lua_shared_dict vertexops 1m;
  upstream fake_vertex {
    server %s;
    keepalive 1024;
    keepalive_requests 10000000;
  }]]):format(host_port)

-- BENCH_OPENRESTY_ACCESSLOG=path: each request's time inside nginx ($request_time) to that file
-- and $connection, numbered as nginx accepts (diagnosis: is the tail inside nginx or before it reads
-- the request, and when was each connection accepted?)
local ACCESSLOG = os.getenv("BENCH_OPENRESTY_ACCESSLOG")
if ACCESSLOG then
  UPSTREAM = UPSTREAM .. "\n  log_format rt '$uri $request_time $msec $connection $connection_requests';"
end

local LOCATIONS = ([[
    location = /vx {
      content_by_lua_block { require("bench_openresty").cancel() }
    }
    location = /vxm {
      content_by_lua_block { require("bench_openresty").cancel(nil, true) }
    }
    location = /thread {
      content_by_lua_block { require("bench_openresty").cancel("thread") }
    }
    location = /proxy {
      proxy_method POST;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer test-token";
      proxy_set_header Content-Length 0;
      proxy_pass_request_body off;
      proxy_pass http://fake_vertex/v1beta1/%s:cancel;
    }
    location = /mem {
      content_by_lua_block { require("bench_openresty").mem() }
    }
    location = /status {]]):format(op.name)
if ACCESSLOG then
  LOCATIONS = LOCATIONS:gsub("(location = /%a+ {\n)", "%1      access_log " .. ACCESSLOG .. " rt buffer=256k;\n")
end

-- the handler of /vx and /thread: one client per worker, one cancel per request
local dir = fake.tmpdir()
-- BENCH_OPENRESTY_JITV=path: LuaJIT's trace log of the worker (jit.v) to that file (diagnosis);
-- BENCH_OPENRESTY_JITDUMP=path: its traces' bytecode, IR and machine code (jit.dump "tbim", or
-- BENCH_OPENRESTY_JITDUMP_FLAGS), to path.<the worker's pid>
-- BENCH_OPENRESTY_NOGC=1: the worker's collector stopped (with BENCH_OPENRESTY_CALLGRIND:
-- instructions per request without the collector's share, which moves a round by thousands and
-- hides differences of a few hundred; the rounds then agree within about 1 %)
-- BENCH_OPENRESTY_FLUSH=s: the metrics' flush period in the worker (metrics._FLUSH_EVERY, 0.1 s);
-- under callgrind 1.3 s unless given: there the worker serves about 1,300 requests a second at one
-- connection, about a thirteenth of its pace at 1,000 connections (15,000-20,000 a second), so that
-- a flush falls on as many requests as the 0.1 s one does at full pace (at 0.1 s under valgrind
-- each request carried thirteen times its share of the flushes: about 500 instructions); the
-- metrics' watchdog timer (metrics._WATCH_EVERY, 5 s) scaled with it
local JITV, JITDUMP = os.getenv("BENCH_OPENRESTY_JITV"), os.getenv("BENCH_OPENRESTY_JITDUMP")
-- BENCH_OPENRESTY_TEXIT=path: how often each LuaJIT trace exit was taken in the worker
-- (jit.attach "texit"), "trace exit count" lines written to path.<the worker's pid> each second;
-- with BENCH_OPENRESTY_JITV, the traces' starts (diagnosis: an exit taken per request costs its
-- snapshot's restore in the interpreter; an exit with a side trace of its own is no longer
-- counted once that trace is made: LuaJIT then jumps to it)
local TEXIT = os.getenv("BENCH_OPENRESTY_TEXIT")
local TEXIT_CHUNK = [==[
do
  local counts, path = {}, %q .. "." .. ngx.worker.pid()
  jit.attach(function(tr, ex)
    local k = tr * 1000 + ex
    counts[k] = (counts[k] or 0) + 1
  end, "texit")
  ngx.timer.every(1, function()
    local f = io.open(path, "w")
    for k, n in pairs(counts) do f:write(math.floor(k / 1000), " ", k %% 1000, " ", n, "\n") end
    f:close()
  end)
end
]==]
local FLUSH = tonumber(os.getenv("BENCH_OPENRESTY_FLUSH") or (os.getenv("BENCH_OPENRESTY_CALLGRIND") and "1.3") or "")
fake.write(dir .. "/bench_openresty.lua", (JITV and ("require('jit.v').start(%q)\n"):format(JITV) or "")
  .. (FLUSH and ("require('vertexops.metrics')._FLUSH_EVERY = %.17g\n"):format(FLUSH) or "")
  .. (FLUSH and ("require('vertexops.metrics')._WATCH_EVERY = %.17g\n"):format(FLUSH * 50) or "")
  .. (JITDUMP and ("require('jit.dump').on(%q, %q .. '.' .. ngx.worker.pid())\n")
    :format(os.getenv("BENCH_OPENRESTY_JITDUMP_FLAGS") or "tbim", JITDUMP) or "")
  .. (os.getenv("BENCH_OPENRESTY_NOGC") and "collectgarbage('stop')\n" or "")
  .. (TEXIT and (TEXIT_CHUNK):format(TEXIT) or "") .. ([[
local vertexops = require "vertexops"
local M = {}
local clients = {}
local metrics
function M.cancel(transport, with_metrics)
  local key = (transport or "cosocket") .. (with_metrics and "+metrics" or "")
  local c = clients[key]
  if not c then
    local hooks
    if with_metrics then
      metrics = metrics or require("vertexops.metrics").new { shared_dict = "vertexops_metrics" }
      hooks = metrics:hooks()
    end
    c = vertexops.client { token = "test-token", endpoint = %q, transport = transport, pool_size = 1024,
      hooks = hooks }
    clients[key] = c
  end
  local ok, err = pcall(c.cancel, c, %q)
  if ok then
    ngx.header["Content-Type"] = "application/json"
    return ngx.say("{}")
  end
  ngx.status = 502
  ngx.say(tostring(err))
end
-- /mem: the worker's Lua heap in bytes (with BENCH_OPENRESTY_NOGC, what its requests allocated)
function M.mem()
  ngx.header["Content-Type"] = "text/plain"
  ngx.say(string.format("%%.0f", collectgarbage("count") * 1024))
end
return M
]]):format(server.http_endpoint, op.name))

-- BENCH_OPENRESTY_EVENTS: the directives of the events block besides worker_connections, in place of
-- the example's "multi_accept on;" (examples/openresty/nginx.conf); blank: nginx's default, one accept
-- per event-loop iteration. wrk opens its 1,000 connections at once and writes a request on each as
-- soon as the kernel has completed its handshake, its clock running; with nginx's default the one
-- worker accepts one of them per event-loop iteration, so once a few hundred are accepted and keep it
-- busy (iterations of hundreds of events) the rest are accepted at a few dozen a second, and their
-- first requests wait seconds in the listen queue: the p99 of 1.8-3.8 s. Both contenders run in this
-- one nginx, so both get it.
local EVENTS = os.getenv("BENCH_OPENRESTY_EVENTS")

local app = openresty.start(server, {
  conf = {
    { "  lua_shared_dict vertexops 1m;", UPSTREAM },
    { "    location = /status {", LOCATIONS },
    { "/spec/?.lua;;", "/spec/?.lua;" .. dir .. "/?.lua;;" },
    EVENTS and { "events { worker_connections 8192; multi_accept on; }",
      "events { worker_connections 8192; " .. EVENTS:match("^%s*(.-)%s*$") .. " }" } or nil,
  },
})

-- BENCH_OPENRESTY_CALLGRIND=N: instructions per request of the nginx worker for /vx and /vxm (the
-- cost of hooks = metrics:hooks(), repeatable where wall clock is not): the same nginx.conf run as
-- one process (daemon off; master_process off) under valgrind --tool=callgrind, 3,200 requests of each
-- to warm up, then rounds of N sequential requests on one keep-alive connection, counters zeroed
-- before and dumped after each (callgrind_control); writes its lines to the tail section.
if os.getenv("BENCH_OPENRESTY_CALLGRIND") then
  require("bench.openresty_tail").callgrind(app, server, dir, tonumber(os.getenv("BENCH_OPENRESTY_CALLGRIND")),
    OUT, tonumber(os.getenv("BENCH_OPENRESTY_RUNS") or "3"))
  return
end

-- The CPU seconds (user + system) the nginx worker has used: per request over a row, a measure of
-- each contender's cost that other work on the machine disturbs much less than its req/s.
local TICK = tonumber((sh("getconf CLK_TCK"):match("%d+"))) or 100
local function worker_cpu()
  local master = (fake.read(app.dir .. "/nginx.pid") or ""):match("%d+")
  local worker = master and sh("pgrep -P " .. master):match("%d+")
  local stat = worker and fake.read("/proc/" .. worker .. "/stat")
  if not stat then return nil end
  local fields = {}
  for f in stat:gsub("^.*%) ", ""):gmatch("%S+") do fields[#fields + 1] = f end
  -- utime, stime (fields 14, 15 of stat); and utime alone: the hooks' cost is all in user space,
  -- where the kernel's share of a request moves with how many events each loop iteration batches
  return (tonumber(fields[12]) + tonumber(fields[13])) / TICK, tonumber(fields[12]) / TICK
end

-- One wrk run: requests/s, p50, p99 (ms), errors (non-2xx answers + socket errors), cpu: the
-- worker's CPU microseconds per request.
local function wrk(path, conns, seconds)
  local cpu0, user0 = worker_cpu()
  local out = sh(("ulimit -n 16384 2>/dev/null; wrk -t2 -c%d -d%ds --timeout 10s --latency %s")
    :format(conns, seconds, app:url(path)))
  local function ms(label)
    local v, unit = out:match("%s" .. label .. "%s+([%d.]+)(%a+)")
    v = tonumber(v)
    if not v then return nil end
    return unit == "us" and v / 1000 or unit == "s" and v * 1000 or v
  end
  local r = {
    rate = tonumber(out:match("Requests/sec:%s*([%d.]+)")) or 0,
    p50 = ms("50%%"), p99 = ms("99%%"),
    requests = tonumber(out:match("(%d+) requests in")) or 0,
    errors = tonumber(out:match("Non%-2xx or 3xx responses: (%d+)")) or 0,
  }
  local cpu1, user1 = worker_cpu()
  if cpu0 and cpu1 and r.requests > 0 then
    r.cpu, r.user = (cpu1 - cpu0) / r.requests * 1e6, (user1 - user0) / r.requests * 1e6
  end
  local c, rd, w, t = out:match("Socket errors: connect (%d+), read (%d+), write (%d+), timeout (%d+)")
  if c then r.errors = r.errors + c + rd + w + t end
  if r.rate == 0 then io.stderr:write(out, "\n") end
  return r
end

local CONTENDERS = { { "/proxy", "nginx proxy_pass (upstream keep-alive)" },
                     { "/vx", "vertexops.cancel, cosockets (default)" },
                     { "/vxm", "vertexops.cancel, cosockets, hooks = metrics:hooks()" },
                     { "/thread", "vertexops.cancel, transport \"thread\" (16 threads)" } }
if not LOAD then table.remove(CONTENDERS) end
if os.getenv("BENCH_OPENRESTY_ONLY") then -- e.g. "/vx": diagnosis of one contender
  for i = #CONTENDERS, 1, -1 do
    if CONTENDERS[i][1] ~= os.getenv("BENCH_OPENRESTY_ONLY") then table.remove(CONTENDERS, i) end
  end
end -- the tail rounds: cosockets next to proxy_pass only
local function load1() return (io.open("/proc/loadavg"):read("*l"):match("^(%S+)")) end
local loads_seen = {}
local samples = {} -- [path .. conns] = { runs }
for round = 1, RUNS do
  for _, conns in ipairs(CONNS) do
    -- (each round starts with the next contender: no one always runs first, or right after another)
    local order = {}
    for i = 1, #CONTENDERS do order[i] = CONTENDERS[(i + round - 2) % #CONTENDERS + 1] end
    for _, c in ipairs(order) do
      io.stderr:write(("  round %d: %s at %d connections ...\n"):format(round, c[1], conns))
      wrk(c[1], conns, 1) -- warm-up: connections, pools, JIT
      if os.getenv("BENCH_OPENRESTY_NSTAT") then sh("nstat -n") end
      local r = wrk(c[1], conns, SECONDS)
      loads_seen[#loads_seen + 1] = tonumber(load1())
      if os.getenv("BENCH_OPENRESTY_NSTAT") then -- the kernel's TCP counters over the row (diagnosis)
        io.stderr:write(sh("nstat 2>/dev/null | grep -E 'ListenOverflows|TcpRetransSegs|TcpActiveOpens|TCPTimeouts'"))
      end
      local k = c[1] .. conns
      samples[k] = samples[k] or {}
      table.insert(samples[k], r)
      io.stderr:write(("    %.0f req/s, p50 %s ms, p99 %s ms, %d errors, worker CPU %.1f us/request (user %.1f)\n")
        :format(r.rate, r.p50, r.p99, r.errors, r.cpu or -1, r.user or -1))
    end
  end
end
local function median(list, f)
  local v = {}
  for i, r in ipairs(list) do v[i] = f(r) or 0 end
  table.sort(v)
  local n = #v
  return n % 2 == 1 and v[(n + 1) // 2] or (v[n // 2] + v[n // 2 + 1]) / 2, v[1], v[n]
end
local rows, results = {}, {}
for _, conns in ipairs(CONNS) do
  for _, c in ipairs(CONTENDERS) do
    local list = samples[c[1] .. conns]
    local r = { requests = 0, errors = 0 }
    r.rate, r.rate_min, r.rate_max = median(list, function(x) return x.rate end)
    r.p50 = median(list, function(x) return x.p50 end)
    r.p99, r.p99_min, r.p99_max = median(list, function(x) return x.p99 end)
    r.cpu, r.cpu_min, r.cpu_max = median(list, function(x) return x.cpu end)
    r.user = median(list, function(x) return x.user end)
    for _, x in ipairs(list) do r.requests, r.errors = r.requests + x.requests, r.errors + x.errors end
    results[c[1] .. conns] = r
    rows[#rows + 1] = { conns = conns, label = c[2], r = r, base = c[1] == "/proxy" }
  end
end
local stats = server:stats()

-- The gateway under load: spec/09_hosts_openresty_load_spec.lua's load (1,000 concurrent cancel_and_wait on operations that end
-- CANCELLED 3 s after their cancel, /status pinged every 10 ms), timed here, once per strategy.
local function fmt(v) return v and ("%.2f ms"):format(v) or "n/a" end
if not LOAD then
  app:stop()
  server:stop()
  os.execute("rm -rf " .. dir)
  require("bench.openresty_tail").write(OUT, { rows = rows, results = results, runs = RUNS, seconds = SECONDS,
    loads = loads_seen, stats = stats, fmt = fmt, samples = samples })
  return
end
local loadgen = require "support.loadgen"
local LOAD_N, SERVICE = 1000, 3
local loads = {}
for _, strategy in ipairs { "auto", "poll" } do
  io.stderr:write(("  /cancel: %d concurrent cancel_and_wait, strategy %s ...\n"):format(LOAD_N, strategy))
  local created = server:create_many(LOAD_N, { cancel_after = SERVICE })
  loads[#loads + 1] = { strategy = strategy,
    out = loadgen.run(app, created, LOAD_N, strategy ~= "auto" and "&strategy=" .. strategy or nil) }
end
app:stop()
server:stop()
os.execute("rm -rf " .. dir)

local lines = { "## OpenResty: inside nginx, next to proxy_pass", "",
  ("One nginx worker (examples/openresty/nginx.conf), `wrk -t2` for %d s after a 1 s warm-up per row; "
    .. "each request sends one cancel to the fake's plain-HTTP port (no TLS on either side; the fake "
    .. "counts only). Same machine for wrk, nginx and the fake (%s cores)."):format(SECONDS,
    (sh("nproc"):gsub("%s+$", ""))), "",
  "| connections | contender | req/s | × proxy_pass | p50 | p99 | errors |",
  "|---:|---|---:|---:|---:|---:|---:|" }
for _, row in ipairs(rows) do
  local base = results["/proxy" .. row.conns]
  lines[#lines + 1] = ("| %d | %s | %.0f | %.2f | %s | %s | %d |"):format(row.conns, row.label, row.r.rate,
    base.rate > 0 and row.r.rate / base.rate or 0, fmt(row.r.p50), fmt(row.r.p99), row.r.errors)
end
lines[#lines + 1] = ""
lines[#lines + 1] = ("The fake served %d requests on %d connections in all."):format(stats.requests, stats.connections)
lines[#lines + 1] = ""
local vx50, px50, vx1k = results["/vx50"], results["/proxy50"], results["/vx1000"]
local ratio = px50.rate > 0 and vx50.rate / px50.rate or 0
lines[#lines + 1] = "| | target | measured |"
lines[#lines + 1] = "|---|---|---|"
lines[#lines + 1] = ("| %s | vertexops ≥ 0.45× proxy_pass at 50 connections | %.2f× |")
  :format(ratio >= 0.45 and "MET" or "NOT MET", ratio)
lines[#lines + 1] = ("| %s | vertexops: 0 errors at 1,000 connections | %d errors in %d requests |")
  :format(vx1k.errors == 0 and vx1k.requests > 0 and "MET" or "NOT MET", vx1k.errors, vx1k.requests)

lines[#lines + 1] = ""
lines[#lines + 1] = ("### The gateway under load: %d concurrent `cancel_and_wait`, `/status` pinged beside them")
  :format(LOAD_N)
lines[#lines + 1] = ""
lines[#lines + 1] = ("bench/loadgen.c sends %d requests at once to `/cancel` (a connection each) on operations "
  .. "the fake ends CANCELLED %d s after their cancel, and pings `/status` of the same worker every 10 ms, "
  .. "one at a time. spec/09_hosts_openresty_load_spec.lua asserts what the load does (every request "
  .. "CANCELLED, no transport failure, no ping held for seconds, connections kept alive); the times are "
  .. "here."):format(LOAD_N, SERVICE)
lines[#lines + 1] = ""
lines[#lines + 1] = "| strategy | CANCELLED | transport failures | wall | × service time | pings | ping p50 "
  .. "| ping p99 | slowest ping |"
lines[#lines + 1] = "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for _, l in ipairs(loads) do
  local o = l.out
  lines[#lines + 1] = ("| %s | %d | %d | %.2f s | %.2f× | %d | %.1f ms | %.1f ms | %.1f ms |"):format(l.strategy,
    o.cancelled, o.failed, o.wall or -1, (o.wall or 0) / SERVICE, #o.pings, loadgen.percentile(o.pings, 50) or -1,
    loadgen.percentile(o.pings, 99) or -1, o.ping_max)
end
lines[#lines + 1] = ""
lines[#lines + 1] = "| | target | measured |"
lines[#lines + 1] = "|---|---|---|"
for _, l in ipairs(loads) do
  local o = l.out
  lines[#lines + 1] = ("| %s | %s: every request CANCELLED within 1.5× the service time | %d of %d, %.2f× |")
    :format(o.cancelled == LOAD_N and (o.wall or 1e9) < 1.5 * SERVICE and "MET" or "NOT MET", l.strategy,
      o.cancelled, LOAD_N, (o.wall or 0) / SERVICE)
  lines[#lines + 1] = ("| %s | %s: every `/status` ping answered within 50 ms | slowest %.1f ms (p99 %.1f ms) |")
    :format(o.ping_max < 50 and o.ping_failed == 0 and "MET" or "NOT MET", l.strategy, o.ping_max,
      loadgen.percentile(o.pings, 99) or -1)
end

require("bench.common").write_section(OUT, "OpenResty: inside nginx, next to proxy_pass",
  table.concat(lines, "\n") .. "\n")
