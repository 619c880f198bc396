-- vertexops cancel_all as a contender (Lua 5.4 or LuaJIT):
--   LUA bench/vx_fleet.lua ENDPOINT CA_FILE PARENT WINDOW PAGE_SIZE [WAIT_BY]
-- cancels every running operation of PARENT (WAIT_BY given: then waits for them that way).
-- Prints one JSON line: {"calls":N,"pages":P,"seconds":S,"rss_kb":K,"failed":F,...}.
local vertexops = require "vertexops"
local core = require "vertexops.core"

local endpoint, ca, parent, window, page_size, wait_by = ...

local status_kb = require("bench.common").status_kb

local client = vertexops.client { endpoint = endpoint, ca_file = ca, token = "test-token" }
local t0 = core.clock()
local s = client:cancel_all(parent, nil, { max_in_flight = tonumber(window), page_size = tonumber(page_size),
  wait = wait_by ~= nil, wait_by = wait_by, polling = { initial_delay = 0.2 } })
local seconds = core.clock() - t0
local st = client:stats()
local w = s.wait or {}
io.write(('{"calls":%d,"pages":%d,"seconds":%.6f,"rss_kb":%d,"failed":%d,"client_connects":%d,'
  .. '"requests":%d,"wait_requests":%d,"wait_rounds":%d,"ended":%d}\n')
  :format(s.cancelled, s.pages, seconds, status_kb("VmHWM"), #s.failed, st.connects, s.requests,
    w.requests or 0, w.rounds or 0, #(w.cancelled or {}) + #(w.completed or {})))
for i = 1, math.min(#s.failed, 5) do -- what failed, to stderr (a sweep loses nothing: diagnosis)
  local f = s.failed[i]
  io.stderr:write(("failed: %s %s\n"):format(tostring(f.name), tostring(f.error)))
end
