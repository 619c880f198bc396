-- vertexops as a contender (Lua 5.4 or LuaJIT).
--   LUA bench/vx_client.lua seq  ENDPOINT CA_FILE NAME N          N sequential cancels, one client
--   LUA bench/vx_client.lua many ENDPOINT CA_FILE NAME N CONC     cancel_many of N names
--   LUA bench/vx_client.lua rss  ENDPOINT CA_FILE NAME N          RSS after 1,000 calls and after N
-- Prints one JSON line: {"calls":N,"seconds":S,"rss_kb":K,"failed":F,...}.
local vertexops = require "vertexops"
local core = require "vertexops.core"

local mode, endpoint, ca, name, n, conc = ...
n = tonumber(n)

local status_kb = require("bench.common").status_kb

local client = vertexops.client { endpoint = endpoint, ca_file = ca, token = "test-token" }
-- warm: connection, TLS and the handles of the path the measurement uses
if mode == "many" then client:cancel_many({ name }) else client:cancel(name) end
local failed, extra = 0, ""
local t0 = core.clock()
if mode == "seq" then
  for _ = 1, n do client:cancel(name) end
elseif mode == "many" then
  local names = {}
  for i = 1, n do names[i] = name end
  for _, r in ipairs(client:cancel_many(names, nil, { concurrency = tonumber(conc) })) do
    if not r.ok then failed = failed + 1 end
  end
elseif mode == "rss" then
  for _ = 1, 1000 do client:cancel(name) end
  collectgarbage()
  local before = status_kb("VmRSS")
  for _ = 1001, n do client:cancel(name) end
  collectgarbage()
  extra = (',"rss_before_kb":%d,"rss_after_kb":%d'):format(before, status_kb("VmRSS"))
end
local seconds = core.clock() - t0
local st = client:stats()
io.write(('{"calls":%d,"seconds":%.6f,"rss_kb":%d,"failed":%d,"client_connects":%d%s}\n')
  :format(n, seconds, status_kb("VmHWM"), failed, st.connects, extra))
