-- make test: once
-- Connection reuse of the cosocket transport (nginx's per-worker pools, the fake's connection ids
-- as witness) and the choice of transport (option transport).
local H = require "support.helper"
local openresty = require "support.openresty"
local vertexops = require "vertexops"

-- how many connections the entries of the fake's log came over (spec/support/helper.lua)
local connections = H.connections

describe("cosocket connection pool", function()
  local fake = H.fake_server()
  local server, app

  setup(function() app = openresty.start(fake.server) end)
  teardown(function() app:stop() end)
  before_each(function() server = fake.server end)

  local GETS = [[
    for _ = 1, args.n do vertexops.get(args.name, nil, T.opts(args.extra)) end
    return true]]

  it("sends 20 sequential calls over one connection", function()
    local op = server:create {}
    app:result(GETS, { name = op.name, n = 20 })
    assert.are.equal(20, #server:log("get"))
    assert.are.equal(1, connections(server:log()))
  end)

  it("keeps the connection across nginx requests (the pool is the worker's)", function()
    local op = server:create {}
    app:result(GETS, { name = op.name, n = 1 })
    local _, doc = app:result(GETS, { name = op.name, n = 1 })
    assert.are.equal(1, connections(server:log()))
    assert.are.equal(1, doc.stats.reused)
  end)

  it("reuses the connection after an HTTP error, whose answer was read whole", function()
    local op = server:create {}
    app:run([[return vertexops.get(args.name, nil, T.opts())]], { name = H.NAME .. "missing" })
    app:result(GETS, { name = op.name, n = 2 })
    assert.are.equal(3, #server:log())
    assert.are.equal(1, connections(server:log()))
  end)

  it("does not reuse a connection after a partial read", function()
    local op = server:create {}
    app:result(GETS, { name = op.name, n = 1 })
    server:fault { match = "get", drop = "mid" }
    app:run(GETS, { name = op.name, n = 1, extra = { retry = false } })
    app:result(GETS, { name = op.name, n = 1 })
    local log = server:log("get")
    assert.are.equal(3, #log)
    assert.are_not.equal(log[2].connection, log[3].connection)
  end)

  it("does not reuse a connection after a timeout", function()
    local op = server:create {}
    -- the request must reach the fake before its timeout (it counts in the log below): 2 s leaves
    -- room for a new connection's handshake on a busy machine, 0.2 s did not
    server:fault { match = "get", delay = 10 }
    local doc = app:run(GETS, { name = op.name, n = 1, extra = { retry = false, request_timeout = 2 } })
    assert.are.equal("TimeoutError", doc.error.tags[1])
    app:result(GETS, { name = op.name, n = 1 })
    local log = server:log("get")
    assert.are.equal(2, #log)
    assert.are_not.equal(log[1].connection, log[2].connection)
  end)

  -- (lua/vertexops/transport/cosocket.lua: past 64 parsers kept, a parser keeps buffers of at most
  -- 16 KiB; whether it may keep more is decided as its answer ends, by the count kept then -- when it
  -- was decided as an exchange started, a burst begun on a short pool kept every parser's buffers,
  -- up to 1 MiB each. Witness: the keep argument of each p:take that finished an answer.)
  it("lets at most 64 parsers of a burst of 150 calls in flight keep their buffers whole", function()
    local op = server:create {}
    server:fault { match = "get", delay = 1, times = 150 } -- (every call sent before any answer comes)
    local got = app:result([[
      local methods = debug.getmetatable(require("vertexops.core").h1()).__index
      local take, whole, finished = methods.take, 0, 0
      methods.take = function(p, data, want, keep)
        local done, a, b, c, d, e = take(p, data, want, keep)
        if done then
          finished = finished + 1
          if keep == nil then whole = whole + 1 end
        end
        return done, a, b, c, d, e
      end
      local threads = {}
      for i = 1, args.n do
        threads[i] = ngx.thread.spawn(vertexops.get, args.name, nil, T.opts { pool_size = 512 })
      end
      local fine = true
      for i = 1, args.n do fine = ngx.thread.wait(threads[i]) and fine end
      methods.take = take
      assert(fine)
      return { whole = whole, finished = finished }]], { name = op.name, n = 150 })
    assert.are.equal(150, got.finished)
    assert.is_true(got.whole >= 1 and got.whole <= 64, got.whole .. " parsers kept their buffers whole")
  end)

  it("opens one connection per concurrent call, then reuses them", function()
    local op = server:create {}
    local CONCURRENT = [[
      local threads = {}
      for i = 1, args.n do
        threads[i] = ngx.thread.spawn(vertexops.get, args.name, nil, T.opts(args.extra))
      end
      for i = 1, args.n do assert(ngx.thread.wait(threads[i])) end
      return true]]
    app:result(CONCURRENT, { name = op.name, n = 5 })
    app:result(CONCURRENT, { name = op.name, n = 5 })
    assert.are.equal(10, #server:log("get"))
    assert.are.equal(5, connections(server:log()))
  end)

  it("queues connects past pool_size when pool_backlog is set", function()
    local op = server:create {}
    local res = app:result([[
      local threads, o = {}, T.opts { pool_size = 1, pool_backlog = 10 }
      o.endpoint = args.endpoint -- a pool of its own (pools are named by host): same server
      for i = 1, 4 do threads[i] = ngx.thread.spawn(vertexops.get, args.name, nil, o) end
      for i = 1, 4 do assert(ngx.thread.wait(threads[i])) end
      return true]], { name = op.name, endpoint = app.endpoint:gsub("localhost", "LOCALHOST") })
    assert.is_true(res)
    assert.are.equal(4, #server:log("get"))
    assert.are.equal(1, connections(server:log()))
  end)
end)

describe("transport option", function()
  local fake = H.fake_server()
  local server, app

  setup(function() app = openresty.start(fake.server) end)
  teardown(function() app:stop() end)
  before_each(function() server = fake.server end)

  local GET = [[return vertexops.get(args.name, nil, T.opts(args.extra)).name]]

  it("is cosocket by default in the content phase (HTTP/1.1 on the wire)", function()
    local op = server:create {}
    local _, doc = app:result(GET, { name = op.name })
    assert.are.equal("HTTP/1.1", server:log()[1].protocol)
    assert.are.equal(1, doc.stats.requests)
  end)

  it("'curl' uses libcurl inside nginx (HTTP/2, with its ca_file)", function()
    local op = server:create {}
    local _, doc = app:result(GET, { name = op.name, extra = { transport = "curl", ca_file = server.ca_file } })
    assert.are.equal("HTTP/2.0", server:log()[1].protocol)
    assert.are.equal(0, doc.stats.requests)
  end)

  it("'thread' runs libcurl on an nginx worker thread", function()
    local op = server:create {}
    local _, doc = app:result(GET, { name = op.name, extra = { transport = "thread", ca_file = server.ca_file } })
    assert.are.equal("HTTP/2.0", server:log()[1].protocol)
    assert.are.equal(0, doc.stats.requests)
  end)

  it("'cosocket' outside nginx raises ValueError before any I/O", function()
    local err = H.raises(vertexops.get, H.NAME .. "1", nil, H.opts(server, { transport = "cosocket" }))
    assert.are.same({ "ValueError" }, err.tags)
    assert.matches("outside nginx", err.message)
    err = H.raises(vertexops.get, H.NAME .. "1", nil, H.opts(server, { transport = "thread" }))
    assert.are.same({ "ValueError" }, err.tags)
    assert.are.equal(0, #server:log())
  end)

  it("'curl' is the default outside nginx", function()
    vertexops.get(server:create {}.name, nil, H.opts(server))
    assert.are.equal("HTTP/2.0", server:log()[1].protocol)
  end)

  it("checks transport and the pool options like every option", function()
    local function check(o)
      local err = H.raises(vertexops.client, o)
      assert.matches("option '" .. next(o) .. "'", err.message, 1, true) -- names the option
      return err.tags[1]
    end
    assert.are.equal("ValueError", check { transport = "http" })
    assert.are.equal("TypeError", check { transport = 1 })
    assert.are.equal("TypeError", check { pool_size = 1.5 })
    assert.are.equal("ValueError", check { pool_size = 0 })
    assert.are.equal("ValueError", check { pool_backlog = -1 })
    assert.are.equal("ValueError", check { keepalive_timeout = 0 })
    assert.are.equal("TypeError", check { keepalive_timeout = "60" })
    vertexops.client { transport = "cosocket", pool_size = 10, pool_backlog = 0, keepalive_timeout = 5 }:close()
  end)
end)
