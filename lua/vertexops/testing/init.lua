-- vertexops.testing: a fake Vertex AI operations server for tests (docs/fake.md).
--
-- Starts nginx with Debian's lua module (libnginx-mod-http-lua) on free loopback ports, with a fresh
-- self-signed certificate, running vertexops.testing.server (the fake service, next to this file);
-- the returned object drives it over plain HTTP (/_control/, LuaSocket) and stops it.
--
--   local testing = require "vertexops.testing"
--   local server = testing.start()          -- nginx on free loopback ports, fresh TLS certificate
--   local op = server:create{done_after = 2} -- an operation; returns its JSON view
--   server:create_many(1000, {cancel = "late"})  -- 1,000 operations in one control request
--   server:fault{match = "cancel", status = 503, times = 2}
--   vertexops.cancel(op.name, nil, server:options())  -- endpoint, ca_file, token of this server
--   server:log("cancel")                    -- every cancel request: method, path, headers, ...
--   server:stop()                           -- always: nginx outlives the interpreter otherwise
--
-- Needs, at run time: nginx and its lua module (Debian: nginx libnginx-mod-http-lua), the openssl
-- command (certificates), LuaSocket (Debian: lua-socket) and lua-cjson. What is missing is named in
-- a ConnectionFailedError raised by start().
local errors = require "vertexops.errors"

local M = {}

-- The bearer token every fake server accepts (server:tokens() changes the list).
M.TOKEN = "test-token"
M.API_KEY = "test-api-key" -- the API key the server accepts until api_keys(list) replaces it

-- Requests per HTTP/2 connection on server.goaway_endpoint before nginx sends GOAWAY.
M.GOAWAY_AFTER = 5

-- The main endpoint behaves like Google's front ends (testing.start(opts) overrides any of these):
--   max_streams         SETTINGS_MAX_CONCURRENT_STREAMS (Google advertises 100): streams past it
--                       are refused, a client must queue or open another connection
--   keepalive_requests  requests on one connection before nginx sends GOAWAY (Google's front
--                       ends close long-lived connections from time to time)
--   keepalive_time      seconds a connection may live before GOAWAY (nginx keepalive_time)
M.DEFAULTS = { max_streams = 100, keepalive_requests = 5000, keepalive_time = 3600 }

-- start() options that are not M.DEFAULTS' limits: fixed ports, where nginx and its modules are.
local OTHER_OPTIONS = { port = "port", http_port = "port", nginx = "string", modules = "string",
                        control_token = "string", quota = "quota", mtls = "boolean" }

-- The control API's token: start{control_token = ...}, else $VERTEXOPS_FAKE_CONTROL_TOKEN, else none.
-- Sent by the driver as this header on every /_control/ request; nginx gets it in its environment.
M.CONTROL_HEADER = "X-Fake-Control-Token"
local CONTROL_ENV = "VERTEXOPS_FAKE_CONTROL_TOKEN"

local function raise_missing(what, message)
  errors.raise({ "ConnectionFailedError", "ConnectionError" }, "vertexops.testing: " .. message, { missing = what })
end

-- LuaSocket and lua-cjson, loaded when first needed (the module itself loads without them).
local socket, http, ltn12, cjson
local function deps()
  if socket then return end
  local ok, s = pcall(require, "socket")
  if not ok then
    raise_missing("luasocket", "LuaSocket is needed to drive the fake server (Debian: lua-socket; "
      .. "luarocks: luasocket): " .. tostring(s))
  end
  socket, http, ltn12 = s, require "socket.http", require "ltn12"
  cjson = require("cjson").new()
