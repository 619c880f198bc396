-- Shared by the specs: the fake server, an injected clock, and small assertions.
local fake = require "support.fake"

local M = { fake = fake }

M.NAME = "projects/test-project/locations/us-central1/operations/"
M.PARENT = "projects/test-project/locations/us-central1"

--- Starts the fake server for the enclosing describe block: started once (setup), stopped at the
--- end (teardown), its state reset before each test. Returns a box whose .server is the server.
function M.fake_server()
  local api = require("busted") -- the running spec's setup, teardown and before_each
  local box = {}
  api.setup(function() box.server = fake.start() end)
  api.teardown(function() box.server:stop() end)
  api.before_each(function() box.server:reset() end)
  return box
end

--- M.fake_server() and a client of it for each test (made before each, closed after each): returns
--- a box whose .server and .client are the running test's.
function M.fake_client()
  local api = require("busted")
  local box = M.fake_server()
  api.before_each(function() box.client = require("vertexops").client(M.opts(box.server)) end)
  api.after_each(function() box.client:close() end)
  return box
end

--- M.fake_server() and one client of it kept for the whole block (made before the first test,
--- closed at teardown): returns a box whose .server, .opts (M.opts of the server) and .client are
--- the running test's. For specs whose tests share a client's pools, as a program does.
function M.fake_kept_client()
  local api = require("busted")
  local box = M.fake_server()
  api.before_each(function()
    box.opts = M.opts(box.server)
    box.client = box.client or require("vertexops").client(box.opts)
  end)
  api.teardown(function() if box.client then box.client:close() end end)
  return box
end

--- The fake started with mtls = true (docs/fake.md: one more HTTPS server that requires a client
--- certificate) for the enclosing block, and a temporary folder holding a self-signed certificate
--- not from its client CA: returns a box whose .server, .dir, .other_cert and .other_key are set at
--- setup. Before each test the server is reset and operation "1" made; at teardown it stops and
--- the folder goes.
function M.mtls_server()
  local api = require("busted")
  local box = {}
  api.setup(function()
    box.server = fake.start { mtls = true }
    box.dir = fake.tmpdir()
    fake.make_cert(box.dir, "someone-else") -- self-signed: not from the fake's client CA
    box.other_cert, box.other_key = box.dir .. "/cert.pem", box.dir .. "/key.pem"
  end)
  api.teardown(function()
    box.server:stop()
    os.execute("rm -rf '" .. box.dir .. "'")
  end)
  api.before_each(function()
    box.server:reset()
    box.server:create { id = "1" }
  end)
  return box
end

