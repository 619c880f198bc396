-- The "OpenResty: the tail at 1,000 connections" section of bench/RESULTS.md (issue 19 §4), written by
-- bench/openresty.lua when run with BENCH_OPENRESTY_LOAD=0 (make bench-openresty-tail): the median
-- of interleaved rounds, with their spread and the machine's load average.
local M = {}

function M.write(out, t)
  local fmt, results = t.fmt, t.results
  local loads = {}
  for i, v in ipairs(t.loads) do loads[i] = v end
  table.sort(loads)
  local quiet = (loads[#loads] or 99) < 4
  local lines = { "## OpenResty: the tail at 1,000 connections", "",
    ("bench/openresty.lua's rows, %d rounds of `wrk -t2` for %d s each after a 1 s warm-up, the contenders "
      .. "interleaved in every round (each round starting with the next of them), one nginx worker with "
      .. "`multi_accept on` (below); a row is the median round (req/s; p50, p99 and the worker's CPU time per "
      .. "request their own medians) and the spread is min–max over the rounds. `make bench-openresty-tail`. "
      .. "%s: load average (1 min) %.1f–%.1f during the "
      .. "rows (2 cores)%s. Worker CPU is the nginx worker's user + system time over the row (/proc) per "
      .. "request served: what each contender costs the worker, much less disturbed by other work than req/s.")
      :format(t.runs, t.seconds, quiet and "The machine was quiet" or "The machine was LOADED by other work",
        loads[1] or -1, loads[#loads] or -1, quiet and "" or ", so absolute numbers are low and noisy; the ratios "
        .. "are what is compared"), "",
    "| connections | contender | req/s (median) | req/s spread | × proxy_pass | p50 | p99 (median) | p99 spread "
      .. "| worker CPU / request | of it user | errors |",
    "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|" }
  for _, row in ipairs(t.rows) do
    local r, base = row.r, results["/proxy" .. row.conns] or { rate = 0 } -- (BENCH_OPENRESTY_ONLY)
    lines[#lines + 1] = ("| %d | %s | %.0f | %.0f–%.0f | %.2f | %s | %s | %s–%s | %s | %s | %d |"):format(row.conns,
      row.label, r.rate, r.rate_min, r.rate_max, base.rate > 0 and r.rate / base.rate or 0, fmt(r.p50), fmt(r.p99),
      fmt(r.p99_min), fmt(r.p99_max), r.cpu and r.cpu > 0 and ("%.1f µs"):format(r.cpu) or "n/a",
      r.user and r.user > 0 and ("%.1f µs"):format(r.user) or "n/a", r.errors)
  end
  lines[#lines + 1] = ""
  local px, vx, vxm = results["/proxy1000"], results["/vx1000"], results["/vxm1000"]
  if px and vx and vxm then
    local ratio = vx.rate / px.rate
    local tail = vx.p99 / px.p99
    local cost = 1 - vxm.rate / vx.rate
    lines[#lines + 1] = "| | target (1,000 connections) | measured |"
    lines[#lines + 1] = "|---|---|---|"
    lines[#lines + 1] = ("| %s | vertexops ≥ 0.8× proxy_pass's req/s | %.2f× |")
      :format(ratio >= 0.8 and "MET" or "NOT MET", ratio)
    lines[#lines + 1] = ("| %s | vertexops p99 ≤ 3× proxy_pass's p99 | %s vs %s (%.2f×) |")
      :format(tail <= 3 and "MET" or "NOT MET", fmt(vx.p99), fmt(px.p99), tail)
    lines[#lines + 1] = ("| %s | vertexops: 0 errors | %d errors in %d requests (%d with metrics hooks) |")
      :format(vx.errors + vxm.errors == 0 and "MET" or "NOT MET", vx.errors, vx.requests, vxm.errors)
    lines[#lines + 1] = ("| %s | hooks = metrics:hooks() cost ≤ 3 %% of req/s (wall clock%s, the medians) | %.1f %% |")
      :format(cost <= 0.03 and "MET" or "NOT MET", quiet and "" or ", loaded machine", cost * 100)
    local paired = M.paired(t.samples)
    if paired then
      lines[#lines + 1] = ("| %s | the same, paired: each round's /vxm against the same round's /vx (median of "
        .. "%d rounds) | %s |"):format(paired.verdict, paired.n, paired.text)
      if paired.share then
        lines[#lines + 1] = ("| %s | the same, from the worker's CPU: user CPU the hooks add per request ÷ the "
          .. "worker's CPU per request without them, paired (median of %d rounds) | %s |")
          :format(paired.share_verdict, paired.n, paired.share_text)
      end
    end
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Three such 5-round runs, 2026-12-06 11:25–11:34 UTC (load 5.0–7.4), the code of this "
    .. "section's last paragraph (the first before csrc/h1.c's line reading): vertexops ÷ proxy_pass 0.83×, "
    .. "0.74× (one /vx round disturbed: 3,162 req/s with a 1.66 s p99, the other four 7,776–12,458 req/s "
    .. "and at most 0.22 s), 0.80× (the table); p99 ÷ proxy_pass's 1.07×, 1.39×, 1.22×; 0 errors in each. "
    .. "The worker's CPU time per request, steadier, puts proxy_pass ÷ vertexops at 0.72–0.77: the 0.8× "
    .. "req/s target is at its edge on this machine (wrk and the fake share its 2 cores, so the worker's "
    .. "cost shows only in part), met in two of the three runs, not with a margin."
  lines[#lines + 1] = ""
  lines[#lines + 1] = "The hooks' cost, paired (the last row of the targets): /vx and /vxm run one after the other "
    .. "in each round, so a disturbance of the machine that spans a round falls on both; each round gives "
    .. "1 − /vxm's req/s ÷ /vx's, and /vxm's user CPU per request ÷ /vx's − 1 (the hooks' work is all in user "
    .. "space; the kernel's share of a request, about half of it, moves with how many events each of nginx's "
    .. "loop iterations batches). MET when every round's cost is ≤ 3 %, NOT MET when every round's is "
    .. "over, else WITHIN NOISE with the count of rounds over. Wall clock does not resolve a 3 % difference "
    .. "on this machine (2 cores for wrk, the fake and nginx; 2026-12-06, quiet, one 5-round run of the same "
    .. "code: paired req/s costs from −13.5 % to +14.0 %). The user CPU the hooks add per request, divided "
    .. "by the worker's whole CPU per request without them, is what they cost in req/s where the worker is "
    .. "the bottleneck (the last row): steadier, 5.3–8.2 % over the 5 rounds of one run at load average 5–6, "
    .. "where that run's paired req/s costs went from −22.4 % to +19.7 %; but rows of 3 s at load 8 spread it "
    .. "from −4.9 % to +14.4 %. Only on a quiet machine, and with BENCH_OPENRESTY_RUNS=9 or more."
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Where the tail came from (diagnosed 2026-12-06 10:50–11:00 UTC, load 2.4–10; "
    .. "BENCH_OPENRESTY_ACCESSLOG=file logs nginx's $request_time, $msec and $connection, which nginx numbers "
    .. "as it accepts): not vertexops, the bench's nginx. With nginx's default (`multi_accept off`) the one "
    .. "worker accepts one connection per event-loop iteration. wrk opens its 1,000 connections at once and "
    .. "writes a request on each as soon as the kernel has completed the handshake, its clock running; once a "
    .. "few hundred are accepted they keep the worker busy (iterations of hundreds of events), and the rest "
    .. "are accepted at a few dozen a second. In a /vx row with a 3.3 s p99, 436 of the 1,000 connections had "
    .. "their first request read 0.7–5.1 s into the row, in accept order, while no request took nginx more "
    .. "than 0.1 s ($request_time) and the fake saw no new connection (the cosocket pool kept its "
    .. "connections; the kernel counted no listen overflow and a few dozen retransmits); in the rows without "
    .. "a tail every connection was served within 0.2 s. proxy_pass runs in the same nginx and had it too "
    .. "(3.8 s in one row), less often: its iterations are shorter. So a row's p99 measured how long nginx "
    .. "took to accept wrk's connections, not an exchange. bench/openresty.lua now runs nginx with "
    .. "`multi_accept on`, as examples/openresty/nginx.conf now does (BENCH_OPENRESTY_EVENTS sets the "
    .. "events block; blank for nginx's default): with it "
    .. "every connection's first request was read within 0.22 s of the row's start in every row. The "
    .. "earlier diagnosis (a start-up burst of 1,000 requests, on a machine at load 14) saw the first part "
    .. "of this. Ruled out: the listen queue (backlog=4096, somaxconn 4096, no ListenOverflows), SYN "
    .. "retransmits, the cosocket pool (pool_size 1,024: no connection to the fake opened during a row), "
    .. "timers (no sleep on a successful cancel), Lua GC pauses (no request over 0.1 s inside nginx)."
  lines[#lines + 1] = ""
  lines[#lines + 1] = "The throughput is the worker's cost per request (callgrind, `make "
    .. "bench-openresty-callgrind`, instructions of the nginx worker per request, hooks off): "
    .. "cosockets 58,124 at the start of this work (main: 57,808), proxy_pass 21,600–23,400. Now "
    .. "40,068 (38,360–40,303 over 3 rounds of 500; proxy_pass 21,992 in the same run): 31 % fewer. What "
    .. "went: writing and checking the same cached built request's bytes again on every "
    .. "exchange (core.h1_request, 11,000: lua/vertexops/transport/cosocket.lua now keeps them per request "
    .. "and token), an answer parser made and collected per exchange (csrc/h1.c's p:reset() and a few "
    .. "parsers kept per worker), copying each line of the answer before parsing it and a strchr per "
    .. "header-name byte (csrc/h1.c), clock reads and timeout settings a pooled connection does not need, and "
    .. "the trace aborts: deadline.lua's tail call of setmetatable stopped every trace of a call (\"NYI: "
    .. "return to lower frame\"), so the whole path was interpreted; it now runs as LuaJIT traces stitched "
    .. "around the C calls (cosocket methods, core.h1's), up to the last return into the handler's pcall. "
    .. "What is left: about 13,000 instructions in LuaJIT itself (trace exits at each of about 15 C calls, "
    .. "allocation and GC steps, the C API), 5,800 in the strict parser of a 190-byte answer (csrc/h1.c: "
    .. "several passes per line, 1,500 of them in vx_checkudarg's metatable check of the parser on each of "
    .. "its four methods), and the cosocket and output work of ngx_http_lua_module (about 5,000, the "
    .. "handler's ngx.header and ngx.say included) where nginx's proxy module does its own. Since then "
    .. "(2026-12-07, the collector stopped in the worker): 34,157 → 30,032. The parser read each head byte "
    .. "twice and values a byte at a time (about 5,000 instructions for the fake's 190-byte answer, now "
    .. "about 2,900: one pass, values eight bytes a step), and nginx walked the request's list of strings "
    .. "twice through the Lua API at every send (about 2,000: the list is now joined once per request and "
    .. "token). By object, /vx's 30,000: nginx 9,100 (proxy_pass's whole request is 21,300), LuaJIT 7,700 "
    .. "(its interpreter and the C API: about 100 C API calls a request, in ngx_http_lua_module's "
    .. "cosocket and output functions and ours), ngx_http_lua_module 4,800, the traces 2,800, core.so "
    .. "3,300, libc 2,700."
  local text = table.concat(lines, "\n") .. "\n"

  require("bench.common").write_section(out, "OpenResty: the tail at 1,000 connections", text)
end


-- The hooks' cost round by round (samples["/vx1000"][i] against samples["/vxm1000"][i]): the median,
-- min and max of 1 - vxm/vx req/s and of vxm/vx - 1 user CPU per request, and the verdict.
function M.paired(samples)
  local vx, vxm = samples and samples["/vx1000"], samples and samples["/vxm1000"]
  if not vx or not vxm or #vx == 0 or #vx ~= #vxm then return nil end
  local costs, users, shares, over, sover = {}, {}, {}, 0, 0
  for i = 1, #vx do
    -- (where the worker is the bottleneck its req/s is 1 / its CPU per request: the hooks' share)
    if vx[i].user and vxm[i].user and vx[i].cpu and vx[i].cpu > 0 then
      local sh = (vxm[i].user - vx[i].user) / vx[i].cpu
      shares[#shares + 1] = sh
      if sh > 0.03 then sover = sover + 1 end
    end
    if vx[i].rate > 0 then
      local c = 1 - vxm[i].rate / vx[i].rate
      costs[#costs + 1] = c
      if c > 0.03 then over = over + 1 end
    end
    if vx[i].user and vxm[i].user and vx[i].user > 0 then users[#users + 1] = vxm[i].user / vx[i].user - 1 end
  end
  if #costs == 0 then return nil end
  local function median(v)
    table.sort(v)
    local k = #v
    return k % 2 == 1 and v[(k + 1) // 2] or (v[k // 2] + v[k // 2 + 1]) / 2, v[1], v[k]
  end
  local c, cmin, cmax = median(costs)
  local text = ("req/s %.1f %% (%.1f to %.1f %%)"):format(c * 100, cmin * 100, cmax * 100)
  if #users > 0 then
    local u, umin, umax = median(users)
    text = text .. ("; user CPU per request %+.1f %% (%+.1f to %+.1f %%)"):format(u * 100, umin * 100, umax * 100)
  end
  local function verdict(n_over, n)
    return n_over == 0 and "MET" or n_over == n and "NOT MET" or ("WITHIN NOISE (%d of %d rounds over 3 %%)"):format(n_over, n)
  end
  local r = { verdict = verdict(over, #costs), n = #costs, text = text, cost = c }
  if #shares > 0 then
    local sh, smin, smax = median(shares)
    r.share, r.share_verdict = sh, verdict(sover, #shares)
    r.share_text = ("%.1f %% (%.1f to %.1f %%)"):format(sh * 100, smin * 100, smax * 100)
  end
  return r
end

-- Sends n requests for path one after another on keep-alive connections to 127.0.0.1:port, a new
-- one every 800 requests (nginx closes a connection after 1,000: keepalive_requests).
local function requests(port, path, n)
  local socket = require "socket"
  local c
  local req = ("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n"):format(path)
  for i = 1, n do
    if i % 800 == 1 then
      if c then c:close() end
      c = assert(socket.connect("127.0.0.1", port))
    end
    assert(c:send(req))
    local status = assert(c:receive("*l"))
    assert(status:match("^HTTP/1.1 200"), status)
    local len, chunked
    while true do
      local l = assert(c:receive("*l"))
      if l == "" then break end
      len = tonumber(l:match("^[Cc]ontent%-[Ll]ength:%s*(%d+)")) or len
      chunked = chunked or l:lower():match("^transfer%-encoding:%s*chunked") ~= nil
    end
    if len then
      assert(c:receive(len))
    elseif chunked then
      while true do
        local size = tonumber(assert(c:receive("*l")), 16)
        if size == 0 then assert(c:receive("*l")) break end
        assert(c:receive(size + 2))
      end
    end
  end
  c:close()
end

-- The worker's Lua heap in bytes (location /mem), or nil.
local function heap(port)
  local socket = require "socket"
  local c = socket.connect("127.0.0.1", port)
  if not c then return nil end
  c:send("GET /mem HTTP/1.0\r\nHost: localhost\r\n\r\n") -- (1.0: the body not chunked)
  local text = c:receive("*a") or ""
  c:close()
  return tonumber(text:match("\r\n\r\n(%d+)"))
end

local function total_instructions(file)
  local f = assert(io.open(file))
  local text = f:read("*a")
  f:close()
  return tonumber(text:match("\nsummary:%s*(%d+)") or text:match("\ntotals:%s*(%d+)"))
end

-- The estimated cycles of a callgrind dump made with --cache-sim=yes (nil without it): each
-- instruction one, each first-level miss (instruction, data read or write) 12 more, each
-- last-level one 100 (a model of a present-day core, not a measure). At 1,000 connections, or
-- with the fake's answer held (BENCH_OPENRESTY_DELAY), every line a request touches again has been
-- through the cache since: a request's cost is more its misses than its instructions (issue 19 §4).
local function estimated_cycles(file)
  local f = assert(io.open(file))
  local text = f:read("*a")
  f:close()
  local names = text:match("\nevents:%s*([^\n]+)")
  local values = text:match("\nsummary:%s*([^\n]+)") or text:match("\ntotals:%s*([^\n]+)")
  if not (names and values) then return nil end
  local ev, i = {}, 0
  local list = {}
  for v in values:gmatch("%d+") do list[#list + 1] = tonumber(v) end
  for name in names:gmatch("%S+") do
    i = i + 1
    ev[name] = list[i] or 0
  end
  if not ev.I1mr then return nil end
  return ev.Ir + 12 * (ev.I1mr + ev.D1mr + ev.D1mw) + 100 * (ev.ILmr + ev.DLmr + ev.DLmw)
end

-- One nginx.conf (cg's) run as one process under callgrind; returns its pid once it answers on port.
local function start_callgrind(cg, port)
  local fake = require "support.fake"
  local socket = require "socket"
  local pidf = cg .. "/valgrind.pid"
  -- (BENCH_OPENRESTY_CGFLAGS: more options of callgrind's, e.g. --dump-instr=yes, which with
  -- BENCH_OPENRESTY_JITDUMP's trace addresses tells each trace's instructions per request)
  os.execute(("(valgrind --tool=callgrind %s --compress-strings=no --callgrind-out-file=%s/cg.%%p.out nginx -p %s/ "
    .. "-c %s/nginx.conf -e %s/error.log >%s/valgrind.log 2>&1 & echo $! > %s)")
    :format(os.getenv("BENCH_OPENRESTY_CGFLAGS") or "", cg, cg, cg, cg, cg, pidf))
  local pid = assert(fake.read(pidf)):match("%d+")
  for _ = 1, 600 do
    local c = socket.connect("127.0.0.1", port)
    if c then
      c:close()
      return pid
    end
    socket.sleep(0.1)
  end
  error("nginx under valgrind did not answer: " .. (fake.read(cg .. "/valgrind.log") or ""))
end

-- The contenders of each callgrind process: a gateway runs with the metrics or without them, so
-- /vxm has a process of its own (its flush timer and its traces only there: in one process with /vx,
-- its flushes fell into /vx's and /proxy's rounds as well, and the two shared their traces). There
-- /vxm's handler serves location /vx (as = "/vx"): the same request line and location lookup as /vx's
-- (the longer URI cost nginx about 80 instructions a request more, none of them the hooks').
-- idle connections beside the counted ones (BENCH_OPENRESTY_IDLE; M.callgrind says why)
local IDLE = tonumber(os.getenv("BENCH_OPENRESTY_IDLE") or "100")
-- BENCH_OPENRESTY_CGCONNS=c (diagnosis): each counted round is `wrk -c c` for BENCH_OPENRESTY_CGSECONDS
-- (10) instead of sequential requests: requests in flight at once, as at 1,000 connections (with
-- BENCH_OPENRESTY_CGFLAGS=--cache-sim=yes, the cache misses a request costs there)
local CGCONNS = tonumber(os.getenv("BENCH_OPENRESTY_CGCONNS") or "")
local CGSECONDS = tonumber(os.getenv("BENCH_OPENRESTY_CGSECONDS") or "10")

local CALLGRIND_PROCESSES = { { "/proxy", "/vx" }, { "/vxm", as = "/vx" } }

function M.callgrind(app, server, dir, n, out, rounds)
  local fake = require "support.fake"
  local socket = require "socket"
  local conf = assert(fake.read(app.dir .. "/nginx.conf"))
  local port = app.port
  app:stop()
  local cg = fake.tmpdir()
  local from = app.dir:gsub("/$", ""):gsub("%p", "%%%0")
  conf = "daemon off;\nmaster_process off;\n" .. conf:gsub(from, (cg:gsub("/$", "")))
  os.execute(("mkdir -p %s/logs %s/tmp"):format(cg, cg))
  local per = { ["/vx"] = {}, ["/vxm"] = {}, ["/proxy"] = {} }
  local per_cycles = { ["/vx"] = {}, ["/vxm"] = {}, ["/proxy"] = {} } -- (with --cache-sim=yes)
  -- with the worker's collector stopped (BENCH_OPENRESTY_NOGC), the Lua heap each request allocates
  local nogc, per_bytes = os.getenv("BENCH_OPENRESTY_NOGC") ~= nil, { ["/vx"] = {}, ["/vxm"] = {}, ["/proxy"] = {} }
  local handler = {
    ["/vx"] = 'require("bench_openresty").cancel()', ["/vxm"] = 'require("bench_openresty").cancel(nil, true)' }
  for _, paths in ipairs(CALLGRIND_PROCESSES) do
    local this = conf
    if paths.as then -- (location paths.as runs paths[1]'s handler)
      -- (the lines between, e.g. BENCH_OPENRESTY_ACCESSLOG's access_log, kept)
      local from_h = ("location = %s {\n(.-)content_by_lua_block { %s }"):format(paths.as,
        (handler[paths.as]:gsub("%p", "%%%0")))
      local n_sub
      this, n_sub = conf:gsub(from_h, function(between)
        return ("location = %s {\n%scontent_by_lua_block { %s }"):format(paths.as, between, handler[paths[1]])
      end)
      assert(n_sub == 1, "bench/openresty.lua's location " .. paths.as .. " not found in nginx.conf")
    end
    fake.write(cg .. "/nginx.conf", this)
    local pid = start_callgrind(cg, port)
    -- warm-up: 3,200 of each, three times the metrics' fold (FOLD_AT, 1,024 events of a histogram):
    -- a fold's loop and the side traces of its buckets compiled before counting starts (with 300,
    -- the rounds that held the first folds counted their compiling: up to 900 instructions a
    -- request more)
    for _, path in ipairs(paths) do requests(port, paths.as or path, 3200) end
    -- idle connections held open through the rounds (BENCH_OPENRESTY_IDLE, 100): each has a timer in
    -- nginx's tree, as a gateway's thousand connections have. With the tree of one connection's
    -- few timers, the metrics' two (the flush loop's sleep, the watchdog) made every insert and
    -- delete of a request's timers about 60 instructions dearer in /vxm's process alone (callgrind:
    -- ngx_rbtree_insert 39 -> 93 a call), a cost that a tree of thousands does not show. Opened anew
    -- before each round (nginx closes one that sends nothing for client_header_timeout, 60 s), and
    -- half a second given to nginx to accept them before counting starts
    local idle = {}
    local function reopen_idle()
      for _, c in ipairs(idle) do c:close() end
      for i = 1, IDLE do
        idle[i] = assert(socket.connect("127.0.0.1", port))
      end
      socket.sleep(0.5)
    end
    local dump = 0
    for r = 1, rounds do
      local order = {}
      for i = 1, #paths do order[i] = paths[r % 2 == 1 and i or #paths + 1 - i] end
      for _, path in ipairs(order) do
        local h0 = nogc and heap(port)
        reopen_idle()
        os.execute("callgrind_control -z " .. pid .. " >/dev/null 2>&1")
        local t0 = socket.gettime()
        local served = n
        if CGCONNS then -- (diagnosis: wrk at that many connections, for CGSECONDS; requests as wrk counts them)
          local said = io.popen(("ulimit -n 16384 2>/dev/null; wrk -t1 -c%d -d%ds --timeout 60s http://127.0.0.1:%d%s")
            :format(CGCONNS, CGSECONDS, port, paths.as or path)):read("*a")
          served = tonumber(said:match("(%d+) requests in")) or 0
          assert(served > 0 and not said:match("Non%-2xx"), said)
        else
          requests(port, paths.as or path, n)
        end
        local took = socket.gettime() - t0
        os.execute("callgrind_control -d " .. pid .. " >/dev/null 2>&1")
        local h1 = nogc and heap(port)
        if h0 and h1 then table.insert(per_bytes[path], (h1 - h0) / served) end
        dump = dump + 1
        local file = ("%s/cg.%s.out.%d"):format(cg, pid, dump)
        local inst, cycles = total_instructions(file), estimated_cycles(file)
        table.insert(per[path], inst / served)
        if cycles then table.insert(per_cycles[path], cycles / served) end
        io.stderr:write(("  callgrind round %d %s: %.0f instructions per request (%.0f requests/s under valgrind)%s%s\n")
          :format(r, path, inst / served, served / took,
            h0 and h1 and (", %.0f bytes of Lua heap allocated per request"):format((h1 - h0) / served) or "",
            cycles and (", %.0f estimated cycles"):format(cycles / served) or ""))
      end
    end
    for _, c in ipairs(idle) do c:close() end
    os.execute("kill " .. pid)
    for i = 1, 150 do -- (gone before the next one takes the port: killed outright after 10 s)
      local stat = fake.read("/proc/" .. pid .. "/stat")
      if not stat or stat:match("^%d+ %b() Z") then break end
      if i == 100 then os.execute("kill -9 " .. pid) end
      socket.sleep(0.1)
    end
  end
  server:stop()
  os.execute("rm -rf " .. dir .. (os.getenv("BENCH_OPENRESTY_KEEP") and "" or " " .. cg))
  io.stderr:write("callgrind files: " .. cg .. "\n")
  local function median(v)
    table.sort(v)
    local k = #v
    return k % 2 == 1 and v[(k + 1) // 2] or (v[k // 2] + v[k // 2 + 1]) / 2, v[1], v[k]
  end
  local a, amin, amax = median(per["/vx"])
  local b, bmin, bmax = median(per["/vxm"])
  local p, pmin, pmax = median(per["/proxy"])
  local cost = b / a - 1
  local delay = tonumber(os.getenv("BENCH_OPENRESTY_DELAY") or "")
  local cycles = ""
  if #per_cycles["/vx"] > 0 and #per_cycles["/vxm"] > 0 then
    local ca, cb = median(per_cycles["/vx"]), median(per_cycles["/vxm"])
    local cp = #per_cycles["/proxy"] > 0 and median(per_cycles["/proxy"]) or 0
    cycles = (" Estimated cycles per request (--cache-sim=yes: an instruction 1, a first-level cache miss 12, a "
      .. "last-level one 100; medians): cosockets %.0f, with the hooks %.0f (%+.1f %%), proxy_pass %.0f.")
      :format(ca, cb, (cb / ca - 1) * 100, cp)
  end
  local text = ("Instructions per request of the nginx worker (callgrind, `make bench-openresty-callgrind`: the "
    .. "same nginx.conf run as one process under valgrind, twice: /proxy and /vx in one, /vxm in the other, as a "
    .. "gateway runs with the metrics or without them; 3,200 requests of each to warm up, then %d rounds of %s "
    .. "beside %d idle connections (a busy worker's tree of timers)%s, the metrics flushed "
    .. "every 1.3 s (as many requests a flush as 0.1 s at full pace), "
    .. "the contenders of a process in turn; median (min–max)): cosockets %.0f (%.0f–%.0f), with hooks = "
    .. "metrics:hooks() %.0f (%.0f–%.0f); nginx proxy_pass %.0f (%.0f–%.0f). The hooks and metrics "
    .. "cost %+.1f %% of the worker's instructions per request.%s\n\n| | target | measured |\n|---|---|---|\n"
    .. "| %s | hooks = metrics:hooks() cost ≤ 3 %% of the worker's instructions per request at one connection (a "
    .. "measure of their code, not of req/s: the tail section) | %+.1f %% |\n")
    :format(rounds, CGCONNS and ("%d s of wrk at %d connections"):format(CGSECONDS, CGCONNS)
        or ("%d sequential requests"):format(n), IDLE,
      delay and (", the fake holding each answer %g s (every request waits for it in receiveany, as at 1,000 "
        .. "connections)"):format(delay) or "",
      a, amin, amax, b, bmin, bmax, p, pmin, pmax, cost * 100, cycles,
      cost <= 0.03 and "MET" or "NOT MET", cost * 100)
  require("bench.common").write_section(out, "OpenResty: hooks and metrics, instructions per request",
    "## OpenResty: hooks and metrics, instructions per request\n\n" .. text)
end

return M