end

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Where this module lives: the lua/ root holding vertexops/testing/ (the checkout's lua/, or a
-- luarocks tree's share/lua/5.x), made absolute, so nginx finds vertexops.testing.server there.
-- Found from this file's own chunk name only, never from the current directory alone: nil when
-- the module was not loaded from a file (a static embedding preloads it from the executable:
-- its chunk name names a file of the build tree, not one this process loaded). Computed when
-- first needed (start(), or reading testing.lua_root), not at require: requiring spawns nothing.
local SOURCE = debug.getinfo(1, "S").source
local function module_root()
  if package.preload["vertexops.testing"] then return nil end -- from the executable, not a file
  local file = SOURCE:sub(1, 1) == "@" and SOURCE:sub(2) or nil
  local root = file and (file:match("^(.*)/vertexops/testing/init%.lua$") or file:match("^(.*)/vertexops/testing%.lua$")
    or ((file == "vertexops/testing/init.lua" or file == "vertexops/testing.lua") and "."))
  if not root then return nil end
  if root:sub(1, 1) ~= "/" then
    -- a relative chunk name: relative to the directory this process was in when it loaded us
    -- (the interpreter never changes it on its own); the file must be there, and be this one
    local p = io.popen("pwd -P 2>/dev/null")
    local cwd = p and p:read("*l")
    if p then p:close() end
    if not cwd or cwd:sub(1, 1) ~= "/" then return nil end
    root = root == "." and cwd or cwd .. "/" .. root:gsub("^%./", "")
  end
  local f = io.open(root .. "/" .. (file:match("(vertexops/testing/init%.lua)$") or "vertexops/testing.lua"), "rb")
  if not f then return nil end
  f:close()
  return root
end

local CONF = [[
worker_processes 1;
${USER}
env ${CONTROL_ENV};
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
  lua_package_path "${LUA_ROOT}/?.lua;;";
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
    ${SERVICE}
  }
  # GOAWAY: nginx ends an HTTP/2 connection with GOAWAY after keepalive_requests requests on it
  server {
    listen 127.0.0.1:${GOAWAY_PORT} ssl http2;
    keepalive_requests ${GOAWAY_AFTER};
    error_log ${DIR}/goaway.log info;
    ssl_certificate ${DIR}/cert.pem;
    ssl_certificate_key ${DIR}/key.pem;
    ${SERVICE}
  }
  # REFUSED_STREAM: nginx refuses (RST_STREAM) every stream opened past this limit
  server {
    listen 127.0.0.1:${NARROW_PORT} ssl http2;
    http2_max_concurrent_streams 1;
    http2_body_preread_size 0;  # a stream with a body sent before SETTINGS are acknowledged: refused too
    error_log ${DIR}/narrow.log info;  # "concurrent streams exceeded", "... before settings were acknowledged"
    ssl_certificate ${DIR}/cert.pem;
    ssl_certificate_key ${DIR}/key.pem;
    ${SERVICE}
  }
${MTLS_SERVER}
}
]]

-- start{mtls = true}: one more server that requires a client certificate signed by the fake's own
-- client CA (nginx's ssl_verify_client on): without one, or with another, nginx answers 400.
local MTLS_SERVER = [[
  server {
    listen 127.0.0.1:${MTLS_PORT} ssl http2;
    ssl_certificate ${DIR}/cert.pem;
    ssl_certificate_key ${DIR}/key.pem;
    ssl_client_certificate ${DIR}/client_ca.pem;
    ssl_verify_client on;
    ${SERVICE}
  }]]

-- What each server block runs: the fake service, vertexops.testing.server.
local SERVICE = [[location / {
      content_by_lua_block { require("vertexops.testing.server").handle() }
      log_by_lua_block { require("vertexops.testing.server").done() }
    }]]

local function free_port()
  deps()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

--- A free port on loopback.
M.free_port = free_port

-- n distinct free ports: each socket stays bound until all are picked (a port closed at once may
-- be handed out again by the very next bind, and one nginx then listens twice on it).
local function free_ports(n)
  deps()
  local socks, ports = {}, {}
  for i = 1, n do
    socks[i] = assert(socket.bind("127.0.0.1", 0))
    local _, port = socks[i]:getsockname()
    ports[i] = tonumber(port)
  end
  for i = 1, n do socks[i]:close() end
  return ports
end
M.free_ports = free_ports

--- Writes text to the file at path.
function M.write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end
local write = M.write

--- The bytes of the file at path; nil when it cannot be opened.
function M.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("*a")
  f:close()
  return text
end
local read_file = M.read

local function have_openssl()
  return sh("command -v openssl >/dev/null 2>&1")
end

--- Makes a self-signed certificate (EC P-256, for 127.0.0.1 and localhost) in dir: cert.pem, key.pem.
function M.make_cert(dir, cn)
  if not have_openssl() then raise_missing("openssl", "the openssl command is needed for certificates (Debian: openssl)") end
  if not sh(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
    .. "-keyout %s -out %s -days 2 -subj %s "
    .. "-addext subjectAltName=IP:127.0.0.1,DNS:localhost >/dev/null 2>&1"):format(shell_quote(dir .. "/key.pem"),
    shell_quote(dir .. "/cert.pem"), shell_quote("/CN=" .. (cn or "127.0.0.1")))) then
    errors.raise({ "ConnectionFailedError", "ConnectionError" }, "vertexops.testing: openssl could not make a certificate")
  end
