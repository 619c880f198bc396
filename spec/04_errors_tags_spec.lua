-- Every error tag of the contract, reached through a real socket.
local vertexops = require "vertexops"
local H = require "support.helper"

describe("errors", function()
  local fake = H.fake_server()
  local server, o
  before_each(function()
    server = fake.server
    o = H.opts(server, { retry = false })
  end)

  describe("ConnectionFailedError", function()
    it("is raised, with ConnectionError, for a refused port", function()
      local err = H.raises(vertexops.cancel, H.NAME .. "1", nil,
        { endpoint = "http://127.0.0.1:" .. H.closed_port(), token = "t", retry = false })
      assert.are.equal("ConnectionFailedError,ConnectionError", H.tags(err))
      assert.is_true(vertexops.is(err, "ConnectionError"))
      assert.matches("onnect", err.message)
    end)

    it("names the certificate problem for an untrusted server", function()
      local dir = os.tmpname()
      os.remove(dir)
      os.execute("mkdir -p " .. dir)
      H.fake.make_cert(dir)
      local op = server:create {}
      local err = H.raises(vertexops.cancel, op.name, nil, H.opts(server, { ca_file = dir .. "/cert.pem", retry = false }))
      os.execute("rm -rf " .. dir)
      assert.are.equal("ConnectionFailedError,ConnectionError", H.tags(err))
      assert.matches("certificate", err.message)
      assert.are.equal(0, #server:log())
    end)

    it("is raised when the system store does not trust the server", function()
      local err = H.raises(vertexops.get, H.NAME .. "1", nil, { endpoint = server.endpoint, token = "t", retry = false })
      assert.are.equal("ConnectionFailedError,ConnectionError", H.tags(err))
    end)
  end)

  describe("ConnectionError", function()
    it("is raised alone for a connection dropped before the answer", function()
      local op = server:create {}
      server:fault { match = "cancel", drop = "before" }
      local err = H.raises(vertexops.cancel, op.name, nil, o)
      assert.are.equal("ConnectionError", H.tags(err))
      assert.are.equal(1, #server:log())
    end)

    it("is raised for a connection dropped in the middle of the body", function()
      local op = server:create {}
      server:fault { match = "get", drop = "mid" }
      local err = H.raises(vertexops.get, op.name, nil, o)
      assert.are.equal("ConnectionError", H.tags(err))
    end)

    it("is raised for a dropped plain-HTTP/1.1 connection too", function()
      local op = server:create {}
      server:fault { match = "get", drop = "mid" }
      local err = H.raises(vertexops.get, op.name, nil, { endpoint = server.http_endpoint, token = "test-token", retry = false })
      assert.are.equal("ConnectionError", H.tags(err))
    end)
  end)

  describe("TimeoutError", function()
    it("is raised when the server stalls past request_timeout", function()
      local op = server:create {}
      server:fault { match = "cancel", delay = 3 }
      local err = H.raises(vertexops.cancel, op.name, nil, H.opts(server, { request_timeout = 0.3, retry = false }))
      assert.are.equal("TimeoutError", H.tags(err))
    end)

    it("is raised when the server stalls past the call's timeout", function()
      local op = server:create {}
      server:fault { match = "get", delay = 3 }
      local err = H.raises(vertexops.get, op.name, nil, H.opts(server, { timeout = 0.3, retry = false }))
      assert.is_true(vertexops.is(err, "TimeoutError"))
    end)
  end)

  describe("HttpError", function()
    local cases = {
      { 400, "INVALID_ARGUMENT" }, { 403, "PERMISSION_DENIED" }, { 409, "ABORTED" },
      { 500, "INTERNAL" }, { 501, "UNIMPLEMENTED" }, { 429, "RESOURCE_EXHAUSTED" }, { 503, "UNAVAILABLE" },
    }
    for _, c in ipairs(cases) do
      it("carries code, status, body and headers for " .. c[1], function()
        local op = server:create {}
        server:fault { match = "cancel", status = c[1], message = "injected " .. c[1] }
        local err = H.raises(vertexops.cancel, op.name, nil, o)
        assert.are.equal("HttpError", H.tags(err))
        assert.are.equal(c[1], err.code)
        assert.are.equal(c[2], err.status)
        assert.are.equal(c[2], err.body.error.status)
        assert.are.equal("injected " .. c[1], err.body.error.message)
        assert.matches("^application/json", err.headers["content-type"])
        assert.are.equal("HttpError: HTTP server responded with error code " .. c[1] .. ": injected " .. c[1],
          tostring(err))
      end)
    end

    it("is raised for 404 with Google's envelope", function()
      local err = H.raises(vertexops.get, H.NAME .. "nope", nil, o)
      assert.are.equal(404, err.code)
      assert.are.equal("NOT_FOUND", err.status)
      assert.are.equal("type.googleapis.com/google.rpc.ErrorInfo", err.body.error.details[1]["@type"])
    end)

    it("sets details and the ErrorInfo fields from error.details only when it is a list", function()
      local info = '{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"R","domain":"d"}'
      server:fault { match = "get", status = 400, content_type = "application/json",
                     body = '{"error":{"code":400,"details":' .. info .. '}}' }
      server:fault { match = "get", status = 400, content_type = "application/json",
                     body = '{"error":{"code":400,"details":[' .. info .. ']}}' }
      local object = H.raises(vertexops.get, H.NAME .. "1", nil, o)
      local list = H.raises(vertexops.get, H.NAME .. "1", nil, o)
      assert.is_nil(object.details)
      assert.is_nil(object.reason)
      assert.are.equal("R", object.body.error.details.reason) -- the body keeps what came
      assert.are.equal("R", list.details[1].reason)
      assert.are.equal("R", list.reason)
      assert.are.equal("d", list.domain)
    end)

    it("keeps a body that is not JSON as a string", function()
      local op = server:create {}
      server:fault { match = "get", status = 502, body = "<html>Bad Gateway</html>" }
      local err = H.raises(vertexops.get, op.name, nil, o)
      assert.are.equal(502, err.code)
      assert.are.equal("<html>Bad Gateway</html>", err.body)
      assert.is_nil(err.status)
    end)

    it("never puts the token in the message", function()
      local err = H.raises(vertexops.get, H.NAME .. "1", nil, H.opts(server, { token = "sekrit-token-123", retry = false }))
      assert.are.equal(401, err.code)
      assert.not_matches("sekrit", tostring(err))
    end)
  end)

  describe("ResponseTypeError", function()
    it("is raised for a 200 whose body is not JSON", function()
      local op = server:create {}
      server:fault { match = "get", body = "<html>surprise</html>" }
      local err = H.raises(vertexops.get, op.name, nil, H.opts(server))
      assert.are.equal("ResponseTypeError", H.tags(err))
      assert.are.equal(1, #server:log(), "a bad body is not retried")
    end)

    it("is raised for a 200 whose JSON is not an object", function()
      local op = server:create {}
      server:fault { match = "get", body = "[1, 2, 3]" }
      assert.are.equal("ResponseTypeError", H.tags(H.raises(vertexops.get, op.name, nil, o)))
    end)

    it("is raised for a body over 32 MiB, and the handle keeps working", function()
      local op = server:create {}
      local c = vertexops.client(o)
      server:fault { match = "get", size = 33 * 1024 * 1024 }
      local err = H.raises(c.get, c, op.name)
      assert.are.equal("ResponseTypeError", H.tags(err))
      assert.matches("32 MiB", err.message)
      assert.are.equal(op.name, c:get(op.name).name)
    end)
  end)

  describe("error objects", function()
    it("share one metatable and answer is()", function()
      local a = H.raises(vertexops.get, H.NAME .. "x", nil, o)
      local b = H.raises(vertexops.get, 42, nil, o)
      assert.are.equal(getmetatable(a), getmetatable(b))
      assert.is_true(vertexops.is(a, "HttpError"))
      assert.is_false(vertexops.is(a, "TimeoutError"))
      assert.is_false(vertexops.is("not an error", "HttpError"))
      assert.is_true(vertexops.is_error(a))
    end)
  end)
end)
