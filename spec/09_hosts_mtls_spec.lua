-- Client certificates (mutual TLS) over libcurl (docs/contract.md, "Options": client_cert, client_key;
-- "Security"): the fake started with mtls = true serves one more HTTPS server that requires a client
-- certificate signed by its own client CA (nginx's ssl_verify_client; docs/fake.md). Its request log
-- names the certificate each request came with (client_cert: the subject).
local H = require "support.helper"
local testing = require "vertexops.testing"
local vertexops = require "vertexops"

local NAME = H.NAME .. "1"

describe("client certificates (libcurl)", function()
  local mtls = H.mtls_server()
  local server, dir, other_cert, other_key
  setup(function() server, dir, other_cert, other_key = mtls.server, mtls.dir, mtls.other_cert, mtls.other_key end)
  local keep = H.closed_after_each()

  local function client(extra)
    return keep(vertexops.client(H.opts(server, { endpoint = server.mtls_endpoint, retry = false }, extra)))
  end

  it("without a client certificate the server refuses the request (400), the service never sees it", function()
    local c = client()
    local err = H.raises(c.get, c, NAME)
    assert.are.equal(400, err.code)
    assert.are.equal(0, #server:log("get"))
  end)

  it("client_cert and client_key: the request comes with the certificate", function()
    local op = client({ client_cert = server.client_cert, client_key = server.client_key }):get(NAME)
    assert.are.equal(NAME, op.name)
    local log = server:log("get")
    assert.are.equal(1, #log)
    assert.are.equal("CN=fake-client", log[1].client_cert)
  end)

  it("a started request (libcurl's multi interface) comes with the certificate too", function()
    local c = client({ client_cert = server.client_cert, client_key = server.client_key })
    assert.are.equal(NAME, c:start("get", NAME):wait().name)
    assert.are.equal("CN=fake-client", server:log("get")[1].client_cert)
  end)

  it("client_cert alone: one PEM file holding the certificate and its key", function()
    local both = dir .. "/both.pem"
    testing.write(both, testing.read(server.client_cert) .. testing.read(server.client_key))
    client({ client_cert = both }):get(NAME)
    assert.are.equal("CN=fake-client", server:log("get")[1].client_cert)
  end)

  it("a certificate from another CA is refused by the server (400)", function()
    local c = client({ client_cert = other_cert, client_key = other_key })
    assert.are.equal(400, H.raises(c.get, c, NAME).code)
    assert.are.equal(0, #server:log("get"))
  end)

  it("the files are read once per client: gone after the first call, the next calls still have them", function()
    local cert, key = dir .. "/once.pem", dir .. "/once.key"
    testing.write(cert, testing.read(server.client_cert))
    testing.write(key, testing.read(server.client_key))
    local c = client({ client_cert = cert, client_key = key })
    c:get(NAME)
    os.remove(cert)
    os.remove(key)
    c:get(NAME)
    c:cancel(NAME)
    assert.are.equal(3, #server:log())
  end)

  describe("connections are kept apart by client certificate", function()
    it("a connection made without one is not used for a call with one", function()
      local c = client()
      H.raises(c.get, c, NAME)
      c:get(NAME, nil, { client_cert = server.client_cert, client_key = server.client_key })
      assert.are.equal(1, #server:log("get"))
    end)

    it("a connection made with one certificate is not used for a call with another", function()
      local c = client({ client_cert = server.client_cert, client_key = server.client_key })
      c:get(NAME)
      local err = H.raises(c.get, c, NAME, nil, { client_cert = other_cert, client_key = other_key })
      assert.are.equal(400, err.code)
      c:get(NAME) -- the first certificate's connection again
      assert.are.equal(2, #server:log("get"))
      assert.are.equal(2, c:stats().connects) -- one per certificate
    end)
  end)

  describe("bad files are an AuthError naming the option and the path", function()
    it("a file that cannot be read", function()
      local c = client({ client_cert = dir .. "/missing.pem" })
      local err = H.raises(c.get, c, NAME)
      assert.are.equal("AuthError", H.tags(err))
      assert.matches("option 'client_cert': cannot read " .. dir .. "/missing.pem", err.message, 1, true)
    end)

    it("a file without a PEM certificate", function()
      local c = client({ client_cert = server.client_key })
      local err = H.raises(c.get, c, NAME)
      assert.are.equal("AuthError", H.tags(err))
      assert.matches("holds no PEM certificate", err.message, 1, true)
    end)

    it("a key file without a PEM private key", function()
      local c = client({ client_cert = server.client_cert, client_key = server.client_cert })
      local err = H.raises(c.get, c, NAME)
      assert.matches("option 'client_key': .* holds no PEM private key", err.message)
    end)

    it("an encrypted key (no pass-phrase is ever asked for), its bytes never shown", function()
      local enc = dir .. "/enc.key"
      assert(os.execute(("openssl pkey -in '%s' -out '%s' -aes128 -passout pass:pw 2>/dev/null"):format(
        server.client_key, enc)))
      local c = client({ client_cert = server.client_cert, client_key = enc })
      local err = H.raises(c.get, c, NAME)
      assert.are.equal("AuthError", H.tags(err))
      assert.matches("is encrypted", err.message, 1, true)
      assert.is_nil(err.message:find("BEGIN", 1, true))
    end)

    it("client_key without client_cert is a ValueError", function()
      local c = client({ client_key = server.client_key })
      H.value_error("client_key", c.get, c, NAME)
      assert.are.equal(0, #server:log())
    end)
  end)
end)