end

--- Makes a client CA (dir/client_ca.pem, its key dir/client_ca.key) and a client certificate it signs
--- (dir/client.pem, key dir/client.key; EC P-256, CN cn or "fake-client"), for mutual TLS.
function M.make_client_cert(dir, cn)
  if not have_openssl() then raise_missing("openssl", "the openssl command is needed for certificates (Debian: openssl)") end
  local function q(name) return shell_quote(dir .. "/" .. name) end
  if not sh(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout %s -out %s "
    .. "-days 2 -subj /CN=fake-client-ca >/dev/null 2>&1 && "
    .. "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout %s -out %s -subj %s "
    .. ">/dev/null 2>&1 && openssl x509 -req -in %s -CA %s -CAkey %s -CAcreateserial -out %s -days 2 "
    .. ">/dev/null 2>&1"):format(q("client_ca.key"), q("client_ca.pem"), q("client.key"), q("client.csr"),
    shell_quote("/CN=" .. (cn or "fake-client")), q("client.csr"), q("client_ca.pem"), q("client_ca.key"),
    q("client.pem"))) then
    errors.raise({ "ConnectionFailedError", "ConnectionError" }, "vertexops.testing: openssl could not make a client certificate")
  end
end

--- Makes an RSA private key (PEM) at dir/key.pem and its public key at dir/pub.pem; returns the PEM
--- (for service-account key files of tests).
function M.make_rsa_key(dir)
  if not have_openssl() then raise_missing("openssl", "the openssl command is needed for keys (Debian: openssl)") end
  local key, pub = shell_quote(dir .. "/key.pem"), shell_quote(dir .. "/pub.pem")
  if not sh(("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s 2>/dev/null "
    .. "&& openssl pkey -in %s -pubout -out %s"):format(key, key, pub)) then
    errors.raise({ "ConnectionFailedError", "ConnectionError" }, "vertexops.testing: openssl could not make a key")
  end
  return read_file(dir .. "/key.pem")
end

--- A fresh private directory (mode 0700, with a tmp/ inside) for an nginx of our own: made by
--- mkdtemp (`mktemp -d`), which creates a new name atomically and refuses one that exists,
--- a planted symlink included; then checked to be a directory of ours and no symlink.
function M.tmpdir()
  local p = io.popen([[d=$(umask 077 && mktemp -d /tmp/vertexops.XXXXXXXXXX) && [ -d "$d" ] && [ ! -L "$d" ] ]]
    .. [[&& [ -O "$d" ] && mkdir -m 700 -- "$d/tmp" && printf '%s\n' "$d"]])
  local dir = p and p:read("*l")
  if p then p:close() end
  if not dir or not dir:match("^/tmp/vertexops%.[%w]+$") then
    errors.raise({ "ConnectionFailedError", "ConnectionError" },
      "vertexops.testing: cannot make a private temporary directory (mktemp -d in /tmp)")
  end
  return dir
end

-- Removes dir and everything in it (it never follows a symlink out of it).
local function remove_dir(dir)
  sh("rm -rf -- " .. shell_quote(dir))
end

-- The client_email of the key files make_key_file writes.
M.KEY_FILE_EMAIL = "fake-robot@test-project.iam.gserviceaccount.com"

--- make_key_file(path, server) -> path: writes a service-account key file for the fake server
--- (a table with .endpoint, e.g. testing.start()'s, or its endpoint) at path: type service_account,
--- a fresh RSA key, client_email testing.KEY_FILE_EMAIL, project_id test-project, and token_uri
--- the server's /token on localhost (a host name: inside nginx an https URL by IP address is
--- refused). Given the server itself (not its endpoint), it registers the public key there
--- (server:key): the fake then accepts the file's self-signed JWTs as bearer tokens. Mode 0644: a
--- key the fake alone accepts, readable by nginx workers that run as another user (nobody,
--- www-data); a real key file wants 0640 and nginx's group instead.
function M.make_key_file(path, server)
  local endpoint = type(server) == "table" and server.endpoint or server
  if type(path) ~= "string" or type(endpoint) ~= "string" then
    errors.raise("TypeError", "vertexops.testing.make_key_file: want (path, server), got ("
      .. type(path) .. ", " .. type(endpoint) .. ")")
  end
  local port = endpoint:match("^https://[^/]+:(%d+)/?$")
  if not port then
    errors.raise("ValueError", "vertexops.testing.make_key_file: not a fake server's endpoint: " .. endpoint)
  end
  deps()
  local dir = M.tmpdir()
  local ok, pem = pcall(M.make_rsa_key, dir)
  local pub = ok and read_file(dir .. "/pub.pem")
  remove_dir(dir)
  if not ok then error(pem, 0) end
  -- the fake learns the public key: it accepts the file's self-signed JWTs (docs/fake.md)
  if type(server) == "table" and server.control then
    server:key { client_email = M.KEY_FILE_EMAIL, key_id = "fake-key-1", public_key = pub }
  end
  local text = cjson.encode {
    type = "service_account", project_id = "test-project", private_key_id = "fake-key-1",
    private_key = pem, client_email = M.KEY_FILE_EMAIL, client_id = "100000000000000000001",
    token_uri = "https://localhost:" .. port .. "/token",
  }
  local f, err = io.open(path, "w")
  if not f then errors.raise("ValueError", "vertexops.testing.make_key_file: cannot write " .. path .. ": " .. tostring(err)) end
  f:write(text, "\n")
  f:close()
  sh("chmod 644 " .. shell_quote(path))
  return path
