-- bench/fleet_rounds.lua: cancel_all sweeps of N operations in interleaved rounds, for a busy
-- machine where one run decides nothing (bench/RESULTS.md, "The 100,000 sweep"). Each round runs
-- every contender once against the same fake server, in the order given; the ratio of each to the
-- first contender is taken within the round, then the median and the spread over the rounds.
--
--   make build build/bench/fleet_curl
--   LUA_PATH="./lua/?.lua;./lua/?/init.lua;./spec/?.lua;;" LUA_CPATH="./build/5.4/?.so;;" \
--     lua5.4 bench/fleet_rounds.lua N ROUNDS CONTENDER...
--
-- A contender: raw (bench/fleet_curl.c), lua5.4 or luajit (bench/vx_fleet.lua), or TREE:lua5.4 /
-- TREE:luajit, the same in another checkout (built: e.g. a `git worktree` of an older commit).
-- Window 100, pages of 1,000, the fake answering at once. Prints a line per run, then per
-- contender: cancels/s (median, min-max), × the first contender (median, min-max), connections.
local fake = require "support.fake"
local H = require "support.helper"
local cjson = require "cjson"
local common = require "bench.common"
local sh, median = common.sh, common.median

local n, rounds = tonumber(arg[1]), tonumber(arg[2])
local contenders = { table.unpack(arg, 3) }
if not n or not rounds or #contenders == 0 then
  io.stderr:write("usage: fleet_rounds.lua N ROUNDS CONTENDER...\n")
  os.exit(2)
end

local server = fake.start()
local args = ("%s %s %s 100 1000"):format(server.endpoint, server.ca_file, H.PARENT)

local function command(c)
  local tree, interp = c:match("^(.*):(.*)$")
  tree, interp = tree or ".", interp or c
  if interp == "raw" then return "cd " .. tree .. " && build/bench/fleet_curl " .. args end
  local cpath = interp == "luajit" and "./build/jit/?.so" or "./build/5.4/?.so"
  return ('cd %s && LUA_PATH="./lua/?.lua;./lua/?/init.lua;;" LUA_CPATH="%s;;" %s bench/vx_fleet.lua %s')
    :format(tree, cpath, interp, args)
end

local runs = {}
for r = 1, rounds do
  for k, c in ipairs(contenders) do
    server:reset()
    server:config { nolog = true, hold = 0 }
    server:create_many(n, { done_after = 36000 })
    local out = sh(command(c))
    local line = out:match("(%b{})%s*$")
    local doc = line and cjson.decode(line)
    assert(doc and doc.failed == 0 and doc.calls == n, c .. ": " .. out)
    local st = server:stats()
    runs[k] = runs[k] or {}
    runs[k][r] = { rate = doc.calls / doc.seconds, connections = st.connections, requests = st.requests }
    print(("round %d  %-28s %8.0f cancels/s  %3d connections  %d requests"):format(r, c, runs[k][r].rate,
      st.connections, st.requests))
    io.stdout:flush()
  end
end
server:stop()

print(("\n%d operations, %d rounds: median (min-max)"):format(n, rounds))
for k, c in ipairs(contenders) do
  local rates, ratios, conns = {}, {}, {}
  for r = 1, rounds do
    rates[r], ratios[r], conns[r] = runs[k][r].rate, runs[k][r].rate / runs[1][r].rate, runs[k][r].connections
  end
  local rm, rl, rh = median(rates)
  local qm, ql, qh = median(ratios)
  local cm, cl, ch = median(conns)
  print(("%-28s %6.0f (%.0f-%.0f) cancels/s  x first %.2f (%.2f-%.2f)  connections %d (%d-%d)")
    :format(c, rm, rl, rh, qm, ql, qh, cm, cl, ch))
end