--- Clients a test makes, closed after it (the latest first): returns keep(c), which keeps c and
--- returns it.
function M.closed_after_each()
  local api = require("busted")
  local kept = {}
  api.after_each(function()
    for i = #kept, 1, -1 do
      kept[i]:close()
      kept[i] = nil
    end
  end)
  return function(c)
    kept[#kept + 1] = c
    return c
  end
end

--- What the fake's quota let through, read off its log (server:log(...)): times, the accepted
--- requests' times (sorted); refused, how many it refused (429, quota_exceeded); by_name, the
--- accepted requests counted by operation name.
function M.quota_log(log)
  local q = { times = {}, refused = 0, by_name = {} }
  for _, e in ipairs(log) do
    if e.quota_exceeded then
      q.refused = q.refused + 1
    else
      q.times[#q.times + 1] = e.time
      q.by_name[e.name] = (q.by_name[e.name] or 0) + 1
    end
  end
  table.sort(q.times)
  return q
end

--- The most entries in any `per` seconds of the times given (a sliding window; sorts times).
function M.busiest(times, per)
  table.sort(times)
  local most, j = 0, 1
  for i = 1, #times do
    while times[i] - times[j] >= per do j = j + 1 end
    if i - j + 1 > most then most = i - j + 1 end
  end
  return most
end

--- Runs f with io.stderr replaced by a recorder (the library's warnings outside nginx go there);
--- returns what was written. f's error is raised again once io.stderr is back.
function M.stderr_of(f)
  local real, out = io.stderr, {}
  rawset(io, "stderr", { write = function(self, ...)
    for i = 1, select("#", ...) do out[#out + 1] = select(i, ...) end
    return self
  end })
  local ok, err = pcall(f)
  rawset(io, "stderr", real)
  assert(ok, err)
  return table.concat(out)
end

--- A harness for a credentials spec file: a fake server of its own (started at setup, reset before
--- each test, stopped at teardown) and a temporary folder. h.file(name, doc) writes a credentials
--- file and returns its path (h.files[name]); h.client(name, extra) is a client of the fake using
--- that file; h.raises(f, ...) is M.raises keeping each error's text (and its cause's) in h.errors,
--- for a spec that checks no secret reached an error.
function M.credentials_harness()
  local api = require("busted")
  local h = { files = {}, errors = {} }
  api.setup(function()
    h.server = fake.start()
    h.dir = fake.tmpdir()
  end)
  api.teardown(function()
    h.server:stop()
    os.execute("rm -rf '" .. h.dir .. "'")
  end)
  api.before_each(function() h.server:reset() end)
  function h.file(name, doc)
    h.files[name] = h.dir .. "/" .. name .. ".json"
    fake.write(h.files[name], require("cjson").encode(doc))
    return h.files[name]
  end
  function h.client(name, extra)
    local o = { endpoint = h.server.endpoint, ca_file = h.server.ca_file, credentials = h.files[name] }
    for k, v in pairs(extra or {}) do o[k] = v end
    return require("vertexops").client(o)
  end
  function h.raises(f, ...)
    local err = M.raises(f, ...)
    h.errors[#h.errors + 1] = tostring(err)
    if err.cause then h.errors[#h.errors + 1] = tostring(err.cause) end
    return err
  end
  return h
end

--- A clock and a sleep that only record: sleep(s) advances the clock by s without waiting.
function M.fake_time(start)
  local t = { now = start or 1000, delays = {} }
  t.clock = function() return t.now end
  t.sleep = function(s)
    t.delays[#t.delays + 1] = s
    t.now = t.now + s
  end
  return t
end

--- Virtual time shared with the fake server: clock() reads the server's virtual clock, sleep(s)
--- moves it, and the server's long-polls move it too. Nothing waits in real time.
function M.virtual_time(server, start)
  server:control("POST", "clock", { virtual = start or 1000 })
  local t = { delays = {} }
  t.clock = function() return server:control("POST", "clock", {}).now end
  t.sleep = function(s)
    t.delays[#t.delays + 1] = s
    server:control("POST", "clock", { advance = s })
  end
  return t
end

--- Options that reach the fake server over TLS with its certificate and token, plus the keys of
--- each further table given (later ones win).
function M.opts(server, ...)
  local o = { endpoint = server.endpoint, ca_file = server.ca_file, token = "test-token" }
  for i = 1, select("#", ...) do
    for k, v in pairs((select(i, ...)) or {}) do o[k] = v end
  end
  return o
end

--- Options with the injected clock and sleep of t (H.fake_time or H.virtual_time).
function M.timed_opts(server, t, extra)
  return M.opts(server, { clock = t.clock, sleep = t.sleep }, extra)
end

--- Runs f, expects it to raise a vertexops error; returns the error.
function M.raises(f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error, the call succeeded")
  assert(type(err) == "table" and err.tags, "expected a vertexops error object, got " .. tostring(err))
  return err
end

--- Calls f(...), which must raise a ValueError whose message names `about` (the argument or the
--- option it is about, a plain substring); returns the error.
function M.value_error(about, f, ...)
  local err = M.raises(f, ...)
  assert(M.tags(err) == "ValueError", "expected a ValueError, got " .. M.tags(err) .. ": " .. tostring(err.message))
  assert(tostring(err.message):find(about, 1, true), ("the ValueError does not name %q: %s"):format(about, err.message))
  return err
end

--- Lists the tags of err as one string, e.g. "ConnectionFailedError,ConnectionError".
function M.tags(err)
  return table.concat(err.tags, ",")
end

--- Runs a Lua chunk in a fresh interpreter (same LUA_PATH/LUA_CPATH) with extra environment
--- variables (an empty string unsets one). Returns its output (stdout and stderr), success.
function M.run_lua(code, env)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  local out, ok = M.run(M.lua_command() .. " " .. path, env)
  os.remove(path)
  return out, ok
end

--- The interpreter running the specs (scripts/test.sh exports VERTEXOPS_LUA).
function M.lua_command()
  return os.getenv("VERTEXOPS_LUA") or "lua5.4"
end

--- Runs a shell command with extra environment variables; returns output, success, exit code.
function M.run(cmd, env)
  local unset, set = {}, {}
  for k, v in pairs(env or {}) do
    if v == "" then
      unset[#unset + 1] = "-u " .. k
    else
      set[#set + 1] = k .. "='" .. v:gsub("'", "'\\''") .. "'"
    end
  end
  local envs = table.concat(unset, " ") .. " " .. table.concat(set, " ")
  local redirect = cmd:find(" 2>", 1, true) and "" or " 2>&1" -- stderr joins stdout unless cmd sends it elsewhere
  -- the exit status goes to a file of its own, not after the output: nothing the command leaves
  -- writing to stdout can push it out of place (once, under make asan, H.cli got no status)
  local status_file = os.tmpname()
  local p = io.popen("env " .. envs .. " " .. cmd .. redirect .. "; echo $? >'" .. status_file .. "'")
  local out = p:read("*a")
  local _, how, n = p:close()
  local code = tonumber((M.read(status_file, true)):match("^(%d+)"))
  os.remove(status_file)
  if not code then -- the shell itself did not get that far: say how it ended
    out = out .. ("\n[support.helper: no exit status from the shell running the command (it ended: %s %s)]\n")
      :format(tostring(how), tostring(n))
  end
  return out, code == 0, code
end

--- true when a command is on PATH (os.execute answers differently on 5.1 and 5.4).
function M.have(command)
  local _, ok = M.run("sh -c 'command -v " .. command .. "' >/dev/null")
  return ok
end

--- Wall time in specs (the developers' guide): a wall-clock bound only catches a hang or an
--- overshoot, so it is at least 5x the normal duration and at least 2 s above it, and a failure
--- prints what was measured. within(secs, normal, what) asserts secs is under that bound.
function M.wall_bound(normal)
  return math.max(5 * normal, normal + 2)
end

function M.within(secs, normal, what)
  local bound = M.wall_bound(normal)
  assert(secs < bound, ("%s took %.3f s: past %.1f s (normal %.3g s), a hang or an overshoot")
    :format(what or "it", secs, bound, normal))
end

--- Seconds a server holds an answer in the "never blocks" specs, and the bound a step of the
--- caller's loop stays under meanwhile: a blocked loop waits the whole hold, a free one
--- milliseconds (NOT_BLOCKED is 2 s above that and under HOLD).
M.HOLD = 3
M.NOT_BLOCKED = 2.5

function M.not_blocked(secs, what)
  assert(secs < M.NOT_BLOCKED, ("%s took %.3f s while the server held its answer %d s: the loop was blocked")
    :format(what or "a step", secs, M.HOLD))
end

--- The bytes of a file; a missing file raises, or gives "" when missing_ok.
function M.read(path, missing_ok)
  local s = fake.read(path)
  assert(s or missing_ok, "cannot open " .. path)
  return s or ""
end

--- Runs code in a child interpreter (killed after limit seconds, 60 by default). The chunk sees
--- `vertexops`, `O` (options reaching server) and `report(pcall(...))`, which prints one line:
--- "OUTCOME ok <name>" or "OUTCOME err <tags> <code>". Returns the outcome line, the whole output,
--- whether the child exited 0, and the seconds it took. For calls that could crash the interpreter.
function M.child_outcome(server, code, limit)
  local socket = require "socket"
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(([[
local vertexops = require "vertexops"
local O = { endpoint = %q, ca_file = %q, token = "test-token", retry = false, timeout = 20 }
local function report(ok, res)
  if ok then
    print("OUTCOME ok " .. tostring(type(res) == "table" and res.name or res))
  elseif vertexops.is_error(res) then
    print("OUTCOME err " .. table.concat(res.tags, ",") .. " " .. tostring(res.code))
  else
    print("OUTCOME raw " .. tostring(res))
  end
end
]]):format(server.endpoint, server.ca_file) .. code)
  f:close()
  local t0 = socket.gettime()
  local out, ok = M.run(("timeout -s KILL %d %s %s"):format(limit or 60, M.lua_command(), path))
  local elapsed = socket.gettime() - t0
  os.remove(path)
  return out:match("OUTCOME [^\n]*") or ("no outcome: " .. out:sub(1, 300)), out, ok, elapsed
end

--- Writes an authorized_user key file at path whose token endpoint is endpoint .. "/token", with
--- the client and refresh token the fake's OAuth endpoint accepts by default (test-client,
--- test-secret, test-refresh); fields of extra replace or add. Returns path.
function M.authorized_user(path, endpoint, extra)
  local doc = { type = "authorized_user", client_id = "test-client", client_secret = "test-secret",
                refresh_token = "test-refresh", token_uri = endpoint .. "/token" }
  for k, v in pairs(extra or {}) do doc[k] = v end
  fake.write(path, require("cjson").encode(doc))
  return path
end

--- The pid of the fake server's nginx worker (one worker: specs stop it to stall the service).
function M.fake_worker(server)
  local master = assert(M.read(server.dir .. "/nginx.pid"):match("%d+"), "no pid file of the fake")
  return assert((M.run("pgrep -P " .. master)):match("%d+"), "no worker of the fake")
end

--- Calls f(...): its error (nil when it returned) and the real seconds it took.
function M.timed(f, ...)
  local socket = require "socket"
  local t0 = socket.gettime()
  local ok, err = pcall(f, ...)
  return (not ok) and err or nil, socket.gettime() - t0
end

--- The environment bin/vertexops runs with against server (its token, its endpoint, no quota
--- project), with the fields of extra added.
function M.cli_env(server, extra)
  local e = { GOOGLE_OAUTH_ACCESS_TOKEN = "test-token", VERTEXOPS_ENDPOINT = server.endpoint,
              GOOGLE_CLOUD_QUOTA_PROJECT = "" }
  for k, v in pairs(extra or {}) do e[k] = v end
  return e
end

--- Runs `bin/vertexops <args> --ca-file <server's>` as a subprocess with M.cli_env(server, extra_env);
--- returns its stdout, its stderr and its exit code.
function M.cli(server, args, extra_env)
  local errf = os.tmpname()
  local out, _, code = M.run(M.lua_command() .. " bin/vertexops " .. args .. " --ca-file " .. server.ca_file
    .. " 2>" .. errf, M.cli_env(server, extra_env))
  local err = M.read(errf)
  os.remove(errf)
  return out, err, code
end

--- A stand-in for a file the CLI writes to: what was written is its .text.
function M.capture()
  local s = { text = "" }
  function s.write(self, ...)
    self.text = self.text .. table.concat({ ... })
    return self
  end
  function s.flush() end
  return s
end

--- Runs vertexops.cli.main(argv) in-process against server; returns its stdout, its stderr and
--- its status. ctx: fields of the context over the defaults (output captured, not a terminal,
--- options M.opts(server): the fake's endpoint, CA file and token).
function M.cli_main(server, argv, ctx)
  local out, err = M.capture(), M.capture()
  local c = { stdout = out, stderr = err, isatty = function() return false end, options = M.opts(server) }
  for k, v in pairs(ctx or {}) do c[k] = v end
  local status = require("vertexops.cli").main(argv, c)
  return out.text, err.text, status
end

--- How many connections the entries of a fake server's log (server:log(...)) came over.
function M.connections(log)
  local seen, n = {}, 0
  for _, e in ipairs(log) do
    if not seen[e.connection] then seen[e.connection], n = true, n + 1 end
  end
  return n
end

--- A port on loopback where nothing listens.
function M.closed_port()
  local socket = require "socket"
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

--- The state letter of process pid (/proc/PID/stat: R, S, Z, ...), nil when there is no such process.
function M.proc_state(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s:match("^%d+ %b() (%a)")
end

--- The state of a process sent SIGKILL: a kill is delivered asynchronously, so a process may still
--- show R for a moment after kill(2) returned. Polls for up to secs (default 2) until it is gone or
--- a zombie; returns the last state seen (nil: gone).
function M.killed_state(pid, secs)
  local core = require "vertexops.core"
  local until_t = core.clock() + (secs or 2)
  local s = M.proc_state(pid)
  while s ~= nil and s ~= "Z" and core.clock() < until_t do
    core.sleep(0.01)
    s = M.proc_state(pid)
  end
  return s
end

return M