end

-- true when running as root (nginx then needs `user root root;` to read files in /tmp as root):
-- the effective uid, from /proc/self/status (no program run), else `id -u`; asked when first needed.
local euid
local function is_root()
  if euid == nil then
    local status = read_file("/proc/self/status") or ""
    euid = status:match("\nUid:%s*%d+%s+(%d+)")
    if not euid then
      local p = io.popen("id -u 2>/dev/null")
      euid = p and p:read("*l") or ""
      if p then p:close() end
    end
  end
  return euid == "0"
end

-- testing.is_root and testing.lua_root: computed on first read (requiring the module runs nothing)
local LAZY = {
  is_root = is_root,
  lua_root = module_root,
}
setmetatable(M, { __index = function(t, k)
  local f = LAZY[k]
  if not f then return nil end
  local v = f()
  if v ~= nil then rawset(t, k, v) end
  return v
end })

-- The nginx binary: opts.nginx, $VERTEXOPS_NGINX, nginx on PATH, else Debian's /usr/sbin/nginx.
local function find_nginx(given)
  local named = given or os.getenv("VERTEXOPS_NGINX")
  if named and named ~= "" then
    if sh("test -x " .. shell_quote(named)) then return named end
    raise_missing("nginx", "nginx not found at " .. named)
  end
  local p = io.popen("command -v nginx 2>/dev/null")
  local found = p and p:read("*l")
  if p then p:close() end
  if found and found ~= "" then return found end
  for _, path in ipairs { "/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx" } do
    if sh("test -x " .. shell_quote(path)) then return path end
  end
  raise_missing("nginx", "nginx is needed to run the fake server and was not found on PATH nor in /usr/sbin "
    .. "(Debian: apt install nginx libnginx-mod-http-lua; or set $VERTEXOPS_NGINX)")
end

-- The directory of nginx's dynamic modules holding the lua module and its NDK.
local function find_modules(given)
  local dir = given or os.getenv("VERTEXOPS_NGINX_MODULES") or "/usr/lib/nginx/modules"
  for _, so in ipairs { "ngx_http_lua_module.so", "ndk_http_module.so" } do
    if not sh("test -f " .. shell_quote(dir .. "/" .. so)) then
      raise_missing("libnginx-mod-http-lua", ("nginx's lua module is needed to run the fake server: no %s in %s "
        .. "(Debian: apt install libnginx-mod-http-lua; or set $VERTEXOPS_NGINX_MODULES)"):format(so, dir))
    end
  end
  return dir
end

