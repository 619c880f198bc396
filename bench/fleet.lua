-- make bench-fleet (and make bench, after bench/run.lua): cancel_all against the fake server next
-- to raw libcurl multi (bench/fleet_curl.c) doing the same list + cancel sweep with the same window.
-- Writes the "## Fleet" section of bench/RESULTS.md (replacing the one there) and prints it.
--
-- Scaling: 1,000, 10,000 and 100,000 running operations, the fake answering at once (the clients'
-- own cost decides); the window: 10,000 operations, every answer held 10 ms (concurrency decides);
-- the wait: what re-listing and one GET per operation cost.
local fake = require "support.fake"
local H = require "support.helper"
local cjson = require "cjson"

local OUT = "bench/RESULTS.md"
local RUNS = tonumber(os.getenv("FLEET_RUNS") or "3")
local STREAMS = 100 -- a Google front end's SETTINGS_MAX_CONCURRENT_STREAMS
local WINDOW = 100  -- cancel_all's default max_in_flight (lua/vertexops/options.lua)
local LUA54 = 'LUA_PATH="./lua/?.lua;./lua/?/init.lua;;" LUA_CPATH="./build/5.4/?.so;;" lua5.4'
local LUAJIT = 'LUA_PATH="./lua/?.lua;./lua/?/init.lua;;" LUA_CPATH="./build/jit/?.so;;" luajit'

local server = fake.start()

local sh = require("bench.common").sh

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

local function median_of(cmd, n, runs, hold)
  local docs = {}
  for i = 1, runs do docs[i] = sweep(cmd, n, hold) end
  table.sort(docs, function(a, b) return a.seconds < b.seconds end)
  local m = docs[math.floor((#docs + 1) / 2)]
  for _, d in ipairs(docs) do m.rss_kb, m.connections = math.max(m.rss_kb, d.rss_kb), math.max(m.connections, d.connections) end
  return m
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
  .. "Median of %d runs (1 at 1,000)."):format(WINDOW, RUNS))
add("")
add("| operations | contender | seconds | cancels/s | × raw | connections | peak RSS |")
add("|---:|---|---:|---:|---:|---:|---:|")
local at = {}
for _, n in ipairs { 1000, 10000, 100000 } do
  local runs = n == 1000 and 1 or RUNS
  local r = median_of(raw(WINDOW), n, runs)
  local v = median_of(vx(LUA54, WINDOW), n, runs)
  local j = median_of(vx(LUAJIT, WINDOW), n, runs)
  at[n] = { raw = r, vx = v, jit = j }
  for _, row in ipairs { { "raw libcurl multi (C)", r }, { "cancel_all, Lua 5.4", v }, { "cancel_all, LuaJIT", j } } do
    local d = row[2]
    add(("| %d | %s | %.2f | %.0f | %.2f | %d | %s |"):format(n, row[1], d.seconds, d.rate, d.rate / r.rate,
      d.connections, mib(d.rss_kb)))
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
server:stop()

-- Targets ----------------------------------------------------------------------------------------
target("cancel_all of 100,000 ≥ 0.9× raw libcurl multi (Lua 5.4)", big.vx.rate >= 0.9 * big.raw.rate,
  ("%.2f×"):format(big.vx.rate / big.raw.rate))
target("cancel_all of 100,000 ≥ 0.9× raw libcurl multi (LuaJIT)", big.jit.rate >= 0.9 * big.raw.rate,
  ("%.2f×"):format(big.jit.rate / big.raw.rate))
target("peak RSS < 64 MiB cancelling 100,000", math.max(big.vx.rss_kb, big.jit.rss_kb) < 64 * 1024,
  mib(math.max(big.vx.rss_kb, big.jit.rss_kb)))
-- What the server's limits require: ⌈window / streams⌉ connections at a time, a new one each time a
-- connection has served keepalive_requests requests and sent GOAWAY.
local per_conn = fake.DEFAULTS.keepalive_requests
local requests = 100000 + math.ceil(100000 / 1000)
local need = math.ceil(WINDOW / STREAMS) * math.ceil(requests / per_conn)
target(("connections ≤ %d (window %d / %d streams, a GOAWAY every %d requests: ⌈%d / %d⌉)")
  :format(need, WINDOW, STREAMS, per_conn, requests, per_conn),
  math.max(big.vx.connections, big.jit.connections) <= need,
  ("%d connection(s) (raw libcurl multi: %d)"):format(math.max(big.vx.connections, big.jit.connections),
    big.raw.connections))
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
require("bench.common").write_section(OUT, "Fleet: cancel_all", table.concat(lines, "\n") .. "\n")
