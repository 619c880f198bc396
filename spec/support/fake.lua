-- Starts, drives and stops the fake Vertex server (spec/fake/) for specs, the demo and benchmarks.
--
--   local fake = require "support.fake"
--   local server = fake.start()          -- nginx on free loopback ports, fresh TLS certificate
--   server:create{done_after = 2}        -- an operation; returns its JSON view
--   server:create_many(1000, {cancel = "late"})  -- 1,000 operations in one control request
--   server:fault{match = "cancel", status = 503, times = 2}
--   server:log()                         -- every request: method, path, headers, connection id
--   server:stop()
local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"
local cjson = require "cjson"

local M = {}

local here = debug.getinfo(1, "S").source:match("^@(.*)/support/fake%.lua$") or "spec"
local function abspath(p)
  if p:sub(1, 1) == "/" then return p end
  local pwd = os.getenv("PWD") or io.popen("pwd"):read("*l")
  return pwd .. "/" .. p
end
M.spec_dir = abspath(here)

local NGINX_MODULES = os.getenv("VERTEXOPS_NGINX_MODULES") or "/usr/lib/nginx/modules"

local CONF = [[
worker_processes 1;
${USER}
pid ${DIR}/nginx.pid;
error_log ${DIR}/error.log warn;
load_module ${MODULES}/ndk_http_module.so;
load_module ${MODULES}/ngx_http_lua_module.so;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${DIR}/tmp/body;
  proxy_temp_path ${DIR}/tmp/proxy;
  fastcgi_temp_path ${DIR}/tmp/fastcgi;
  uwsgi_temp_path ${DIR}/tmp/uwsgi;
  scgi_temp_path ${DIR}/tmp/scgi;
  lua_package_path "${FAKE}/?.lua;;";
  client_max_body_size 64m;      # control requests carry whole hostile bodies
  client_body_buffer_size 64m;   # ... kept in memory, where the handler reads them
  # Google's front ends: 100 streams per HTTP/2 connection, GOAWAY after a while (M.DEFAULTS)
  keepalive_requests ${KEEPALIVE_REQUESTS};
  keepalive_time ${KEEPALIVE_TIME}s;
  keepalive_timeout 600s;
  http2_max_concurrent_streams ${MAX_STREAMS};
  lua_socket_log_errors off;
  server {
    listen 127.0.0.1:${HTTPS_PORT} ssl http2 backlog=4096;  # load specs connect 1,000 at once
    listen 127.0.0.1:${HTTP_PORT} backlog=4096;
    ssl_certificate ${DIR}/cert.pem;
    ssl_certificate_key ${DIR}/key.pem;
    location / {
      content_by_lua_block { require("vertex").handle() }
      log_by_lua_block { require("vertex").done() }
    }
  }
  # GOAWAY: nginx ends an HTTP/2 connection with GOAWAY after keepalive_requests requests on it
  server {
    listen 127.0.0.1:${GOAWAY_PORT} ssl http2;
    keepalive_requests ${GOAWAY_AFTER};
    error_log ${DIR}/goaway.log info;
    ssl_certificate ${DIR}/cert.pem;
    ssl_certificate_key ${DIR}/key.pem;
    location / {
      content_by_lua_block { require("vertex").handle() }
      log_by_lua_block { require("vertex").done() }
    }
  }
  # REFUSED_STREAM: nginx refuses (RST_STREAM) every stream opened past this limit
  server {
    listen 127.0.0.1:${NARROW_PORT} ssl http2;
    http2_max_concurrent_streams 1;
    http2_body_preread_size 0;  # a stream with a body sent before SETTINGS are acknowledged: refused too
    error_log ${DIR}/narrow.log info;  # "concurrent streams exceeded", "... before settings were acknowledged"
    ssl_certificate ${DIR}/cert.pem;
    ssl_certificate_key ${DIR}/key.pem;
    location / {
      content_by_lua_block { require("vertex").handle() }
      log_by_lua_block { require("vertex").done() }
    }
  }
}
]]

-- Requests per HTTP/2 connection on server.goaway_endpoint before nginx sends GOAWAY.
M.GOAWAY_AFTER = 5

