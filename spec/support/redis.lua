-- A real redis-server (Debian's redis-server, installed by make deps) for the specs of option
-- rate.redis: on a free loopback port, no persistence, in a directory of its own.
--   local redis = require "support.redis"
--   local r = redis.start()          -- r.port, r.host; r:cli("KEYS", "*"); r:stop(); r:start_again()
local fake = require "support.fake"
local socket = require "socket"

local M = {}
local Redis = {}
Redis.__index = Redis

local function sh(cmd)
  local p = io.popen(cmd)
  local out = p:read("*a")
  p:close()
  return out
end

--- The redis-server command's line for this server.
function Redis:command_line()
  return ("redis-server --port %d --bind 127.0.0.1 --save '' --appendonly no --dir %s --logfile %s/redis.log"
    .. " --daemonize no --protected-mode no%s"):format(self.port, self.dir, self.dir,
    self.password and (" --requirepass " .. self.password) or "")
end

-- Starts the process (self.pid) and waits until it answers PING (10 s at most: a hang).
function Redis:launch()
  self.pid = assert(tonumber(sh(self:command_line() .. " >/dev/null 2>&1 & echo $!")), "redis-server did not start")
  for _ = 1, 500 do
    local c = socket.tcp()
    c:settimeout(0.2)
    if c:connect("127.0.0.1", self.port) then
      c:send((self.password and ("AUTH " .. self.password .. "\r\n") or "") .. "PING\r\n")
      local line = c:receive("*l")
      if self.password and line == "+OK" then line = c:receive("*l") end
      c:close()
      if line == "+PONG" then return self end
    end
    c:close()
    socket.sleep(0.02)
  end
  error("redis-server did not answer on port " .. self.port .. ": " .. (fake.read(self.dir .. "/redis.log") or ""))
end

--- Starts a redis-server; opts.password: requirepass.
function M.start(opts)
  opts = opts or {}
  local self = setmetatable({ dir = fake.tmpdir(), port = fake.free_port(), host = "127.0.0.1",
    password = opts.password }, Redis)
  return self:launch()
end

--- One command through redis-cli; its output (trimmed).
function Redis:cli(...)
  local args = {}
  for i = 1, select("#", ...) do args[i] = "'" .. tostring((select(i, ...))):gsub("'", "'\\''") .. "'" end
  local auth = self.password and ("-a " .. self.password .. " --no-auth-warning ") or ""
  return (sh(("redis-cli -h 127.0.0.1 -p %d %s%s 2>&1"):format(self.port, auth, table.concat(args, " ")))
    :gsub("%s+$", ""))
end

--- Stops the server (SIGKILL: as a crash; waits until the process is gone, 5 s at most).
function Redis:stop()
  if not self.pid then return end
  sh("kill -KILL " .. self.pid .. " 2>/dev/null")
  for _ = 1, 250 do
    if sh("kill -0 " .. self.pid .. " 2>/dev/null && echo alive") == "" then break end
    socket.sleep(0.02)
  end
  self.pid = nil
end

--- Starts it again on the same port (empty: no persistence).
function Redis:start_again() return self:launch() end

--- The option rate.redis that reaches it, plus the fields of extra. Its exchange bound is 5 s, not
--- the default 0.5 s: a spec of sharing must not see Redis "down" because a loaded machine was slow
--- to answer (a fall, its warning and a local window); the specs of the bound give their own.
function Redis:option(extra)
  local o = { host = self.host, port = self.port, password = self.password, timeout = 5 }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

return M
