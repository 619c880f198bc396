-- Runs examples/openresty/nginx.conf for real (Debian's nginx + lua module, LuaJIT) in front of
-- a fake Vertex server, with this checkout's paths, a free port, the fake's certificate as
-- lua_ssl_trusted_certificate, and one more location, /_scenario, where specs run Lua inside the
-- content phase (spec/support/scenario.lua):
--
--   local openresty = require "support.openresty"
--   local app = openresty.start(fake_server)   -- app.port, app.dir, app.endpoint (https://localhost:PORT)
--   local out = app:run([[ return vertexops.get(args.name, nil, T.opts()) ]], { name = op.name })
--   -- out.ok, out.result (error objects as {tags, message, code, ...}), out.error (raised), out.stats
--   app:stop()
local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"
local cjson = require "cjson"
local fake = require "support.fake"

local M = {}

local function escape(p) return (p:gsub("%p", "%%%0")) end

local App = {}
App.__index = App

--- Starts the example's nginx in front of server; extra (optional) {env = {...}, conf = {{from, to}, ...}}.
function M.start(server, extra)
  extra = extra or {}
  local repo = fake.spec_dir:gsub("/spec$", "")
  local template = assert(fake.read(repo .. "/examples/openresty/nginx.conf"))
  local dir = fake.tmpdir()
  local function config(port)
    local conf = template
    local subs = {
      { "pid /tmp/vertexops-example-nginx.pid;", "pid " .. dir .. "/nginx.pid;" },
      { "error_log stderr warn;", "error_log " .. dir .. "/error.log warn;" .. (fake.is_root and "\nuser root root;" or "") },
      -- extra.reuseport: the kernel spreads connections over the workers (else one busy worker may
      -- accept them all)
      { "listen 127.0.0.1:8080 backlog=4096;",
        "listen 127.0.0.1:" .. port .. " backlog=4096" .. (extra.reuseport and " reuseport" or "") .. ";" },
      { '"/usr/local/share/lua/5.1/?.lua;/usr/local/share/lua/5.1/?/init.lua;/etc/nginx/lua/?.lua;;"',
        '"' .. repo .. "/lua/?.lua;" .. repo .. "/lua/?/init.lua;" .. repo .. "/examples/openresty/?.lua;"
          .. repo .. '/spec/?.lua;;"' },
      { '"/usr/local/lib/lua/5.1/?.so;;"', '"' .. repo .. '/build/jit/?.so;;"' },
      { "access_log off;", "access_log off;\n  client_body_temp_path " .. dir .. "/tmp;" },
      { "lua_ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt;",
        "lua_ssl_trusted_certificate " .. server.ca_file .. ";" },
      { "    location = /status {",
        "    location = /_scenario {\n      content_by_lua_block { require(\"support.scenario\").run() }\n    }\n"
          .. "    location = /status {" },
    }
    for _, s in ipairs(subs) do
      local n
      conf, n = conf:gsub(escape(s[1]), (s[2]:gsub("%%", "%%%%")))
      assert(n == 1, "the example nginx.conf no longer has: " .. s[1])
    end
    for _, s in ipairs(extra.conf or {}) do
      local n
      conf, n = conf:gsub(escape(s[1]), (s[2]:gsub("%%", "%%%%")))
      assert(n == 1, "the example nginx.conf has no: " .. s[1])
    end
    return conf
  end
  local endpoint = server.endpoint:gsub("127%.0%.0%.1", "localhost")
  local env = { VERTEXOPS_ENDPOINT = endpoint, GOOGLE_OAUTH_ACCESS_TOKEN = "test-token" }
  for k, v in pairs(extra.env or {}) do env[k] = v end
  -- a free port may be taken before nginx binds it (a server of a run beside this one, a client's
  -- ephemeral port): nginx then exits saying "Address already in use", and another port is tried
  local port, started
  for _ = 1, 5 do
    port = fake.free_port()
    fake.write(dir .. "/error.log", "")
    started = fake.run_nginx(dir, config(port), env)
    if started or not (fake.read(dir .. "/error.log") or ""):find("Address already in use", 1, true) then break end
  end
  local self = setmetatable({ dir = dir, port = port, endpoint = endpoint, server = server }, App)
  assert(started, "nginx did not start: " .. self:error_log())
  -- it answers in well under a second; the 30 s only catch a hang (a busy machine took seconds)
  local until_t = socket.gettime() + 30
  repeat
    local _, code = http.request("http://127.0.0.1:" .. port .. "/status")
    if code == 200 then return self end
    socket.sleep(0.02)
  until socket.gettime() > until_t
  error("nginx did not answer: " .. self:error_log())
end

function App:error_log()
  return fake.read(self.dir .. "/error.log") or "no log"
end

function App:url(path) return "http://127.0.0.1:" .. self.port .. path end

--- GET path on a new connection (Connection: close): body, status and headers.
function App:get(path)
  local out = {}
  local _, code, headers = http.request { url = self:url(path), sink = ltn12.sink.table(out),
    headers = { connection = "close" } }
  return table.concat(out), code, headers
end

--- Runs code (the body of a Lua function of vertexops, args, T) in the content phase of the app's
--- nginx; returns the decoded outcome {ok, result | error, stats}.
function App:run(code, args)
  local payload = cjson.encode { code = code, args = args or {} }
  local out = {}
  local _, status = http.request {
    url = self:url("/_scenario"), method = "POST",
    headers = { ["content-type"] = "application/json", ["content-length"] = tostring(#payload) },
    source = ltn12.source.string(payload), sink = ltn12.sink.table(out),
  }
  local body = table.concat(out)
  assert(status == 200, "scenario answered " .. tostring(status) .. ": " .. body .. "\n" .. self:error_log())
  local doc = cjson.decode(body)
  assert(doc.ok or doc.error, body)
  return doc
end

--- Runs code and returns its result; a scenario that raised fails the spec with what it raised.
function App:result(code, args)
  local doc = self:run(code, args)
  assert(doc.ok, "the scenario raised: " .. cjson.encode(doc.error))
  return doc.result, doc
end

function App:stop() fake.stop_nginx(self.dir) end

-- Whether pid is a live child of master (read from /proc/PID/stat, not a zombie). No `ps`: procps
-- is not in every Debian image.
local function child_of(master, pid)
  local stat = fake.read("/proc/" .. pid .. "/stat")
  local state, ppid = (stat or ""):match("^%d+ %b() (%a) (%d+)")
  return tonumber(ppid) == master and state ~= "Z"
end

-- The pids of nginx's master's children (its workers, and its cache helpers if any).
local function children(master)
  local pids = {}
  local f = io.popen("ls /proc")
  for pid in f:read("*a"):gmatch("%d+") do
    if child_of(master, pid) then pids[#pids + 1] = tonumber(pid) end
  end
  f:close()
  return pids
end

--- Reloads nginx as `nginx -s reload` does (SIGHUP to the master): new workers start and the old
--- ones end once idle. Returns when every old worker has ended (at most 30 s: a hang).
function App:reload()
  local master = assert(tonumber(fake.read(self.dir .. "/nginx.pid")), "no nginx.pid")
  local old = children(master)
  assert(#old > 0, "nginx has no workers")
  os.execute("kill -HUP " .. master)
  local until_t = socket.gettime() + 30
  repeat
    local left = 0
    for _, pid in ipairs(old) do
      if child_of(master, pid) then left = left + 1 end
    end
    if left == 0 then return end
    socket.sleep(0.02)
  until socket.gettime() > until_t
  error("nginx's old workers did not end after a reload: " .. self:error_log())
end

-- A location of the test's own: runs the example's /cancel and counts the worker that served it.
local PROBE = [[
    location = /probe {
      content_by_lua_block {
        ngx.shared.vertexops:incr("pid " .. ngx.worker.pid(), 1, 0)
        require("vertexops_app").cancel()
      }
    }
    location = /status {]]

--- A harness for a spec file of nginx reading credentials files: the fake (H.fake_server), a
--- temporary folder and an nginx. At setup h.server, h.dir and h.endpoint (the fake's endpoint
--- named localhost, as its certificate is) are set, then h.app = start(h): the spec writes its files
--- in h.dir and starts nginx. At teardown nginx stops and the folder goes. Before each test
--- h.server is the running test's.
function M.credentials_harness(start)
  local api = require "busted"
  local box = require("support.helper").fake_server()
  local h = {}
  api.setup(function()
    h.server = box.server
    h.dir = fake.tmpdir()
    h.endpoint = h.server.endpoint:gsub("127%.0%.0%.1", "localhost")
    h.app = start(h)
  end)
  api.teardown(function()
    if h.app then h.app:stop() end
    os.execute("rm -rf '" .. h.dir .. "'")
  end)
  api.before_each(function() h.server = box.server end)
  return h
end

--- The example with two workers (reuseport) and /probe: the example's /cancel, counting the worker
--- that served each request. env as M.start's; conf: more of its {from, to} substitutions.
function M.start_two_workers(server, env, conf)
  local subs = { { "worker_processes 1;", "worker_processes 2;" }, { "    location = /status {", PROBE } }
  for _, sub in ipairs(conf or {}) do subs[#subs + 1] = sub end
  return M.start(server, { env = env, conf = subs, reuseport = true })
end

--- Sends one /probe cancel for each of n operations numbered on from the operation name first
--- (build/bench/loadgen, all in flight together); returns how many were answered 200 and how
--- many workers served /probe.
function M.probe_load(app, first, n)
  local repo = fake.spec_dir:gsub("/spec$", "")
  local prefix, number = first:match("^(.*/operations/)(%d+)$")
  assert(os.execute("make -s -C " .. repo .. " build/bench/loadgen >/dev/null"))
  local p = assert(io.popen(("%s/build/bench/loadgen '%s' %d %d '' '%s' 1000"):format(repo,
    app:url("/probe?name=" .. prefix), tonumber(number), n, app:url("/status"))))
  local ok = 0
  for line in p:lines() do
    if line:match("^R 200 ") then ok = ok + 1 end
  end
  p:close()
  return ok, app:result([[
    local n = 0
    for _, k in ipairs(ngx.shared.vertexops:get_keys(0)) do
      if k:match("^pid ") then n = n + 1 end
    end
    return n]])
end

return M
