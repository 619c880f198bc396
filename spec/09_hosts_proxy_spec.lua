-- HTTPS proxies over libcurl (docs/contract.md, "Security": proxies): the option `proxy` and
-- https_proxy / HTTPS_PROXY, tunnelled with CONNECT through a real proxy on loopback (Debian's
-- tinyproxy, spec/support/proxy.lua), whose log is the witness: a CONNECT to the fake's host:port
-- seen, or none when no_proxy names the host. TLS to the fake goes inside the tunnel, verified.
local H = require "support.helper"
local P = require "support.proxy"
local vertexops = require "vertexops"

local NAME = H.NAME .. "1"

describe("HTTPS proxy (libcurl)", function()
  local fake = H.fake_server()
  local server, open, locked, target

  setup(function()
    open = P.start()
    locked = P.start { user = "alice", password = "s3cr3t-pw", more = { { "bob", "b0b-pw" } } }
  end)
  teardown(function()
    open:stop()
    locked:stop()
  end)
  before_each(function()
    server = fake.server
    server:create { id = "1" }
    target = "127.0.0.1:" .. server.https_port
  end)
  local keep = H.closed_after_each()

  local function client(extra)
    return keep(vertexops.client(H.opts(server, { retry = false }, extra)))
  end

  it("option proxy: the call goes through the proxy's CONNECT tunnel", function()
    local before = open:connects(target)
    local op = client({ proxy = open.url }):get(NAME)
    assert.are.equal(NAME, op.name)
    assert.are.equal(1, open:connects(target) - before)
    assert.are.equal(1, #server:log("get"))
  end)

  it("sends the proxy's credentials (Basic), percent-decoded from the URL", function()
    local before = locked:connects(target)
    client({ proxy = locked:url_with("alice", "s3cr3t-pw") }):get(NAME)
    assert.are.equal(1, locked:connects(target) - before)
    assert.are.equal(1, #server:log("get"))
  end)

  it("a refused CONNECT is a ConnectionFailedError with proxy_status that never shows the credentials", function()
    local c = client({ proxy = locked:url_with("alice", "wr0ng-pw") })
    local err = H.raises(c.get, c, NAME)
    assert.are.equal("ConnectionFailedError,ConnectionError", H.tags(err))
    assert.are.equal(401, err.proxy_status) -- tinyproxy answers a bad Basic credential with 401
    assert.matches("proxy refused the tunnel", err.message, 1, true)
    assert.is_nil(tostring(err):find("wr0ng", 1, true))
    assert.is_nil(tostring(err):find("alice", 1, true))
    assert.are.equal(0, #server:log("get"))
  end)

  it("a refused CONNECT is not retried (no retry delay, one CONNECT)", function()
    local t = H.fake_time()
    local before = locked:connects(target)
    local c = client({ proxy = locked:url_with("alice", "wr0ng-pw"), retry = { max_retries = 3 },
      clock = t.clock, sleep = t.sleep })
    H.raises(c.get, c, NAME)
    assert.are.same({}, t.delays)
    assert.are.equal(1, locked:connects(target) - before)
  end)

  it("a started request (libcurl's multi interface) goes through the proxy too", function()
    local before = open:connects(target)
    local op = client({ proxy = open.url }):start("get", NAME):wait()
    assert.are.equal(NAME, op.name)
    assert.are.equal(1, open:connects(target) - before)
  end)

  it("no_proxy naming the host: no CONNECT, the call goes straight to the service", function()
    local before = open:all_connects()
    client({ proxy = open.url, no_proxy = "example.com, 127.0.0.1" }):get(NAME)
    assert.are.equal(0, open:all_connects() - before)
    assert.are.equal(1, #server:log("get"))
  end)

  it("no_proxy '*': no proxy for any host", function()
    local before = open:all_connects()
    client({ proxy = open.url, no_proxy = "*" }):get(NAME)
    assert.are.equal(0, open:all_connects() - before)
  end)

  it("a plain http:// endpoint never goes through the proxy (its token would be in the clear)", function()
    local before = open:all_connects()
    client({ proxy = open.url, endpoint = server.http_endpoint }):get(NAME)
    assert.are.equal(0, open:all_connects() - before)
    assert.are.equal(1, #server:log("get"))
  end)

  it("https_proxy from the environment; NO_PROXY from the environment bypasses it", function()
    local code = ([[
      local c = require("vertexops").client { endpoint = %q, ca_file = %q, token = "test-token", retry = false }
      local ok, res = pcall(c.get, c, %q)
      print(ok and "ok" or tostring(res))
    ]]):format(server.endpoint, server.ca_file, NAME)
    local before = open:connects(target)
    local out = H.run_lua(code, { https_proxy = open.url, HTTPS_PROXY = "", no_proxy = "", NO_PROXY = "" })
    assert.matches("^ok", out)
    assert.are.equal(1, open:connects(target) - before)
    out = H.run_lua(code, { https_proxy = "", HTTPS_PROXY = open.url, no_proxy = "", NO_PROXY = "127.0.0.1" })
    assert.matches("^ok", out)
    assert.are.equal(1, open:connects(target) - before)
    assert.are.equal(2, #server:log("get"))
  end)

  it("a bad HTTPS_PROXY is a ValueError naming the variable, not showing its value", function()
    local out = H.run_lua(([[
      local ok, err = pcall(require("vertexops").get, %q, nil, { endpoint = %q, token = "test-token" })
      print(ok and "ok" or tostring(err))
    ]]):format(NAME, server.endpoint), { https_proxy = "", HTTPS_PROXY = "https://u:hunter2@127.0.0.1:1" })
    assert.matches("ValueError: environment variable HTTPS_PROXY must be an HTTP proxy URL", out, 1, true)
    assert.is_nil(out:find("hunter2", 1, true))
  end)

  describe("connections are kept apart by proxy", function()
    it("a direct connection is not used for a call through the proxy", function()
      local c = client()
      c:get(NAME)
      local before = open:connects(target)
      c:get(NAME, nil, { proxy = open.url })
      assert.are.equal(1, open:connects(target) - before)
      assert.are.equal(2, c:stats().connects)
    end)

    it("a tunnel is not used for a call that bypasses the proxy", function()
      local c = client({ proxy = open.url })
      c:get(NAME)
      c:get(NAME, nil, { no_proxy = "127.0.0.1" })
      assert.are.equal(2, c:stats().connects)
      assert.are.equal(2, #server:log("get"))
    end)

    it("a tunnel opened with one user's credentials is not lent to another's", function()
      local c = client({ proxy = locked:url_with("alice", "s3cr3t-pw") })
      local before = locked:connects(target)
      c:get(NAME)
      c:get(NAME, nil, { proxy = locked:url_with("bob", "b0b-pw") })
      c:get(NAME) -- alice's tunnel again
      assert.are.equal(2, locked:connects(target) - before)
      assert.are.equal(3, #server:log("get"))
    end)
  end)
end)
