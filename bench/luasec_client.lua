-- LuaSec's ssl.https.request as a contender: what Lua users reach for today.
--   lua5.4 bench/luasec_client.lua URL CA_FILE N
-- HTTP/1.1, a new TCP and TLS connection per call (LuaSec keeps none alive). Peer verification is
-- asked for explicitly (it is off unless asked); LuaSec does not check the host name.
local https = require "ssl.https"
local ltn12 = require "ltn12"
local socket = require "socket"

local url, ca, n = ...
n = tonumber(n)
local name = url:match("/v1beta1/(.-):cancel$")
local headers = {
  ["accept"] = "application/json", ["content-type"] = "application/json", ["content-length"] = "0",
  ["user-agent"] = "luasec", ["authorization"] = "Bearer test-token",
  ["x-goog-request-params"] = "name=" .. name:gsub("/", "%%2F"),
}
local function call()
  local out = {}
  local _, code = https.request {
    url = url, method = "POST", headers = headers, source = ltn12.source.string(""),
    sink = ltn12.sink.table(out), cafile = ca, verify = "peer", protocol = "any", options = "all",
  }
  return code == 200
end
call() -- warm
local failed = 0
local t0 = socket.gettime()
for _ = 1, n do
  if not call() then failed = failed + 1 end
end
local seconds = socket.gettime() - t0
local f = io.open("/proc/self/status")
local rss = f:read("*a"):match("VmHWM:%s+(%d+)")
f:close()
io.write(('{"calls":%d,"seconds":%.6f,"rss_kb":%s,"failed":%d}\n'):format(n, seconds, rss, failed))