--- Runs nginx with conf (text) in dir, with the environment variables in env. Returns success.
--- (opts.nginx: the binary, else as start() finds it.)
function M.run_nginx(dir, conf, env, nginx)
  write(dir .. "/nginx.conf", conf)
  local prefix = {}
  for k, v in pairs(env or {}) do prefix[#prefix + 1] = k .. "=" .. shell_quote(v) end
  local log = shell_quote(dir .. "/error.log")
  return sh(("env %s %s -p %s -c %s -e %s 2>>%s"):format(table.concat(prefix, " "), shell_quote(nginx or find_nginx()),
    shell_quote(dir .. "/"), shell_quote(dir .. "/nginx.conf"), log, log))
end

-- Whether process pid has ended: gone, or a zombie (a daemonized nginx's parent is init, which may
-- reap it late; kill -0 still succeeds on a zombie).
local function ended(pid)
  local stat = read_file("/proc/" .. pid .. "/stat")
  if stat then return stat:match("^%d+ %b() (%a)") == "Z" end
  return not sh("kill -0 " .. pid .. " 2>/dev/null")
end

-- Stops the nginx whose pid file is in dir (TERM, then KILL after 5 s).

local function kill_nginx(dir)
  deps()
  local pid = (read_file(dir .. "/nginx.pid") or ""):match("^%s*(%d+)%s*$")
  if pid then
    sh("kill -TERM " .. pid .. " 2>/dev/null")
    for _ = 1, 250 do
      if ended(pid) then break end
      socket.sleep(0.02)
    end
    sh("kill -KILL " .. pid .. " 2>/dev/null")
  end
end

--- Stops the nginx whose pid file is in dir, and removes dir.
function M.stop_nginx(dir)
  if type(dir) ~= "string" or dir:sub(1, 1) ~= "/" then
    errors.raise(type(dir) ~= "string" and "TypeError" or "ValueError",
      "vertexops.testing.stop_nginx: dir must be an absolute path, got " .. tostring(dir))
  end
  kill_nginx(dir)
  remove_dir(dir)
end

-- The modules of the fake service, the files nginx loads from the lua/ root (vertexops.testing.server
-- requires the others): every one must be there (the rockspec installs each; spec/12_fake_testing_spec.lua checks the
-- list against lua/vertexops/testing/ and the rockspec).
M.SERVICE_MODULES = { "server", "state", "check", "reply", "model", "jobs", "faults", "tokens", "sts", "log",
  "control", "quota", "aws", "jwt" }

-- Raises ConnectionFailedError (missing = the first module not found) unless every module of the
-- service is a file under root.
local function check_service(root)
  for _, name in ipairs(M.SERVICE_MODULES) do
    local file = "vertexops/testing/" .. name .. ".lua"
    if not (root and read_file(root .. "/" .. file)) then
      raise_missing("vertexops.testing." .. name, "cannot find " .. file .. " "
        .. (root and "under " .. root or "beside vertexops.testing: it was not loaded from a file (a static "
        .. "embedding preloads it from the executable); nginx needs the module files, e.g. from the rock")
        .. " (vertexops.testing must be loaded from files)")
    end
  end
end

local Server = {}
Server.__index = Server
M.Server = Server

local function check_options(opts)
  if opts ~= nil and type(opts) ~= "table" then
    errors.raise("TypeError", "vertexops.testing.start: opts must be a table, got " .. type(opts))
  end
  local cfg, other = {}, {}
  for k, v in pairs(M.DEFAULTS) do cfg[k] = v end
  for k, v in pairs(opts or {}) do
    local kind = OTHER_OPTIONS[k]
    if M.DEFAULTS[k] == nil and not kind then
      errors.raise("ValueError", "vertexops.testing.start: unknown option " .. tostring(k))
    end
    if kind == "quota" then
      if type(v) ~= "table" then
        errors.raise("TypeError", "vertexops.testing.start: quota must be a table {requests = n, per = seconds}, got "
          .. type(v))
      end
      local n, per = v.requests, v.per
      if type(n) ~= "number" or (per ~= nil and type(per) ~= "number") then
        errors.raise("TypeError", "vertexops.testing.start: quota.requests and quota.per must be numbers")
      end
      if n ~= math.floor(n) or n < 1 or n > 1e6 or (per and not (per >= 0.001 and per <= 86400)) then
        errors.raise("ValueError", "vertexops.testing.start: quota.requests must be an integer from 1 to 1e6 "
          .. "and quota.per seconds from 0.001 to 86400")
      end
      other.quota = { requests = n, per = per }
    elseif kind == "boolean" then
      if type(v) ~= "boolean" then
        errors.raise("TypeError", ("vertexops.testing.start: %s must be a boolean, got %s"):format(k, type(v)))
      end
      other[k] = v
    elseif kind == "string" then
      if type(v) ~= "string" then
        errors.raise("TypeError", ("vertexops.testing.start: %s must be a string, got %s"):format(k, type(v)))
      end
      other[k] = v
    else
      local n = tonumber(v)
      if n == nil then
        errors.raise("TypeError", ("vertexops.testing.start: %s must be a number, got %s"):format(k, type(v)))
      end
      n = math.floor(n)
      if kind == "port" and (n < 1 or n > 65535) then
        errors.raise("ValueError", ("vertexops.testing.start: %s must be a port (1 to 65535), got %s"):format(k, tostring(v)))
      end
      if kind then other[k] = n else cfg[k] = n end
    end
  end
  return cfg, other
end

--- Starts a fake server. opts (optional): the limits of M.DEFAULTS (max_streams, keepalive_requests,
--- keepalive_time), port / http_port (fixed loopback ports for the HTTPS and the plain HTTP
--- endpoints; free ones by default), nginx (the binary), modules (nginx's module directory),
--- quota ({requests = n, per = seconds}: a request quota per project and region, as server:quota
--- sets it, kept by reset()), mtls (true: one more HTTPS server, mtls_endpoint, that requires a client
--- certificate signed by the fake's client CA: client_cert, client_key, client_ca).
--- Returns the server: endpoint (HTTPS, HTTP/2), http_endpoint (plain HTTP/1.1; control requests
--- go there), control_url, ca_file, goaway_endpoint, narrow_endpoint, dir, settings, and the
--- methods below. Raises TypeError / ValueError for bad options, ConnectionFailedError when
--- something it needs is missing (field `missing`) or nginx does not start.
function M.start(opts)
  local cfg, other = check_options(opts)
  local root = M.lua_root
  check_service(root)
  deps()
  local nginx = find_nginx(other.nginx)
  local modules = find_modules(other.modules)
  local token = other.control_token or os.getenv(CONTROL_ENV)
  if token == "" then token = nil end
  if token and (#token > 256 or not token:match("^[!-~]+$")) then
    errors.raise("ValueError", "vertexops.testing.start: control_token must be 1 to 256 visible ASCII characters")
  end
  local dir = M.tmpdir()
  local ok, err = pcall(M.make_cert, dir)
  if ok and other.mtls then ok, err = pcall(M.make_client_cert, dir) end
  if not ok then
    remove_dir(dir)
    error(err, 0)
  end
  local fixed = other.port or other.http_port
  local last_log
  for _ = 1, fixed and 1 or 5 do
    local ports = free_ports(other.mtls and 5 or 4)
    local https_port, http_port = other.port or ports[1], other.http_port or ports[2]
    local goaway_port, narrow_port = ports[3], ports[4]
    local vars = {
      DIR = dir, MODULES = modules, LUA_ROOT = root, CONTROL_ENV = CONTROL_ENV,
      HTTPS_PORT = https_port, HTTP_PORT = http_port, USER = M.is_root and "user root root;" or "",
      GOAWAY_PORT = goaway_port, NARROW_PORT = narrow_port, GOAWAY_AFTER = M.GOAWAY_AFTER,
      MAX_STREAMS = cfg.max_streams, KEEPALIVE_REQUESTS = cfg.keepalive_requests,
      KEEPALIVE_TIME = cfg.keepalive_time, SERVICE = SERVICE, MTLS_PORT = ports[5],
    }
    vars.MTLS_SERVER = other.mtls and MTLS_SERVER:gsub("%${([%w_]+)}", function(k) return tostring(vars[k]) end) or ""
    local conf = CONF:gsub("%${([%w_]+)}", function(k) return tostring(vars[k]) end)
    if M.run_nginx(dir, conf, { [CONTROL_ENV] = token or "" }, nginx) then
      local self = setmetatable({
        dir = dir, https_port = https_port, http_port = http_port,
        endpoint = "https://127.0.0.1:" .. https_port,
        http_endpoint = "http://127.0.0.1:" .. http_port,
        control_url = "http://127.0.0.1:" .. http_port .. "/_control/",
        goaway_endpoint = "https://127.0.0.1:" .. goaway_port,
        narrow_endpoint = "https://127.0.0.1:" .. narrow_port,
        ca_file = dir .. "/cert.pem", settings = cfg, token = M.TOKEN, control_token = token,
      }, Server)
      if other.mtls then
        self.mtls_port = ports[5]
        self.mtls_endpoint = "https://127.0.0.1:" .. ports[5]
        self.client_cert, self.client_key = dir .. "/client.pem", dir .. "/client.key"
        self.client_ca = dir .. "/client_ca.pem"
      end
      for _ = 1, 250 do
        local pinged, perr = pcall(self.control, self, "GET", "ping")
        if pinged and other.quota then
          self.start_quota = other.quota
          local set, qerr = pcall(self.quota, self, other.quota)
          if not set then
            M.stop_nginx(dir)
            errors.raise(errors.is(qerr, "HttpError") and "ValueError" or "TypeError",
              "vertexops.testing.start: quota: " .. tostring(qerr and qerr.message or qerr))
          end
        end
        if pinged then return self end
        if errors.is(perr, "HttpError") then -- nginx answers, the fake does not work: its log tells why
          last_log = self:error_log()
          M.stop_nginx(dir)
          errors.raise({ "ConnectionFailedError", "ConnectionError" },
            "vertexops.testing: the fake Vertex server does not answer: " .. perr.message .. "\n" .. last_log)
        end
        socket.sleep(0.02)
      end
      last_log = self:error_log()
      kill_nginx(dir) -- the directory and its certificate serve the next try
    else
      last_log = read_file(dir .. "/error.log")
    end
  end
  remove_dir(dir)
  errors.raise({ "ConnectionFailedError", "ConnectionError" },
    "vertexops.testing: the fake Vertex server did not start: " .. (last_log or "no log"))
end

--- A handle on a fake server started by another process (its fields: endpoint, http_endpoint,
--- ca_file, dir); stop() is left to the process that started it.
function M.attach(fields)
  local self = setmetatable({}, Server)
  for k, v in pairs(fields) do
    if Server[k] == nil then self[k] = v end -- data only: a field never hides a method
  end
  self.control_url = self.control_url or (self.http_endpoint and self.http_endpoint .. "/_control/")
  self.stop = function() end
  return self
end

--- Sends a control request over plain HTTP; returns the decoded JSON answer. Raises
--- ConnectionFailedError when the server cannot be reached, HttpError (field status) when it
--- refuses the request.
function Server:control(method, path, body)
  deps()
  local out = {}
  local payload = body ~= nil and cjson.encode(body) or ""
  local headers = { ["content-type"] = "application/json", ["content-length"] = tostring(#payload) }
  if self.control_token then headers[M.CONTROL_HEADER:lower()] = self.control_token end
  local _, code = http.request {
    url = self.http_endpoint .. "/_control/" .. path,
    method = method,
    headers = headers,
    source = ltn12.source.string(payload),
    sink = ltn12.sink.table(out),
  }
  if type(code) ~= "number" then
    errors.raise({ "ConnectionFailedError", "ConnectionError" },
      ("vertexops.testing: control %s %s: %s"):format(method, path, tostring(code)))
  end
  if code ~= 200 then
    errors.raise("HttpError", ("vertexops.testing: control %s %s answered %d: %s"):format(method, path, code,
      table.concat(out)), { code = code })
  end
  return cjson.decode(table.concat(out))
end

--- Forgets operations, the log, faults, tokens, the virtual clock, config, oauth settings and the
--- quota (except the one start{quota} gave: set again, its windows empty).
function Server:reset()
  local r = self:control("POST", "reset")
  if self.start_quota then self:quota(self.start_quota) end
  return r
end
--- Makes an operation (spec: docs/fake.md); returns its JSON view (name, metadata, done, ...).
function Server:create(spec) return self:control("POST", "operations", spec or {}) end
--- count operations sharing one spec, made in one control request: returns {count, first, last} (names).
--- A job (docs/fake.md, "Jobs"): spec {name | project, location, collection, id; done_after, outcome,
--- error, done, cancel, cancel_after}; returns the job as GET shows it.
function Server:create_job(spec) return self:control("POST", "jobs", spec or {}) end

function Server:create_many(count, spec)
  local body = { count = count }
  for k, v in pairs(spec or {}) do body[k] = v end
  return self:control("POST", "operations", body)
end
--- Queues one fault, or a list of faults (docs/fake.md).
function Server:fault(f) return self:control("POST", "faults", f) end
--- Drops the faults not taken yet.
function Server:clear_faults() return self:control("DELETE", "faults") end
--- The bearer tokens accepted from now on (a list of strings; replaces "test-token").
function Server:tokens(list) return self:control("POST", "tokens", list) end
--- The API keys accepted in x-goog-api-key from now on (replaces the list; default {"test-api-key"}).
function Server:api_keys(list) return self:control("POST", "api_keys", list) end
--- A public key ({client_email, key_id, public_key = PEM}) whose self-signed JWTs the fake accepts
--- as bearer tokens; kept across reset() (docs/fake.md, "Self-signed JWTs").
function Server:key(k) return self:control("POST", "keys", k) end
--- {nolog = bool, hold = seconds}: count requests without logging them; hold every answer.
function Server:config(c) return self:control("POST", "config", c) end
--- A request quota per project and region, as Google's (docs/fake.md, "Quota"): {requests = n,
--- per = seconds (default 60)} accepts at most n of Vertex's calls in any per seconds for one
--- project and location and answers the others 429 RESOURCE_EXHAUSTED (QuotaFailure, RetryInfo);
--- false or {off = true} takes it away; nil reads it. Returns {requests, per, exceeded} or {off = true}.
function Server:quota(q)
  if q == nil then return self:control("GET", "quota") end
  if q == false then q = { off = true } end
  return self:control("POST", "quota", q)
end
--- {requests, connections, log_dropped, quota_exceeded} since the start or the last reset / reset_log.
function Server:stats() return self:control("GET", "stats") end
--- Empties the request log and the counters (operations stay).
function Server:reset_log() return self:control("POST", "reset_log") end
--- What the token endpoint accepts: client_id, client_secret, refresh_token, client_email,
--- expires_in, expires_in_string.
function Server:oauth(settings) return self:control("POST", "oauth", settings) end
--- What Google's STS, IAM Credentials and the subject-token URL accept and answer (docs/fake.md,
--- "STS, IAM Credentials, subject tokens"): subject_token, subject_token_format, subject_token_field,
--- subject_token_headers, subject_token_expired, audience, client_id, client_secret, expires_in,
--- max_lifetime, service_account.
function Server:sts(settings) return self:control("POST", "sts", settings) end
--- What the AWS instance metadata service answers (docs/fake.md, "AWS instance metadata"): zone,
--- role, access_key_id, secret_access_key, token, imdsv2, session_expired.
function Server:aws(settings) return self:control("POST", "aws", settings) end

--- The server's clock: body {virtual = t} switches to a virtual clock at t (seconds), {advance = s}
--- moves it, {real = true} returns to real time, {} reads it. Returns {now = t}.
function Server:clock(body) return self:control("POST", "clock", body or {}) end

--- The server's time now (virtual or real), in seconds.
function Server:now() return self:clock({}).now end

--- Moves the virtual clock by seconds; returns the new time.
function Server:advance(seconds) return self:clock({ advance = seconds }).now end

--- Switches the server to a virtual clock at start (default 1000) and returns
--- {clock = function, sleep = function, delays = {...}}: pass clock and sleep as vertexops options
--- and a call's waits and retry delays move the server's clock instead of taking time (sleep(s)
--- records s in delays and advances the clock; long-polls jump to their end).
function Server:virtual_time(start)
  self:clock({ virtual = start or 1000 })
  local t = { delays = {} }
  t.clock = function() return self:now() end
  t.sleep = function(s)
    t.delays[#t.delays + 1] = s
    self:advance(s)
  end
  return t
end

--- Options reaching this server: endpoint, ca_file, token, plus the keys of extra.
function Server:options(extra)
  local o = { endpoint = self.endpoint, ca_file = self.ca_file, token = M.TOKEN }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

--- The request log, control requests excluded; call (optional) keeps one kind of call
--- ("cancel", "get", "delete", "list", "wait", "token", "metadata", "sts", "iam", "subject_token",
--- "aws_token", "aws_metadata").
function Server:log(call)
  local all = self:control("GET", "log")
  if not call then return all end
  local out = {}
  for _, e in ipairs(all) do
    if e.call == call then out[#out + 1] = e end
  end
  return out
end

--- Distinct connections seen in the log.
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

local LOGS = { error = true, narrow = true, goaway = true }

--- The fake's error log (nginx's own notes: "concurrent streams exceeded", ...).
--- which: "error" (default), "narrow" or "goaway" (those two servers log at info level); any
--- other value is refused (TypeError, ValueError) before a file is opened.
function Server:error_log(which)
  which = which == nil and "error" or which
  if type(which) ~= "string" then
    errors.raise("TypeError", "vertexops.testing: error_log(which): which must be a string, got " .. type(which))
  end
  if not LOGS[which] then
    errors.raise("ValueError", ("vertexops.testing: error_log(which): which must be \"error\", \"narrow\" or "
      .. "\"goaway\", got %q"):format(which))
  end
  return read_file(self.dir .. "/" .. which .. ".log") or ""
end

--- Stops nginx and removes the server's directory (certificate included). Idempotent.
function Server:stop()
  if not self.dir then return end
  M.stop_nginx(self.dir)
  self.dir = nil
end

--- A loopback port where the kernel completes TCP handshakes but nobody ever reads or answers:
--- a TLS client hangs in its handshake. Returns the listening socket (close() it) and its port.
function M.silent_listener()
  deps()
  local s = assert(socket.bind("127.0.0.1", 0, 64))
  local _, port = s:getsockname()
  return s, tonumber(port)
end

return M