-- The main endpoint behaves like Google's front ends (fake.start(opts) overrides any of these):
--   max_streams         SETTINGS_MAX_CONCURRENT_STREAMS (Google advertises 100): streams past it
--                       are refused, a client must queue or open another connection
--   keepalive_requests  requests on one connection before nginx sends GOAWAY (Google's front
--                       ends close long-lived connections from time to time)
--   keepalive_time      seconds a connection may live before GOAWAY (nginx keepalive_time)
M.DEFAULTS = { max_streams = 100, keepalive_requests = 5000, keepalive_time = 3600 }

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end
M.write = write

-- Makes a self-signed certificate (EC P-256, for 127.0.0.1 and localhost) in dir.
function M.make_cert(dir, cn)
  assert(sh(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
    .. "-keyout %s/key.pem -out %s/cert.pem -days 2 -subj /CN=%s "
    .. "-addext subjectAltName=IP:127.0.0.1,DNS:localhost >/dev/null 2>&1"):format(dir, dir, cn or "127.0.0.1")),
    "openssl could not make a certificate")
end

-- Makes an RSA private key (PEM) at dir/key.pem and its public key at dir/pub.pem; returns the PEM.
function M.make_rsa_key(dir)
  assert(sh(("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s/key.pem 2>/dev/null "
    .. "&& openssl pkey -in %s/key.pem -pubout -out %s/pub.pem"):format(dir, dir, dir)), "openssl could not make a key")
  local f = assert(io.open(dir .. "/key.pem"))
  local pem = f:read("*a")
  f:close()
  return pem
end

local Server = {}
Server.__index = Server

--- A fresh folder for an nginx of our own.
function M.tmpdir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(sh("mkdir -p " .. dir .. "/tmp && chmod 755 " .. dir))
  return dir
end

M.is_root = io.popen("id -u"):read("*l") == "0"

