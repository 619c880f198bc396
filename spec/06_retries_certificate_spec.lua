-- A server certificate that fails verification is not transient: one attempt, then a
-- ConnectionFailedError that says "certificate verify failed" and how to pass a CA (libcurl: curl
-- error 60; the cosocket transport's case is in spec/09_hosts_cosocket_certificate_spec.lua).
local vertexops = require "vertexops"
local core = require "vertexops.core"
local H = require "support.helper"

describe("a certificate that fails verification", function()
  local fake = H.fake_server()
  local server, other
  setup(function() other = H.fake.start() end) -- its own certificate, signed by another CA
  teardown(function() other:stop() end)
  before_each(function() server = fake.server end)

  local function untrusted(t, extra)
    -- the endpoint of the server, the CA of another one
    return H.opts(server, { ca_file = other.ca_file, clock = t.clock, sleep = t.sleep }, extra)
  end

  it("is not retried by cancel: one attempt, no retry sleep", function()
    local t = H.fake_time()
    local err = H.raises(vertexops.cancel, server:create { done_after = 30 }.name, nil, untrusted(t))
    assert.are.same({ "ConnectionFailedError", "ConnectionError" }, err.tags)
    assert.are.same({}, t.delays)
    assert.are.equal(0, #server:log())
  end)

  it("is not retried by get nor while waiting", function()
    local t = H.fake_time()
    local name = server:create { done_after = 30 }.name
    H.raises(vertexops.get, name, nil, untrusted(t))
    H.raises(vertexops.wait, name, nil, untrusted(t, { timeout = 60 }))
    assert.are.same({}, t.delays)
  end)

  it("says certificate verify failed, curl error 60, and how to pass a CA", function()
    local err = H.raises(vertexops.get, server:create {}.name, nil, untrusted(H.fake_time()))
    assert.is_true(err.certificate)
    assert.matches("^certificate verify failed: ", err.message)
    assert.matches("curl error 60", err.message, 1, true)
    assert.matches("--ca-file", err.message, 1, true)
    assert.matches("ca_file", err.message, 1, true)
    assert.matches("lua_ssl_trusted_certificate", err.message, 1, true)
  end)

  it("leaves other connection failures retried (a refused connection)", function()
    local t = H.fake_time()
    local err = H.raises(vertexops.cancel, H.NAME .. "1", nil,
      H.opts(server, { endpoint = "https://127.0.0.1:" .. H.closed_port(), clock = t.clock, sleep = t.sleep,
        retry = { max_retries = 2 } }))
    assert.is_nil(err.certificate)
    assert.are.same({ 1, 1.25 }, t.delays)
  end)
end)

describe("core.certificate_error", function()
  it("classifies a handshake's verify result as a certificate failure", function()
    local err = core.certificate_error("TLS handshake to localhost:1 failed: 18: self-signed certificate")
    assert.are.same({ "ConnectionFailedError", "ConnectionError" }, err.tags)
    assert.is_true(err.certificate)
    assert.matches("^certificate verify failed: TLS handshake to localhost:1 failed: 18: ", err.message)
    assert.is_true(vertexops.is(err, "ConnectionFailedError"))
  end)

  it("leaves other handshake failures alone", function()
    assert.is_nil(core.certificate_error("TLS handshake to localhost:1 failed: handshake failed"))
    assert.is_nil(core.certificate_error("TLS handshake to localhost:1 failed: closed"))
  end)

  it("refuses a detail that is not a string", function()
    local err = H.raises(core.certificate_error, 42)
    assert.are.same({ "TypeError" }, err.tags)
  end)
end)
