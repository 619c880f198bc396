-- make test: once
-- The opt-in worker-thread transport (transport = "thread") under load: exchanges past
-- thread_pool_size (default 100: lua_worker_thread_vm_pool_size's default) wait for a free slot
-- instead of failing with nginx's "no available Lua vm", and the wait is bounded by the
-- exchange's timeout (TimeoutError).
local H = require "support.helper"
local openresty = require "support.openresty"

local CONCURRENT = [[
  local threads, ok, errs = {}, 0, {}
  local o = T.opts { transport = "thread", ca_file = args.ca_file, retry = false,
                     thread_pool_size = args.size, request_timeout = args.request_timeout }
  for i = 1, args.n do threads[i] = ngx.thread.spawn(vertexops.get, args.name, nil, o) end
  for i = 1, args.n do
    local done, res = ngx.thread.wait(threads[i])
    if done then ok = ok + 1 else errs[#errs + 1] = res end
  end
  return { ok = ok, errors = errs }]]

describe("transport 'thread' under load", function()
  local box = H.fake_server()
  local server, app

  setup(function() app = openresty.start(box.server) end)
  teardown(function() app:stop() end)
  before_each(function() server = box.server end)

  it("queues 150 concurrent exchanges past the 100 VMs of the worker instead of failing", function()
    local op = server:create {}
    server:config { hold = 0.1 }
    local res = app:result(CONCURRENT, { name = op.name, n = 150, ca_file = server.ca_file })
    server:config { hold = 0 }
    assert.are.same({}, res.errors)
    assert.are.equal(150, res.ok)
    assert.are.equal(150, #server:log("get"))
  end)

  it("runs at most thread_pool_size exchanges at once", function()
    local op = server:create {}
    server:config { hold = 0.3 }
    local t0 = os.time()
    local res, doc = app:result(CONCURRENT .. "", { name = op.name, n = 6, size = 2, ca_file = server.ca_file })
    server:config { hold = 0 }
    assert.are.equal(6, res.ok, doc and require("cjson").encode(res.errors))
    local log = server:log("get")
    table.sort(log, function(a, b) return a.time < b.time end)
    -- two at a time, each held 0.3 s: the 3rd starts after the 1st ended, the 5th after the 3rd
    assert.is_true(log[3].time - log[1].time >= 0.25, "3rd at +" .. (log[3].time - log[1].time))
    assert.is_true(log[5].time - log[3].time >= 0.25, "5th at +" .. (log[5].time - log[3].time))
    H.within(os.time() - t0, 1, "six exchanges two at a time")
  end)

  it("raises TimeoutError when no thread frees up within the exchange's timeout", function()
    local op = server:create {}
    server:config { hold = 5 }
    -- the first exchange holds the one thread for its whole 3 s timeout; the second, with 0.4 s, can
    -- only wait in the queue and time out there (far apart: no race between the two deadlines)
    local res = app:result([[
      local function o(t)
        return T.opts { transport = "thread", ca_file = args.ca_file, retry = false, thread_pool_size = 1,
                        request_timeout = t }
      end
      local first = ngx.thread.spawn(vertexops.get, args.name, nil, o(3))
      ngx.sleep(0.2)
      local second = T.catch(vertexops.get, args.name, nil, o(0.4))
      local _, ferr = ngx.thread.wait(first)
      return { first = ferr, second = second.raised }]], { name = op.name, ca_file = server.ca_file })
    server:config { hold = 0 }
    local queued = res.second
    assert.is_table(queued, require("cjson").encode(res))
    assert.are.same({ "TimeoutError" }, queued.tags)
    assert.matches("no worker thread", queued.message, 1, true)
    assert.matches("thread_pool_size", queued.message)
    assert.are.same({ "TimeoutError" }, res.first.tags) -- the first, by its own timeout
  end)

  it("checks thread_pool_size like every option", function()
    local res = app:result([[
      local a = T.catch(vertexops.get, "projects/p/locations/l/operations/1", nil, { thread_pool_size = 1.5 })
      local b = T.catch(vertexops.get, "projects/p/locations/l/operations/1", nil, { thread_pool_size = 0 })
      return { a.raised.tags[1], b.raised.tags[1], b.raised.message }]])
    assert.are.same({ "TypeError", "ValueError", "option 'thread_pool_size' must be >= 1, got 0" }, res)
    assert.are.equal(0, #server:log())
  end)
end)
