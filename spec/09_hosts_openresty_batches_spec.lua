-- make test: once
-- Batches and the non-blocking API inside nginx: cancel_many, cancel_all and client:start() run
-- their requests as light threads (ngx.thread.spawn) over cosockets -- HTTP/1.1 in the fake's
-- log, where libcurl's multi handle would speak HTTP/2 -- a bounded window of them at a time
-- (the fake's connection ids: no more connections than the window), through the one policy path
-- (Client:_run: retries), and the worker keeps answering other requests while they run.
local socket = require "socket"
local http = require "socket.http"
local H = require "support.helper"
local openresty = require "support.openresty"

-- how many connections the entries of the fake's log came over (spec/support/helper.lua)
local connections = H.connections

local function protocols(log)
  local set = {}
  for _, e in ipairs(log) do set[e.protocol] = true end
  return set
end

local function names(created, n)
  local prefix = created.first:match("^(.*/operations/)%d+$")
  local first = tonumber(created.first:match("(%d+)$"))
  local t = {}
  for i = 0, n - 1 do t[#t + 1] = prefix .. (first + i) end
  return t
end

describe("batches inside nginx", function()
  local box = H.fake_server()
  local server, app

  setup(function() app = openresty.start(box.server) end)
  teardown(function() app:stop() end)
  before_each(function() server = box.server end)

  it("cancel_many runs over cosockets, at most `concurrency` requests at a time", function()
    local list = names(server:create_many(40, {}), 40)
    server:config { hold = 0.1 }
    local res = app:result([[
      local results = vertexops.cancel_many(args.names, nil, T.opts { concurrency = 8 })
      local ok = 0
      for _, r in ipairs(results) do if r.ok then ok = ok + 1 end end
      return ok]], { names = list })
    server:config { hold = 0 }
    assert.are.equal(40, res)
    local log = server:log("cancel")
    assert.are.equal(40, #log)
    assert.are.same({ ["HTTP/1.1"] = true }, protocols(log))
    local n = connections(log)
    assert.is_true(n > 1 and n <= 8, n .. " connections")
  end)

  it("cancel_many retries through the policy path, in its light threads", function()
    local list = names(server:create_many(4, {}), 4)
    server:fault { match = "cancel", status = 503, times = 2 }
    local res = app:result([[
      local rec = T.recorder()
      local results = vertexops.cancel_many(args.names, nil, T.opts { sleep = rec })
      local ok = 0
      for _, r in ipairs(results) do if r.ok then ok = ok + 1 end end
      return ok]], { names = list })
    assert.are.equal(4, res)
    assert.are.equal(6, #server:log("cancel"))
  end)

  it("cancel_many does not hold the worker: /status answers while it runs", function()
    local list = names(server:create_many(5, {}), 5)
    server:config { hold = H.HOLD }
    local payload = require("cjson").encode { code = [[
      vertexops.cancel_many(args.names, nil, T.opts { concurrency = 5 })
      return true]], args = { names = list } }
    local sock = assert(socket.connect("127.0.0.1", app.port))
    sock:send(("POST /_scenario HTTP/1.0\r\nHost: app\r\nContent-Type: application/json\r\n"
      .. "Content-Length: %d\r\n\r\n%s"):format(#payload, payload))
    socket.sleep(0.2) -- the first window is in flight
    local slowest = 0
    for _ = 1, 10 do
      local t0 = socket.gettime()
      local _, code = http.request(app:url("/status"))
      assert.are.equal(200, code)
      slowest = math.max(slowest, socket.gettime() - t0)
      socket.sleep(0.05)
    end
    sock:settimeout(30)
    local answer = sock:receive("*a")
    sock:close()
    server:config { hold = 0 }
    assert.is_truthy(answer:find('"ok":true', 1, true), answer)
    H.not_blocked(slowest, "the slowest /status")
  end)

  it("cancel_all lists and cancels over cosockets, at most max_in_flight requests at a time", function()
    server:create_many(30, { project = "fleet" })
    local summary = app:result([[
      return vertexops.cancel_all("projects/fleet/locations/us-central1", nil,
        T.opts { max_in_flight = 5, page_size = 10, wait = true })]])
    assert.are.equal(30, summary.listed)
    assert.are.equal(30, summary.cancelled)
    assert.are.equal(30, #summary.wait.cancelled)
    local log = server:log()
    assert.are.same({ ["HTTP/1.1"] = true }, protocols(log))
    assert.is_true(connections(log) <= 5, connections(log) .. " connections")
  end)

  it("client:start() runs a light thread over cosockets: poll() never blocks, wait() returns", function()
    local op = server:create { cancel_after = 0.3 }
    server:fault { match = "cancel", delay = H.HOLD } -- a poll that waited would wait this long
    local res = app:result([[
      local c = vertexops.client(T.opts { polling = { initial_delay = 0.1 } })
      local req = c:start("cancel_and_wait", args.name, nil, { strategy = "poll" })
      local t0 = ngx.now()
      local done = req:poll()
      ngx.update_time()
      local poll_time = ngx.now() - t0
      local op, cancelled = req:wait()
      return { first_poll_done = done, poll_time = poll_time, state = op.error and op.error.code,
               cancelled = cancelled, again = req:poll() }]], { name = op.name })
    assert.is_false(res.first_poll_done)
    H.not_blocked(res.poll_time, "the first poll")
    assert.is_true(res.cancelled)
    assert.is_true(res.again)
    local log = server:log()
    assert.are.same({ ["HTTP/1.1"] = true }, protocols(log))
    assert.is_true(#server:log("get") >= 2)
  end)

  it("client:start() raises bad arguments before any I/O, inside nginx too", function()
    local doc = app:run([[
      local c = vertexops.client(T.opts())
      return c:start("get", "not a name")]])
    assert.are.equal("ValueError", doc.error.tags[1])
    assert.matches("^name ", doc.error.message)
    assert.are.equal(0, #server:log())
  end)
end)
