-- vertexops.testing, the fake Vertex server shipped for users' own tests (docs/fake.md), and the
-- command line's `vertexops fake`.
local vertexops = require "vertexops"
local testing = require "vertexops.testing"
local cjson = require "cjson"
local socket = require "socket"
local H = require "support.helper"
local unpack = table.unpack or unpack -- luacheck: ignore 143

local function exists(path)
  local _, ok = H.run("test -e '" .. path .. "'")
  return ok
end

-- a process that has not ended (a zombie has: a daemonized nginx waits for init to reap it)
local function alive(pid)
  local stat = H.read("/proc/" .. pid .. "/stat", true)
  return stat ~= "" and stat:match("^%d+ %b() (%a)") ~= "Z"
end

-- waits until f() is true (at most seconds); returns whether it became true
local function eventually(f, seconds)
  local stop = socket.gettime() + (seconds or 10)
  while socket.gettime() < stop do
    if f() then return true end
    socket.sleep(0.05)
  end
  return f()
end

local function read(path) return H.read(path, true) end

describe("vertexops.testing", function()
  local server
  setup(function() server = testing.start() end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  it("writes a '/' of its JSON as Google does, unescaped (a name, a type URL)", function()
    server:create_many(2, {})
    local out = H.run(("curl -s --cacert '%s' -H 'Authorization: Bearer test-token' '%s/v1beta1/%s/operations'")
      :format(server.ca_file, server.endpoint, H.PARENT))
    assert.matches('"name":"' .. H.PARENT:gsub("%p", "%%%0") .. '/operations/%d+"', out)
    assert.matches('"@type":"type.googleapis.com/google.cloud.aiplatform.', out, 1, true)
    assert.is_nil(out:find("\\/", 1, true), out)
    assert.equal(2, #cjson.decode(out).operations)
  end)

  it("starts a server whose options() reach it: a call shows in its log", function()
    local op = server:create { done = true }
    local got = vertexops.get(op.name, nil, server:options())
    assert.is_true(got.done)
    local log = server:log("get")
    assert.are.equal(1, #log)
    assert.are.equal("Bearer " .. testing.TOKEN, log[1].headers.authorization)
    assert.matches("^http://127%.0%.0%.1:%d+/_control/$", server.control_url)
  end)

  it("serves the request's fault: a 503 then the operation", function()
    local op = server:create {}
    server:fault { match = "cancel", status = 503 }
    local sleep = H.fake_time().sleep
    assert.is_true(vertexops.cancel(op.name, nil, server:options { sleep = sleep }))
    assert.are.equal(2, #server:log("cancel"))
  end)

  it("virtual_time(): a ten-minute wait ends without waiting ten minutes", function()
    local t = server:virtual_time(5000) -- first: an operation's times are the server's
    local op = server:create { done_after = 600 }
    local started = socket.gettime()
    local done = vertexops.wait(op.name, nil, server:options { clock = t.clock, sleep = t.sleep, strategy = "poll" })
    assert.is_true(done.done)
    assert.is_true(server:now() >= 5600)
    assert.is_true(#t.delays > 0)
    -- in real time: about 0.5 s alone, up to 4.4 s measured beside make test's other loads
    H.within(socket.gettime() - started, 1, "the ten-minute wait")
  end)

  it("stop() ends nginx and removes the server's directory, and can be called again", function()
    local other = testing.start()
    local dir = other.dir
    local pid = read(dir .. "/nginx.pid"):match("%d+")
    assert.is_true(alive(pid))
    other:stop()
    assert.is_false(exists(dir))
    assert.is_false(alive(pid))
    other:stop()
  end)

  it("listens on the ports asked for", function()
    local port, http_port = unpack(testing.free_ports(2))
    local other = testing.start { port = port, http_port = http_port }
    finally(function() other:stop() end)
    assert.are.equal("https://127.0.0.1:" .. port, other.endpoint)
    assert.are.equal("http://127.0.0.1:" .. http_port, other.http_endpoint)
    assert.are.same({ ok = true }, other:control("GET", "ping"))
  end)

  it("refuses an unknown option with ValueError, a wrong type with TypeError", function()
    local err = H.raises(testing.start, { max_stream = 10 })
    assert.are.equal("ValueError", H.tags(err))
    assert.matches("unknown option max_stream", err.message, 1, true)
    assert.are.equal("TypeError", H.tags(H.raises(testing.start, { port = "eighty" })))
    assert.are.equal("ValueError", H.tags(H.raises(testing.start, { port = 70000 })))
    assert.are.equal("TypeError", H.tags(H.raises(testing.start, "fast")))
  end)

  it("names a missing nginx in a ConnectionFailedError", function()
    local err = H.raises(testing.start, { nginx = "/nonexistent/nginx" })
    assert.are.equal("ConnectionFailedError,ConnectionError", H.tags(err))
    assert.are.equal("nginx", err.missing)
    assert.matches("nginx not found at /nonexistent/nginx", err.message, 1, true)
  end)

  it("names a missing lua module of nginx in a ConnectionFailedError", function()
    local dir = testing.tmpdir()
    finally(function() os.execute("rm -rf " .. dir) end)
    local err = H.raises(testing.start, { modules = dir })
    assert.are.equal("ConnectionFailedError,ConnectionError", H.tags(err))
    assert.are.equal("libnginx-mod-http-lua", err.missing)
    assert.matches("apt install libnginx-mod-http-lua", err.message, 1, true)
  end)

  it("raises ConnectionFailedError for a control request to a server that is gone", function()
    local gone = testing.attach { http_endpoint = "http://127.0.0.1:" .. H.closed_port() }
    assert.are.equal("ConnectionFailedError,ConnectionError", H.tags(H.raises(gone.create, gone, {})))
  end)

  it("raises HttpError for a control request the server does not know", function()
    local err = H.raises(server.control, server, "GET", "nothing-here")
    assert.are.equal("HttpError", H.tags(err))
    assert.are.equal(404, err.code)
  end)
end)

describe("vertexops.testing: its files and its directory", function()
  local function stat(path)
    local out = H.run("stat -c '%a %F %U' -- '" .. path .. "'")
    return (out:gsub("%s+$", ""))
  end
  local function whoami()
    local out = H.run("id -un")
    return (out:gsub("%s+$", ""))
  end

  it("reads a file's bytes with testing.read, nil for a file that cannot be opened", function()
    local dir = testing.tmpdir()
    testing.write(dir .. "/f", "a\0b\r\n")
    assert.are.equal("a\0b\r\n", testing.read(dir .. "/f"))
    assert.is_nil(testing.read(dir .. "/missing"))
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("SERVICE_MODULES lists every file of the fake service, and the rockspec installs each", function()
    local files = {}
    for f in H.run("ls lua/vertexops/testing"):gmatch("(%S+)%.lua") do
      if f ~= "init" then files[#files + 1] = f end
    end
    local listed = { unpack(testing.SERVICE_MODULES) }
    table.sort(files)
    table.sort(listed)
    assert.are.same(files, listed)
    local env = {}
    local chunk = assert(loadfile("vertexops-scm-1.rockspec"))
    if setfenv then setfenv(chunk, env) else chunk = assert(loadfile("vertexops-scm-1.rockspec", "t", env)) end
    chunk()
    for _, m in ipairs(listed) do
      assert.are.equal("lua/vertexops/testing/" .. m .. ".lua", env.build.modules["vertexops.testing." .. m], m)
    end
  end)

  it("start() names a missing module of the fake service (not only server.lua) in a ConnectionFailedError", function()
    local dir = testing.tmpdir()
    finally(function() testing.stop_nginx(dir) end)
    assert(H.run("cp -r lua '" .. dir .. "/lua' && rm '" .. dir .. "/lua/vertexops/testing/faults.lua'"))
    local out = H.run_lua(([[
      package.path = %q .. package.path
      local testing = require "vertexops.testing"
      local ok, e = pcall(testing.start)
      if ok then e:stop() end
      print(ok, type(e) == "table" and e.missing or "-", testing.lua_root)
    ]]):format(dir .. "/lua/?.lua;" .. dir .. "/lua/?/init.lua;"))
    assert.are.equal("false\tvertexops.testing.faults\t" .. dir .. "/lua", (out:gsub("%s+$", "")))
  end)

  it("tmpdir() makes a new private directory: mode 700, a real directory of this user's", function()
    local dir = testing.tmpdir()
    finally(function() os.execute("rm -rf '" .. dir .. "'") end)
    assert.are.equal("700 directory " .. whoami(), stat(dir))
  end)

  it("start() takes no name another user plants: a symlink put at each name freed on the way is not used", function()
    -- the other user's move, as an inotify watcher on /tmp would make it: a symlink to a directory
    -- of theirs at every temporary name the moment it is free
    local theirs = testing.tmpdir()
    assert(os.execute("rmdir '" .. theirs .. "/tmp'"))
    local real_remove, planted = os.remove, {}
    finally(function()
      os.remove = real_remove -- luacheck: ignore 122
      for _, l in ipairs(planted) do real_remove(l) end
      os.execute("rm -rf '" .. theirs .. "'")
    end)
    os.remove = function(path) -- luacheck: ignore 122
      local r, e = real_remove(path)
      if type(path) == "string" and path:match("^/tmp/") and not path:find(theirs, 1, true) then
        if os.execute("ln -s '" .. theirs .. "' '" .. path .. "' 2>/dev/null") then planted[#planted + 1] = path end
      end
      return r, e
    end
    local other = testing.start()
    os.remove = real_remove -- luacheck: ignore 122
    local dir = other.dir
    other:stop()
    assert.are.equal("", (H.run("ls -A '" .. theirs .. "'")), "the fake wrote into the other user's directory")
    assert.is_false(exists(dir))
  end)

  it("stop_nginx(dir) gives dir to no shell unquoted: a name with a space is one name", function()
    local base = testing.tmpdir()
    finally(function() os.execute("rm -rf '" .. base .. "'") end)
    assert(os.execute("mkdir '" .. base .. "/a b' '" .. base .. "/a'"))
    testing.stop_nginx(base .. "/a b")
    assert.is_false(exists(base .. "/a b"))
    assert.is_true(exists(base .. "/a"), "a directory of another name was removed")
  end)

  it("make_rsa_key(dir) gives dir to no shell unquoted: a directory with a space in its name", function()
    local base = testing.tmpdir()
    finally(function() os.execute("rm -rf '" .. base .. "'") end)
    local odd = base .. "/a b"
    assert(os.execute("mkdir '" .. odd .. "'"))
    local pem = testing.make_rsa_key(odd)
    assert.matches("^%-%-%-%-%-BEGIN PRIVATE KEY", pem)
    assert.is_true(exists(odd .. "/pub.pem"))
  end)

  it("error_log(which) takes only error, narrow and goaway: a path is refused before any file is opened", function()
    local s = testing.attach { dir = "/etc", http_endpoint = "http://127.0.0.1:9" }
    local err = H.raises(s.error_log, s, "../etc/hostname\0")
    assert.are.equal("ValueError", H.tags(err))
    assert.matches('which must be "error", "narrow" or "goaway"', err.message, 1, true)
    assert.are.equal("TypeError", H.tags(H.raises(s.error_log, s, 5)))
    assert.are.equal("ValueError", H.tags(H.raises(s.error_log, s, "hostname")))
  end)

  it("requiring vertexops.testing runs no program (no shell, no id, no pwd)", function()
    if not H.have("strace") then
      pending("strace is not installed")
      return
    end
    local trace = os.tmpname()
    finally(function() os.remove(trace) end)
    -- under make asan, the interpreter itself with the sanitizer runtime (not scripts/asan-lua, a
    -- shell), and LeakSanitizer off: it cannot run under ptrace
    local lua, env = H.lua_command(), ""
    local preload = os.getenv("VERTEXOPS_ASAN_PRELOAD")
    if preload then
      lua, env = "lua5.4", ("-E 'LD_PRELOAD=%s' -E ASAN_OPTIONS=detect_leaks=0 "):format(preload)
    end
    local out, ok = H.run(("strace -f -qq -e trace=execve %s-o %s %s -e 'require \"vertexops.testing\"'")
      :format(env, trace, lua))
    assert.is_true(ok, out)
    local execs = {}
    for line in read(trace):gmatch("[^\n]+") do
      if line:match("execve%(") and not line:match("ENOENT") then execs[#execs + 1] = line end
    end
    assert.are.equal(1, #execs, table.concat(execs, "\n")) -- the interpreter itself, nothing else
  end)
end)

describe("vertexops.testing: limits of the control API and of the log", function()
  local server
  setup(function() server = testing.start() end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  -- a control request by hand (raw body); returns status, decoded answer
  local function raw_control(path, body, headers)
    local http, ltn12 = require "socket.http", require "ltn12"
    local out = {}
    local h = { ["content-length"] = tostring(#body) }
    for k, v in pairs(headers or {}) do h[k] = v end
    local _, code = http.request { url = server.control_url .. path, method = "POST", headers = h,
      source = ltn12.source.string(body), sink = ltn12.sink.table(out) }
    return code, cjson.decode(table.concat(out))
  end

  local function refused(f, ...)
    local err = H.raises(f, ...)
    assert.are.equal("HttpError", H.tags(err))
    assert.are.equal(400, err.code, err.message)
    return err.message
  end

  it("refuses a create request past 200,000 operations with a 400 naming the cap, making none", function()
    local message = refused(server.create_many, server, 200001, {})
    assert.matches("count must be an integer from 1 to 200000", message, 1, true)
    assert.are.equal(H.NAME .. "1001", server:create({}).name) -- the next name: none was made
  end)

  it("refuses a count that is not a whole number of operations", function()
    assert.matches("count must be an integer", refused(server.create_many, server, 2.5, {}), 1, true)
  end)

  it("refuses a size fault past 64 MiB with a 400 naming the cap", function()
    local message = refused(server.fault, server, { match = "get", size = 64 * 1024 * 1024 + 1 })
    assert.matches("size must be an integer from 0 to 67108864", message, 1, true)
  end)

  it("streams a size fault: a client that reads nothing leaves the worker holding far less than the body", function()
    local worker = H.fake_worker(server)
    local function rss() return tonumber(read("/proc/" .. worker .. "/status"):match("VmRSS:%s*(%d+)")) end
    local before = rss()
    server:fault { match = "get", size = 64 * 1024 * 1024 }
    local c = socket.tcp()
    c:settimeout(5)
    assert(c:connect("127.0.0.1", server.http_port))
    finally(function() c:close() end)
    assert(c:send("GET /v1beta1/" .. H.NAME .. "1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-token\r\n\r\n"))
    assert.is_true(eventually(function() return #server:log("get") == 1 end, 10))
    socket.sleep(1) -- what a buffering server would have buffered by now: all of it, at once
    local grown = (rss() - before) / 1024
    assert.is_true(grown < 24, ("the worker grew %.1f MiB for a 64 MiB body nobody read"):format(grown))
  end)

  -- a cancel request by hand, with this body
  local function cancel_with(body)
    local http, ltn12 = require "socket.http", require "ltn12"
    http.request { url = server.http_endpoint .. "/v1beta1/" .. H.NAME .. "1:cancel", method = "POST",
      headers = { ["content-length"] = tostring(#body), authorization = "Bearer test-token" },
      source = ltn12.source.string(body), sink = ltn12.sink.null() }
  end

  it("cuts a request body in the log to 64 KiB and marks it", function()
    cancel_with(string.rep("x", 100 * 1024))
    local e = server:log("cancel")[1]
    assert.are.equal(64 * 1024, #e.body)
    assert.is_true(e.body_truncated)
    assert.are.equal(100 * 1024, e.body_size)
  end)

  it("keeps a request body under 64 KiB whole, unmarked", function()
    local body = string.rep("y", 64 * 1024)
    cancel_with(body)
    local e = server:log("cancel")[1]
    assert.are.equal(body, e.body)
    assert.is_nil(e.body_truncated)
  end)

  it("refuses a clock body whose virtual is not a number; later requests are still served", function()
    local message = refused(server.clock, server, { virtual = "soon" })
    assert.matches("virtual must be a number", message, 1, true)
    local op = server:create { done = true }
    assert.is_true(vertexops.get(op.name, nil, server:options()).done)
  end)

  it("refuses a fault field of the wrong type with a 400 naming it, queuing nothing", function()
    assert.matches("delay must be a number", refused(server.fault, server, { match = "get", delay = "soon" }), 1, true)
    local op = server:create { done = true }
    assert.is_true(vertexops.get(op.name, nil, server:options()).done)
    assert.are.equal(1, #server:log("get"))
  end)

  it("refuses a control body that is not JSON with a 400", function()
    local code, answer = raw_control("faults", "{not json")
    assert.are.equal(400, code)
    assert.matches("not JSON", answer.error, 1, true)
  end)

  it("refuses config and tokens of the wrong shape with a 400", function()
    assert.matches("hold must be a number", refused(server.config, server, { hold = "long" }), 1, true)
    assert.matches("tokens must be a list of strings", refused(server.tokens, server, { a = 1 }), 1, true)
  end)

  it("refuses a config whose project_id is not one, changing nothing: its nolog is not applied", function()
    local message = refused(server.config, server, { nolog = true, project_id = "Not An ID" })
    assert.matches("project_id must be a project ID", message, 1, true)
    local op = server:create { done = true }
    assert.is_true(vertexops.get(op.name, nil, server:options()).done)
    assert.are.equal(1, #server:log("get"), "the refused config turned nolog on")
  end)

  it("with a control token, refuses a control request without it (401); the driver sends it", function()
    local other = testing.start { control_token = "s3cret-token" }
    finally(function() other:stop() end)
    assert.are.same({ ok = true }, other:control("GET", "ping"))
    local stranger = testing.attach { http_endpoint = other.http_endpoint }
    local err = H.raises(stranger.create, stranger, {})
    assert.are.equal("HttpError", H.tags(err))
    assert.are.equal(401, err.code)
    assert.matches("X-Fake-Control-Token", err.message, 1, true)
    local wrong = testing.attach { http_endpoint = other.http_endpoint, control_token = "guess" }
    assert.are.equal(401, H.raises(wrong.reset, wrong).code)
    assert.is_true(testing.attach { http_endpoint = other.http_endpoint, control_token = "s3cret-token" }:reset().ok)
  end)

  it("refuses a control token that cannot go in a header with ValueError, before starting anything", function()
    local err = H.raises(testing.start, { control_token = "two words" })
    assert.are.equal("ValueError", H.tags(err))
    assert.matches("control_token", err.message, 1, true)
    assert.are.equal("TypeError", H.tags(H.raises(testing.start, { control_token = 5 })))
  end)
end)

describe("vertexops fake", function()
  -- starts the command in the background; returns its pid and the file its stdout and stderr go to
  local function spawn(args)
    local out = os.tmpname()
    local p = io.popen(("%s bin/vertexops fake %s >%s 2>&1 & echo $!"):format(H.lua_command(), args, out))
    local pid = p:read("*l")
    p:close()
    return pid, out
  end

  local function stop(pid, out)
    os.execute("kill -TERM " .. pid .. " 2>/dev/null")
    os.remove(out)
  end

  it("runs a server in the foreground, and on SIGTERM stops it and removes its directory", function()
    local pid, out = spawn("--json")
    finally(function() stop(pid, out) end)
    assert.is_true(eventually(function() return read(out):match("\n") ~= nil end), read(out))
    local info = cjson.decode(read(out):match("^[^\n]+"))
    assert.matches("^https://127%.0%.0%.1:%d+$", info.endpoint)
    assert.are.equal(info.dir .. "/cert.pem", info.ca_file)
    assert.are.equal(info.http_endpoint .. "/_control/", info.control_url)
    local server = testing.attach(info)
    local op = server:create { done = true }
    assert.is_true(vertexops.get(op.name, nil, { endpoint = info.endpoint, ca_file = info.ca_file,
                                                  token = info.token }).done)
    assert.are.equal(1, #server:log("get"))
    local nginx = read(info.dir .. "/nginx.pid"):match("%d+")
    assert.is_true(alive(pid))
    os.execute("kill -TERM " .. pid)
    assert.is_true(eventually(function() return not alive(pid) end), "still running")
    assert.is_true(eventually(function() return not exists(info.dir) end), info.dir .. " left behind")
    assert.is_true(eventually(function() return not alive(nginx) end), "nginx still running")
  end)

  it("prints the endpoints and export lines for a shell, on the ports asked for", function()
    local port, http_port = unpack(testing.free_ports(2))
    local pid, out = spawn("--port " .. port .. " --http-port " .. http_port)
    finally(function() stop(pid, out) end)
    assert.is_true(eventually(function() return read(out):match("export [^\n]*\n") ~= nil end), read(out))
    local text = read(out)
    assert.matches("endpoint%s+https://127%.0%.0%.1:" .. port .. "\n", text)
    assert.matches("http_endpoint%s+http://127%.0%.0%.1:" .. http_port .. "\n", text)
    assert.matches("control%s+http://127%.0%.0%.1:" .. http_port .. "/_control/\n", text)
    local ca = text:match("ca_file%s+(%S+)\n")
    assert.is_true(exists(ca))
    assert.matches("export VERTEXOPS_ENDPOINT=https://127.0.0.1:" .. port .. " VERTEXOPS_CA_FILE=" .. ca
      .. " GOOGLE_OAUTH_ACCESS_TOKEN=test-token\n", text, 1, true)
  end)

  it("exits 2 for --port with another command, or a port that is not one", function()
    local _, _, code = H.run(H.lua_command() .. " bin/vertexops get " .. H.NAME .. "1 --port 8080")
    assert.are.equal(2, code)
    _, _, code = H.run(H.lua_command() .. " bin/vertexops fake --port 0")
    assert.are.equal(2, code)
  end)
end)
