-- The fake Vertex server for the specs, the demo and the benchmarks: vertexops.testing
-- (lua/vertexops/testing/, documented in docs/fake.md), plus what only the specs use: spec_dir and
-- raw_server (a responder of canned raw bytes).
--
--   local fake = require "support.fake"
--   local server = fake.start()          -- nginx on free loopback ports, fresh TLS certificate
--   server:create{done_after = 2}        -- an operation; returns its JSON view
--   server:fault{match = "cancel", status = 503, times = 2}
--   server:log()                         -- every request: method, path, headers, connection id
--   server:stop()
local testing = require "vertexops.testing"

local M = setmetatable({}, { __index = testing })

local here = debug.getinfo(1, "S").source:match("^@(.*)/support/fake%.lua$") or "spec"
local function abspath(p)
  if p:sub(1, 1) == "/" then return p end
  local pwd = os.getenv("PWD") or io.popen("pwd"):read("*l")
  return pwd .. "/" .. p
end
-- The checkout's spec/ directory (absolute).
M.spec_dir = abspath(here)

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

-- The raw responder's program: answers every connection with the canned bytes, then closes it,
-- and appends each request's head (and body) to a log file, one request per record.
local RAW = [[
local socket = require "socket"
local host, port, answer_file, log_file, ready_file = ...
local f = assert(io.open(answer_file, "rb")); local answer = f:read("*a"); f:close()
local server = assert(socket.bind(host, tonumber(port), 64))
f = assert(io.open(ready_file, "w")); f:close()
while true do
  local c = server:accept()
  if c then
    c:settimeout(5)
    local head, len = {}, 0
    while true do
      local line = c:receive("*l")
      if not line or line == "" then break end
      head[#head + 1] = line
      len = tonumber(line:lower():match("^content%-length:%s*(%d+)")) or len
    end
    local body = len > 0 and c:receive(len) or ""
    local log = io.open(log_file, "ab")
    log:write(table.concat(head, "\n"), "\n\n", body or "", "\n\30\n")
    log:close()
    c:send(answer)
    c:close()
  end
end
]]

--- A plain-HTTP server on host (default 127.0.0.1) answering every request with the raw bytes
--- given (status line, headers, body: exactly what goes on the wire), in a background process.
--- Returns {endpoint, port, host, requests() -> list of request texts, stop()}.
function M.raw_server(bytes, host)
  local socket = require "socket"
  host = host or "127.0.0.1"
  local dir = testing.tmpdir()
  testing.write(dir .. "/raw.lua", RAW)
  testing.write(dir .. "/answer", bytes)
  testing.write(dir .. "/log", "")
  local lua = os.getenv("VERTEXOPS_LUA") or "lua5.4"
  for _ = 1, 5 do
    local port = testing.free_port()
    local p = io.popen(("%s %s/raw.lua %s %d %s/answer %s/log %s/ready >/dev/null 2>&1 & echo $!")
      :format(lua, dir, host, port, dir, dir, dir))
    local pid = p:read("*l")
    p:close()
    for _ = 1, 250 do
      local r = io.open(dir .. "/ready")
      if r then r:close() break end
      socket.sleep(0.02)
    end
    if io.open(dir .. "/ready") and sh("kill -0 " .. pid .. " 2>/dev/null") then
      return {
        host = host, port = port, endpoint = ("http://%s:%d"):format(host, port),
        requests = function()
          local text = M.read(dir .. "/log") or ""
          local out = {}
          for rec in text:gmatch("(.-)\n\30\n") do out[#out + 1] = rec end
          return out
        end,
        stop = function()
          sh("kill -TERM " .. pid .. " 2>/dev/null")
          sh("rm -rf " .. dir)
        end,
      }
    end
    sh("kill -TERM " .. pid .. " 2>/dev/null")
  end
  error("the raw server did not start")
end

return M
