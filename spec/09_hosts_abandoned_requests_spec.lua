-- A started request that its host abandons, in plain Lua (a game drops work): one left
-- mid-fetch holds a later request of its client no longer than that fetch's own deadline, and
-- req:close() releases its handle and any fetch it leads at once (spec/09_hosts_killed_threads_spec.lua: the same inside nginx).
local H = require "support.helper"
local fake = require "support.fake"
local socket = require "socket"

describe("a started request abandoned in plain Lua", function()
  local box = H.fake_server()
  local server, dir, user

  setup(function()
    dir = fake.tmpdir()
    user = dir .. "/user.json"
    H.authorized_user(user, box.server.endpoint)
  end)
  teardown(function() os.execute("rm -rf " .. dir) end)
  before_each(function() server = box.server end)

  local function client(extra)
    local o = H.opts(server, { credentials = user, timeout = 30 })
    o.token = nil
    for k, v in pairs(extra or {}) do o[k] = v end
    return require("vertexops").client(o)
  end

  it("mid-fetch does not hold a later started request: the fetch's answer is taken up", function()
    local op = server:create {}
    local c = client()
    local first = c:start("get", op.name)
    first:poll() -- the token request is in flight; the host never looks at this request again
    local second = c:start("get", op.name)
    local t0 = os.time()
    assert.are.equal(op.name, second:wait().name)
    assert.is_true(os.time() - t0 < 10, "took " .. (os.time() - t0) .. " s")
    assert.are.equal(1, #server:log("token"))
    c:close()
  end)

  it("mid-fetch, with no answer coming: a later started request waits no longer than that fetch's deadline", function()
    local op = server:create {}
    -- the first's token request must reach the fake before its fetch's deadline (it counts below):
    -- 4 s leave a busy machine room for that; a fetch waited to its end would take 60 s
    server:fault { match = "token", delay = 60 }
    local c = client()
    local first = c:start("get", op.name, nil, { timeout = 4 }) -- its fetch's deadline: 4 s from now
    for _ = 1, 500 do -- until the token request has reached the fake (and taken its fault)
      first:poll()
      if #server:log("token") == 1 then break end
      socket.sleep(0.01)
    end
    local t0 = socket.gettime()
    local second = c:start("get", op.name)
    assert.are.equal(op.name, second:wait().name)
    local took = socket.gettime() - t0
    H.within(took, 4, "the second request (the fetch's deadline: 4 s)")
    assert.are.equal(2, #server:log("token"))
    assert.are.equal(1, #server:log("get"))
    c:close()
  end)

  it("req:close() gives up the fetch it leads: a request waiting for it fetches at once", function()
    local op = server:create {}
    server:fault { match = "token", delay = 20 }
    local c = client()
    local first = c:start("get", op.name)
    for _ = 1, 500 do -- until the token request has reached the fake (and taken its fault)
      first:poll()
      if #server:log("token") == 1 then break end
      socket.sleep(0.01)
    end
    first:close()
    local t0 = os.time()
    local second = c:start("get", op.name)
    assert.are.equal(op.name, second:wait().name)
    assert.is_true(os.time() - t0 < 10, "took " .. (os.time() - t0) .. " s")
    assert.are.equal(2, #server:log("token"))
    assert.are.equal(1, #server:log("get"))
    c:close()
  end)

  it("req:close() stops the transfer and frees its handle; poll, result and wait then raise ValueError", function()
    local op = server:create {}
    server:fault { match = "get", delay = 20 }
    local c = client { token = "test-token" }
    local r = c:start("get", op.name)
    r:poll()
    assert.is_truthy(r.transfer)
    r:close()
    r:close() -- idempotent
    assert.is_nil(r.transfer)
    assert.are.equal(0, c:poll())
    for _, m in ipairs { "poll", "result", "wait" } do
      local err = H.raises(r[m], r)
      assert.are.equal("ValueError", H.tags(err))
      assert.matches("request:" .. m .. "() on a closed request", err.message, 1, true)
    end
    assert.are.equal(op.name, c:get(op.name, nil, { token = "test-token" }).name)
    c:close()
  end)

  it("req.close() with a dot raises TypeError", function()
    local c = client { token = "test-token" }
    local r = c:start("get", server:create {}.name)
    r:wait()
    assert.are.equal("TypeError", H.tags(H.raises(r.close)))
    c:close()
  end)
end)
