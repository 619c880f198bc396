-- make test: once
-- HTTPS proxies over nginx cosockets (docs/contract.md, "Security": proxies) in a real nginx
-- (spec/support/openresty.lua) through a real proxy on loopback (tinyproxy, spec/support/proxy.lua):
-- a tunnel opened with CONNECT (Proxy-Authorization: Basic), TLS to the fake inside it verified
-- against lua_ssl_trusted_certificate, the proxy's answer read by the strict HTTP/1.1 parser. The
-- proxy's log is the witness: a CONNECT to the fake's host:port seen, or none when no_proxy names
-- the host. nginx keeps a worker's connections between tests (a pool per proxy, target and
-- credentials): a test that counts CONNECTs uses a user of its own (fresh()), so no tunnel of an
-- earlier test can serve it.
local cjson = require "cjson"
local H = require "support.helper"
local P = require "support.proxy"
local openresty = require "support.openresty"

local NAME = H.NAME .. "1"

describe("HTTPS proxy (cosocket transport)", function()
  local fake = H.fake_server()
  local app, open, locked, target
  local users, used = { { "bob", "b0b-pw" } }, 0
  for i = 1, 20 do users[#users + 1] = { "u" .. i, "pw-u" .. i } end
  -- a proxy URL with credentials no earlier test used (its own pool)
  local function fresh()
    used = used + 1
    return locked:url_with("u" .. used, "pw-u" .. used)
  end

  setup(function()
    app = openresty.start(fake.server, {
      env = { https_proxy = "", HTTPS_PROXY = "", no_proxy = "", NO_PROXY = "" },
    })
    open = P.start()
    locked = P.start { user = "alice", password = "s3cr3t-pw", more = users }
  end)
  teardown(function()
    app:stop()
    open:stop()
    locked:stop()
  end)
  before_each(function()
    fake.server:create { id = "1" }
    target = "localhost:" .. fake.server.https_port -- the app's endpoint names localhost
  end)

  -- Runs gets with the options of each entry of list (one nginx request; the pool is the worker's).
  local function gets(list)
    return app:result([[
      local out = {}
      for i, extra in ipairs(args.list) do
        local o = T.opts(extra)
        o.retry = o.retry or false
        local before = T.stats.connects
        local ok, res = pcall(vertexops.get, args.name, nil, o)
        out[i] = { ok = ok, name = ok and res.name or nil, connects = T.stats.connects - before,
                   err = not ok and { tags = res.tags, message = tostring(res), proxy_status = res.proxy_status }
                     or nil }
      end
      return out
    ]], { name = NAME, list = list })
  end

  it("option proxy: the call goes through the proxy's CONNECT tunnel", function()
    local before = open:connects(target)
    local r = gets { { proxy = open.url } } -- the first test: no pooled tunnel to this proxy yet
    assert.is_true(r[1].ok, cjson.encode(r))
    assert.are.equal(NAME, r[1].name)
    assert.are.equal(1, open:connects(target) - before)
    assert.are.equal(1, #fake.server:log("get"))
  end)

  it("sends the proxy's credentials (Proxy-Authorization: Basic), percent-decoded from the URL", function()
    local before = locked:connects(target)
    local r = gets { { proxy = fresh() } }
    assert.is_true(r[1].ok, cjson.encode(r))
    assert.are.equal(1, locked:connects(target) - before)
  end)

  it("a refused CONNECT is a ConnectionFailedError naming the proxy's status, never its credentials", function()
    local r = gets { { proxy = locked:url_with("alice", "wr0ng-pw") } }
    local err = r[1].err
    assert.is_false(r[1].ok)
    assert.are.same({ "ConnectionFailedError", "ConnectionError" }, err.tags)
    assert.are.equal(401, err.proxy_status)
    assert.matches("the proxy refused the tunnel: it answered CONNECT with 401", err.message, 1, true)
    assert.matches("proxy http://127.0.0.1:" .. locked.port, err.message, 1, true)
    assert.is_nil(err.message:find("wr0ng", 1, true))
    assert.is_nil(err.message:find("alice", 1, true))
    assert.are.equal(0, #fake.server:log("get"))
  end)

  it("a refused CONNECT is not retried (no retry delay)", function()
    local res = app:result([[
      local sleep, delays = T.recorder()
      local ok, err = pcall(vertexops.get, args.name, nil, T.opts { proxy = args.proxy, sleep = sleep,
        retry = { max_retries = 3 } })
      return { ok = ok, delays = delays, status = err.proxy_status }
    ]], { name = NAME, proxy = locked:url_with("alice", "wr0ng-pw") })
    assert.is_false(res.ok)
    assert.are.equal(401, res.status)
    assert.are.same({}, res.delays)
  end)

  it("a proxy that does not answer is a ConnectionFailedError naming the proxy", function()
    local r = gets { { proxy = "http://127.0.0.1:" .. H.closed_port() } }
    assert.are.same({ "ConnectionFailedError", "ConnectionError" }, r[1].err.tags)
    assert.matches("connect to the proxy http://127.0.0.1:", r[1].err.message, 1, true)
  end)

  it("no_proxy naming the host: no CONNECT, the call goes straight to the service", function()
    local before = locked:all_connects()
    local r = gets { { proxy = fresh(), no_proxy = ".example.com,LOCALHOST" } }
    assert.is_true(r[1].ok, cjson.encode(r))
    assert.are.equal(0, locked:all_connects() - before)
    assert.are.equal(1, #fake.server:log("get"))
  end)

  it("the pooled tunnel is used again for the next call through the proxy", function()
    local before = locked:connects(target)
    local url = fresh()
    local r = gets { { proxy = url }, { proxy = url } }
    assert.is_true(r[1].ok and r[2].ok, cjson.encode(r))
    assert.are.equal(1, locked:connects(target) - before)
    assert.are.equal(0, r[2].connects)
  end)

  describe("pools are keyed by the proxy", function()
    it("a direct connection is not used for a call through the proxy, nor the tunnel for a direct call", function()
      local before = locked:connects(target)
      local url = fresh()
      local r = gets { { proxy = "" }, { proxy = url }, { proxy = "" }, { proxy = url } }
      for i = 1, 4 do assert.is_true(r[i].ok, cjson.encode(r)) end
      assert.are.equal(1, locked:connects(target) - before)
      assert.are.equal(4, #fake.server:log("get"))
      -- the tunnel and the direct connection each served two calls: nothing new after the first two
      assert.are.equal(0, r[3].connects + r[4].connects, cjson.encode(r))
    end)

    it("a tunnel opened with one user's credentials is not lent to another's", function()
      local before = locked:connects(target)
      local one, other = fresh(), fresh()
      local r = gets { { proxy = one }, { proxy = other }, { proxy = one } }
      for i = 1, 3 do assert.is_true(r[i].ok, cjson.encode(r)) end
      assert.are.equal(2, locked:connects(target) - before)
      assert.are.equal(0, r[3].connects)
    end)
  end)

  describe("https_proxy in nginx's environment (the example's `env https_proxy;`)", function()
    local app2, url
    setup(function()
      url = fresh()
      app2 = openresty.start(fake.server, { env = { https_proxy = url, HTTPS_PROXY = "", no_proxy = "",
        NO_PROXY = "" } })
    end)
    teardown(function() app2:stop() end)

    it("is the proxy of a call that names none", function()
      local before = locked:connects(target)
      local r = app2:result([[
        local ok, res = pcall(vertexops.get, args.name, nil, T.opts { retry = false })
        return { ok = ok, message = not ok and tostring(res) or nil }
      ]], { name = NAME })
      assert.is_true(r.ok, cjson.encode(r))
      assert.are.equal(1, locked:connects(target) - before)
    end)
  end)

  it("transport 'thread' (libcurl on a worker thread) goes through the proxy too", function()
    local before = locked:connects(target)
    local r = gets { { proxy = fresh(), transport = "thread", ca_file = fake.server.ca_file } }
    assert.is_true(r[1].ok, cjson.encode(r))
    assert.are.equal(1, locked:connects(target) - before)
  end)
end)
