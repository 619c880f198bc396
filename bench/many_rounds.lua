-- bench/many_rounds.lua: cancel_many of N (every answer held 50 ms, concurrency N) next to raw libcurl
-- multi, in interleaved rounds, for a busy machine where one run decides nothing (bench/RESULTS.md,
-- "The 100,000 sweep", cancel_many of 1,000). Each round runs raw, Lua 5.4 and LuaJIT once against
-- the same fake; each ratio is taken within its round, then the median and the spread.
--
--   make build build/bench/raw_curl
--   LUA_PATH="./lua/?.lua;./lua/?/init.lua;./spec/?.lua;;" LUA_CPATH="./build/5.4/?.so;;" \
--     lua5.4 bench/many_rounds.lua [N] [ROUNDS]
local fake = require "support.fake"
local cjson = require "cjson"
local common = require "bench.common"
local sh, median = common.sh, common.median

local n, rounds = tonumber(arg[1] or "1000"), tonumber(arg[2] or "5")
local server = fake.start()
local op = server:create {}
server:config { nolog = true, hold = 0.05 }
local url = server.endpoint .. "/v1beta1/" .. op.name .. ":cancel"
local CONTENDERS = {
  { "raw libcurl multi", ("build/bench/raw_curl multi %s %s %d %d"):format(url, server.ca_file, n, n) },
}
local INTERPRETERS = { { "cancel_many, Lua 5.4", "./build/5.4/?.so", "lua5.4" },
  { "cancel_many, LuaJIT", "./build/jit/?.so", "luajit" } }
for _, c in ipairs(INTERPRETERS) do
  CONTENDERS[#CONTENDERS + 1] = { c[1], ('LUA_PATH="./lua/?.lua;./lua/?/init.lua;;" LUA_CPATH="%s;;" %s '
    .. "bench/vx_client.lua many %s %s %s %d %d"):format(c[2], c[3], server.endpoint, server.ca_file, op.name, n, n) }
end

local function rate(cmd)
  local out = sh(cmd)
  local doc = cjson.decode((assert(out:match("(%b{})%s*$"), out)))
  assert(doc.failed == 0, cmd .. ": " .. out)
  return doc.calls / doc.seconds
end

for _, c in ipairs(CONTENDERS) do rate(c[2]) end -- warm-up
local rates = {}
for r = 1, rounds do
  for k, c in ipairs(CONTENDERS) do
    rates[k] = rates[k] or {}
    rates[k][r] = rate(c[2])
    print(("round %d  %-22s %8.0f calls/s"):format(r, c[1], rates[k][r]))
    io.stdout:flush()
  end
end
server:stop()
local f = io.open("/proc/loadavg")
print(("\ncancel_many of %d, %d rounds, load average %s: median (min-max)"):format(n, rounds, f and f:read("*l") or "?"))
for k, c in ipairs(CONTENDERS) do
  local ratios = {}
  for r = 1, rounds do ratios[r] = rates[k][r] / rates[1][r] end
  local rm, rl, rh = median({ table.unpack(rates[k]) })
  local qm, ql, qh = median(ratios)
  print(("%-22s %8.0f (%.0f-%.0f) calls/s   x raw %.2f (%.2f-%.2f)"):format(c[1], rm, rl, rh, qm, ql, qh))
end
