-- A real HTTPS proxy on loopback for the specs: Debian's tinyproxy (installed by `make deps`, it is in the
-- Makefile's DEBS), run in the foreground on a free port with its own configuration and log. Its log is the
-- witness of what went through it: one "Request (file descriptor N): CONNECT host:port HTTP/1.1" line per
-- tunnel it was asked for.
--
--   local proxy = require("support.proxy").start { user = "alice", password = "s3cret" }  -- auth optional
--     (more = {{user, password}, ...}: more users; user names and passwords: no space, '@' or ':')
--   proxy.url            "http://127.0.0.1:PORT" (no credentials: build them in with proxy:url_with(user, pw))
--   proxy:connects(target) CONNECT requests for target ("127.0.0.1:443") in the log so far
--   proxy:log()           the log's text
--   proxy:stop()
local testing = require "vertexops.testing"
local socket = require "socket"

local M = {}

local Proxy = {}
Proxy.__index = Proxy

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

function M.start(opts)
  opts = opts or {}
  assert(sh("command -v tinyproxy >/dev/null 2>&1"),
    "tinyproxy is needed for the proxy specs (Debian: tinyproxy; `make deps` installs it)")
  local dir = testing.tmpdir()
  local last
  for _ = 1, 5 do
    local port = testing.free_port()
    local conf = {
      "Port " .. port, "Listen 127.0.0.1", "Timeout 60", "MaxClients 200",
      ("LogFile %q"):format(dir .. "/proxy.log"), "LogLevel Connect",
      ("PidFile %q"):format(dir .. "/proxy.pid"),
    }
    if opts.user then conf[#conf + 1] = ("BasicAuth %s %s"):format(opts.user, opts.password) end
    for _, more in ipairs(opts.more or {}) do conf[#conf + 1] = ("BasicAuth %s %s"):format(more[1], more[2]) end
    testing.write(dir .. "/proxy.conf", table.concat(conf, "\n") .. "\n")
    local p = io.popen(("tinyproxy -d -c %s >%s 2>&1 & echo $!"):format(quote(dir .. "/proxy.conf"),
      quote(dir .. "/proxy.out")))
    local pid = tonumber(p:read("*l"))
    p:close()
    local self = setmetatable({ dir = dir, pid = pid, port = port, url = "http://127.0.0.1:" .. port }, Proxy)
    for _ = 1, 250 do -- up to 5 s for it to listen
      local c = socket.tcp()
      c:settimeout(2)
      local ok = c:connect("127.0.0.1", port)
      -- the port answers as tinyproxy (another process may have taken the free port first)
      local answer = ok and c:send("GET / HTTP/1.0\r\n\r\n") and c:receive("*a")
      c:close()
      if answer and answer:find("\r\nServer: tinyproxy/", 1, true) then return self end
      if ok then break end -- someone else's port: try another
      if not sh("kill -0 " .. pid .. " 2>/dev/null") then break end
      socket.sleep(0.02)
    end
    last = testing.read(dir .. "/proxy.out") or ""
    sh("kill " .. pid .. " 2>/dev/null")
  end
  error("tinyproxy did not start: " .. tostring(last))
end

--- The proxy's URL with credentials (percent-encoded as a URL holds them).
function Proxy:url_with(user, password)
  local function enc(s) return (s:gsub("[^%w%-._~]", function(c) return ("%%%02X"):format(c:byte()) end)) end
  return ("http://%s:%s@127.0.0.1:%d"):format(enc(user), enc(password), self.port)
end

function Proxy:log()
  return testing.read(self.dir .. "/proxy.log") or ""
end

--- CONNECT requests for target (host:port) the proxy has logged.
function Proxy:connects(target)
  local n = 0
  local pat = "Request %(file descriptor %d+%): CONNECT " .. target:gsub("%p", "%%%0") .. " HTTP/1%.[01]"
  for line in self:log():gmatch("[^\n]+") do
    if line:find(pat) then n = n + 1 end
  end
  return n
end

--- Every CONNECT the proxy has logged.
function Proxy:all_connects()
  local n = 0
  for _ in self:log():gmatch("%): CONNECT ") do n = n + 1 end
  return n
end

function Proxy:stop()
  if self.pid then
    sh("kill " .. self.pid .. " 2>/dev/null")
    for _ = 1, 100 do
      if not sh("kill -0 " .. self.pid .. " 2>/dev/null") then break end
      socket.sleep(0.01)
    end
    self.pid = nil
  end
  sh("rm -rf " .. quote(self.dir))
end

return M