--- Runs nginx with conf (text) in dir, with the environment variables in env. Returns success.
function M.run_nginx(dir, conf, env)
  write(dir .. "/nginx.conf", conf)
  local prefix = {}
  for k, v in pairs(env or {}) do prefix[#prefix + 1] = k .. "='" .. tostring(v) .. "'" end
  return sh(("env %s nginx -p %s -c %s/nginx.conf -e %s/error.log 2>>%s/error.log")
    :format(table.concat(prefix, " "), dir, dir, dir, dir))
end

--- Stops the nginx whose pid file is in dir, and removes dir.
function M.stop_nginx(dir)
  local pidf = io.open(dir .. "/nginx.pid")
  local pid = pidf and pidf:read("*l")
  if pidf then pidf:close() end
  if pid then
    sh("kill -TERM " .. pid .. " 2>/dev/null")
    for _ = 1, 250 do
      if not sh("kill -0 " .. pid .. " 2>/dev/null") then break end
      socket.sleep(0.02)
    end
    sh("kill -KILL " .. pid .. " 2>/dev/null")
  end
  sh("rm -rf " .. dir)
end

--- A free port on loopback.
M.free_port = free_port

--- Starts a fake server; opts (optional) overrides M.DEFAULTS: {max_streams = n,
--- keepalive_requests = n, keepalive_time = seconds}.
function M.start(opts)
  local cfg = {}
  for k, v in pairs(M.DEFAULTS) do cfg[k] = v end
  for k, v in pairs(opts or {}) do
    if M.DEFAULTS[k] == nil then error("fake.start: unknown option " .. tostring(k)) end
    cfg[k] = math.floor(assert(tonumber(v), k .. " must be a number"))
  end
  local dir = M.tmpdir()
  M.make_cert(dir)
  for _ = 1, 5 do
    local https_port, http_port = free_port(), free_port()
    local goaway_port, narrow_port = free_port(), free_port()
    local vars = {
      DIR = dir, MODULES = NGINX_MODULES, FAKE = M.spec_dir .. "/fake",
      HTTPS_PORT = https_port, HTTP_PORT = http_port, USER = M.is_root and "user root root;" or "",
      GOAWAY_PORT = goaway_port, NARROW_PORT = narrow_port, GOAWAY_AFTER = M.GOAWAY_AFTER,
      MAX_STREAMS = cfg.max_streams, KEEPALIVE_REQUESTS = cfg.keepalive_requests,
      KEEPALIVE_TIME = cfg.keepalive_time,
    }
    if M.run_nginx(dir, (CONF:gsub("%${([%w_]+)}", function(k) return tostring(vars[k]) end))) then
      local self = setmetatable({
        dir = dir, https_port = https_port, http_port = http_port,
        endpoint = "https://127.0.0.1:" .. https_port,
        http_endpoint = "http://127.0.0.1:" .. http_port,
        goaway_endpoint = "https://127.0.0.1:" .. goaway_port,
        narrow_endpoint = "https://127.0.0.1:" .. narrow_port,
        ca_file = dir .. "/cert.pem", settings = cfg,
      }, Server)
      for _ = 1, 250 do
        local ok = pcall(self.control, self, "GET", "ping")
        if ok then return self end
        socket.sleep(0.02)
      end
      self:stop()
    end
  end
  local f = io.open(dir .. "/error.log")
  error("the fake Vertex server did not start: " .. (f and f:read("*a") or "no log"))
end

--- A handle on a fake server started by another process (its fields: endpoint, http_endpoint,
--- ca_file, dir); stop() is left to the process that started it.
function M.attach(fields)
  local self = setmetatable({}, Server)
  for k, v in pairs(fields) do self[k] = v end
  self.stop = function() end
  return self
end

-- Sends a control request over plain HTTP; returns the decoded JSON answer.
function Server:control(method, path, body)
  local out = {}
  local payload = body ~= nil and cjson.encode(body) or ""
  local _, code = http.request {
    url = self.http_endpoint .. "/_control/" .. path,
    method = method,
    headers = { ["content-type"] = "application/json", ["content-length"] = tostring(#payload) },
    source = ltn12.source.string(payload),
    sink = ltn12.sink.table(out),
  }
  if code ~= 200 then error("control " .. path .. " answered " .. tostring(code)) end
  return cjson.decode(table.concat(out))
end

function Server:reset() return self:control("POST", "reset") end
function Server:create(spec) return self:control("POST", "operations", spec or {}) end
-- count operations sharing one spec, made in one control request: returns {count, first, last} (names)
function Server:create_many(count, spec)
  local body = { count = count }
  for k, v in pairs(spec or {}) do body[k] = v end
  return self:control("POST", "operations", body)
end
function Server:fault(f) return self:control("POST", "faults", f) end
function Server:clear_faults() return self:control("DELETE", "faults") end
function Server:tokens(list) return self:control("POST", "tokens", list) end
function Server:config(c) return self:control("POST", "config", c) end
function Server:stats() return self:control("GET", "stats") end
function Server:reset_log() return self:control("POST", "reset_log") end
function Server:oauth(settings) return self:control("POST", "oauth", settings) end

-- The request log, control requests excluded. opts.call keeps only one kind of call.
function Server:log(call)
  local all = self:control("GET", "log")
  if not call then return all end
  local out = {}
  for _, e in ipairs(all) do
    if e.call == call then out[#out + 1] = e end
  end
  return out
end

-- Distinct connections seen in the log.
function Server:connections()
  local seen, n = {}, 0
  for _, e in ipairs(self:log()) do
    if not seen[e.connection] then
      seen[e.connection] = true
      n = n + 1
    end
  end
  return n
end

-- The fake's error log (nginx's own notes: "concurrent streams exceeded", ...).
-- which: "error" (default), "narrow" or "goaway" (those two servers log at info level).
function Server:error_log(which)
  local f = io.open(self.dir .. "/" .. (which or "error") .. ".log")
  local text = f and f:read("*a") or ""
  if f then f:close() end
  return text
end

function Server:stop()
  if not self.dir then return end
  M.stop_nginx(self.dir)
  self.dir = nil
end

-- Hostile listeners of our own ---------------------------------------------------------------

--- A loopback port where the kernel completes TCP handshakes but nobody ever reads or answers:
--- a TLS client hangs in its handshake. Returns the listening socket (close() it) and its port.
function M.silent_listener()
  local s = assert(socket.bind("127.0.0.1", 0, 64))
  local _, port = s:getsockname()
  return s, tonumber(port)
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
  host = host or "127.0.0.1"
  local dir = M.tmpdir()
  write(dir .. "/raw.lua", RAW)
  write(dir .. "/answer", bytes)
  write(dir .. "/log", "")
  local lua = os.getenv("VERTEXOPS_LUA") or "lua5.4"
  for _ = 1, 5 do
    local port = free_port()
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
          local f = io.open(dir .. "/log", "rb")
          local text = f and f:read("*a") or ""
          if f then f:close() end
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
