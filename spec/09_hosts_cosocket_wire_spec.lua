-- make test: once
-- The cosocket transport writes a built request's bytes once and sends them again on that request's
-- later exchanges (lua/vertexops/transport/cosocket.lua, wire_of): what reaches the server is still
-- each call's own, and the checks of the token still run for every token.
local H = require "support.helper"
local openresty = require "support.openresty"

describe("cosocket transport: a request's bytes written once", function()
  local fake = H.fake_server()
  local server, app

  setup(function() app = openresty.start(fake.server) end)
  teardown(function() app:stop() end)
  before_each(function() server = fake.server end)

  local function authorizations(call)
    local seen = {}
    for i, e in ipairs(server:log(call)) do seen[i] = e.headers.authorization end
    return seen
  end

  it("sends each call's own token on a request its client built once", function()
    server:tokens { "token-1", "token-2", "token-3" }
    local op = server:create {}
    app:result([[
      local n = 0
      local c = vertexops.client(T.opts { token = function() n = n + 1 return "token-" .. n end })
      for _ = 1, 3 do c:get(args.name) end
      return true]], { name = op.name })
    assert.are.same({ "Bearer token-1", "Bearer token-2", "Bearer token-3" }, authorizations("get"))
  end)

  it("raises AuthError before any I/O for a token unfit for a header, on a request it sent before", function()
    local op = server:create {}
    local doc = app:run([[
      local tokens = { "test-token", "bad\r\nX-Injected: 1" }
      local n = 0
      local c = vertexops.client(T.opts { token = function() n = n + 1 return tokens[n] end })
      c:get(args.name)
      return c:get(args.name)]], { name = op.name })
    assert.is_false(doc.ok)
    assert.are.same({ "AuthError" }, doc.error.tags)
    assert.are.equal(1, #server:log("get"))
    assert.is_nil(server:log("get")[1].headers["x-injected"])
  end)

  it("sends the same request again on the same connection, each answer read whole", function()
    local op = server:create {}
    app:result([[
      local c = vertexops.client(T.opts())
      for _ = 1, 5 do c:cancel(args.name) end
      return true]], { name = op.name })
    local log = server:log("cancel")
    assert.are.equal(5, #log)
    for _, e in ipairs(log) do
      assert.are.equal("Bearer test-token", e.headers.authorization)
      assert.are.equal("0", e.headers["content-length"])
    end
    assert.are.equal(1, server:connections())
  end)
end)
