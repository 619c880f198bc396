-- Connection reuse: a client keeps its libcurl handle and its connection alive.
local vertexops = require "vertexops"
local H = require "support.helper"

describe("connection reuse", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  it("sends 1,000 sequential cancels through one client over one TLS connection", function()
    local op = server:create {}
    local c = vertexops.client(H.opts(server))
    for _ = 1, 1000 do c:cancel(op.name) end
    assert.are.equal(1000, #server:log("cancel"))
    assert.are.equal(1, server:connections())
    local st = c:stats()
    assert.are.same({ requests = 1000, connects = 1 }, { requests = st.requests, connects = st.connects })
  end)

  it("reuses the connection across kinds of call", function()
    local op = server:create {}
    local c = vertexops.client(H.opts(server))
    c:get(op.name)
    c:cancel(op.name)
    c:list(H.PARENT)
    c:delete(op.name)
    assert.are.equal(1, server:connections())
  end)

  it("opens a new connection after the server dropped one", function()
    local op = server:create {}
    local c = vertexops.client { endpoint = server.http_endpoint, token = "test-token" }
    c:get(op.name)
    server:fault { match = "get", drop = "before" }
    c:get(op.name)
    c:get(op.name)
    assert.are.equal(2, c:stats().connects)
  end)

  it("module functions share one default client", function()
    local op = server:create {}
    local o = H.opts(server)
    for _ = 1, 20 do vertexops.get(op.name, nil, o) end
    assert.are.equal(1, server:connections())
    assert.are.equal(vertexops.default_client(), vertexops.default_client())
  end)

  it("a closed client raises a clear error", function()
    local c = vertexops.client(H.opts(server))
    c:close()
    c:close() -- idempotent
    assert.has_error(function() c:get(H.NAME .. "1") end, nil)
    local ok, err = pcall(c.get, c, H.NAME .. "1")
    assert.is_false(ok)
    assert.matches("closed", tostring(err))
  end)
end)
