-- Starts, drives and stops the fake Vertex server (spec/fake/) for specs, the demo and benchmarks.
--
--   local fake = require "support.fake"
--   local server = fake.start()          -- nginx on free loopback ports, fresh TLS certificate
--   server:create{done_after = 2}        -- an operation; returns its JSON view
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
  keepalive_requests 10000000;
  keepalive_timeout 600s;
  http2_max_concurrent_streams 1024;
  lua_socket_log_errors off;
  server {
    listen 127.0.0.1:${HTTPS_PORT} ssl http2;
    listen 127.0.0.1:${HTTP_PORT};
    ssl_certificate ${DIR}/cert.pem;
    ssl_certificate_key ${DIR}/key.pem;
    location / {
      content_by_lua_block { require("vertex").handle() }
      log_by_lua_block { require("vertex").done() }
    }
  }
}
]]

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

function M.start()
  local dir = M.tmpdir()
  M.make_cert(dir)
  for _ = 1, 5 do
    local https_port, http_port = free_port(), free_port()
    local vars = {
      DIR = dir, MODULES = NGINX_MODULES, FAKE = M.spec_dir .. "/fake",
      HTTPS_PORT = https_port, HTTP_PORT = http_port, USER = M.is_root and "user root root;" or "",
    }
    if M.run_nginx(dir, (CONF:gsub("%${([%w_]+)}", function(k) return tostring(vars[k]) end))) then
      local self = setmetatable({
        dir = dir, https_port = https_port, http_port = http_port,
        endpoint = "https://127.0.0.1:" .. https_port,
        http_endpoint = "http://127.0.0.1:" .. http_port,
        ca_file = dir .. "/cert.pem",
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
function Server:fault(f) return self:control("POST", "faults", f) end
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

function Server:stop()
  if not self.dir then return end
  M.stop_nginx(self.dir)
  self.dir = nil
end

return M
