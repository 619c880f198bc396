-- make test: once
-- Client certificates (mutual TLS) over nginx cosockets (tcpsock:setclientcert; docs/contract.md,
-- "Options": client_cert, client_key) in a real nginx (spec/support/openresty.lua) against the fake's
-- server that requires a client certificate (testing.start{mtls = true}, docs/fake.md). The fake's log
-- names the certificate each request came with.
local cjson = require "cjson"
local H = require "support.helper"
local testing = require "vertexops.testing"
local openresty = require "support.openresty"

local NAME = H.NAME .. "1"

describe("client certificates (cosocket transport)", function()
  local mtls = H.mtls_server()
  local server, app, dir, other_cert, other_key, endpoint

  setup(function()
    server, dir, other_cert, other_key = mtls.server, mtls.dir, mtls.other_cert, mtls.other_key
    app = openresty.start(server)
    endpoint = server.mtls_endpoint:gsub("127%.0%.0%.1", "localhost")
  end)
  teardown(function() app:stop() end)

  -- Runs gets with the options of each entry of list in one nginx request.
  local function gets(list)
    return app:result([[
      local out = {}
      for i, extra in ipairs(args.list) do
        local o = T.opts(extra)
        o.endpoint, o.retry = args.endpoint, false
        local before = T.stats.connects
        local ok, res = pcall(vertexops.get, args.name, nil, o)
        out[i] = { ok = ok, connects = T.stats.connects - before,
                   err = not ok and { tags = res.tags, code = res.code, message = tostring(res) } or nil }
      end
      return out
    ]], { name = NAME, list = list, endpoint = endpoint })
  end

  it("without a client certificate the server refuses the request (400)", function()
    local r = gets { {} }
    assert.are.equal(400, r[1].err.code, cjson.encode(r))
    assert.are.equal(0, #server:log("get"))
  end)

  it("client_cert and client_key: the request comes with the certificate", function()
    local r = gets { { client_cert = server.client_cert, client_key = server.client_key } }
    assert.is_true(r[1].ok, cjson.encode(r))
    assert.are.equal("CN=fake-client", server:log("get")[1].client_cert)
  end)

  it("a certificate from another CA is refused by the server (400)", function()
    local r = gets { { client_cert = other_cert, client_key = other_key } }
    assert.are.equal(400, r[1].err.code, cjson.encode(r))
  end)

  it("pools are keyed by the certificate: one made with a certificate is not used for a call with another", function()
    local mine = { client_cert = server.client_cert, client_key = server.client_key }
    local r = gets { mine, { client_cert = other_cert, client_key = other_key }, mine }
    assert.is_true(r[1].ok and r[3].ok, cjson.encode(r))
    assert.are.equal(400, r[2].err.code, cjson.encode(r))
    assert.are.equal(1, r[2].connects)
    assert.are.equal(0, r[3].connects) -- the first certificate's pooled connection again
    assert.are.equal(2, #server:log("get"))
  end)

  it("a pooled connection made with a certificate is not used for a call without one", function()
    local r = gets { { client_cert = server.client_cert, client_key = server.client_key }, {} }
    assert.is_true(r[1].ok, cjson.encode(r))
    assert.are.equal(400, r[2].err.code, cjson.encode(r))
  end)

  it("transport 'thread' (libcurl on a worker thread) presents the certificate too", function()
    local r = gets { { client_cert = server.client_cert, client_key = server.client_key, transport = "thread",
      ca_file = server.ca_file } }
    assert.is_true(r[1].ok, cjson.encode(r))
    assert.are.equal("CN=fake-client", server:log("get")[1].client_cert)
  end)

  it("an nginx whose cosockets lack setclientcert: an AuthError naming the other transports, nothing sent", function()
    local r = app:result([[
      local cosocket = require "vertexops.transport.cosocket"
      local supported = cosocket.clientcert_supported
      cosocket.clientcert_supported = function() return false end
      local ok, err = pcall(vertexops.get, args.name, nil, T.opts { endpoint = args.endpoint, retry = false,
        client_cert = args.cert, client_key = args.key })
      cosocket.clientcert_supported = supported
      return { ok = ok, tags = err.tags, message = tostring(err) }
    ]], { name = NAME, endpoint = endpoint, cert = server.client_cert, key = server.client_key })
    assert.is_false(r.ok)
    assert.are.same({ "AuthError" }, r.tags)
    assert.matches("needs tcpsock:setclientcert", r.message, 1, true)
    assert.matches("transport 'thread' or 'curl'", r.message, 1, true)
    assert.are.equal(0, #server:log())
  end)

  it("a key nginx cannot read is an AuthError", function()
    local bad = dir .. "/bad.key"
    testing.write(bad, "-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n")
    local r = gets { { client_cert = server.client_cert, client_key = bad } }
    assert.are.same({ "AuthError" }, r[1].err.tags, cjson.encode(r))
    assert.matches("option 'client_key': nginx cannot read the private key", r[1].err.message, 1, true)
  end)
end)
