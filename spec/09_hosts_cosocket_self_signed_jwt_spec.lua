-- make test: once
-- A cold call in one round trip inside nginx (spec/support/openresty.lua, the cosocket transport):
-- with self_signed_jwt, a service-account key file's JWT is the bearer token (no token request),
-- and the fake verifies it against the key testing.make_key_file minted (docs/fake.md,
-- "Self-signed JWTs"); with the exchange it is two requests.
local cjson = require "cjson"
local testing = require "vertexops.testing"
local H = require "support.helper"
local openresty = require "support.openresty"

describe("cosocket transport, self_signed_jwt", function()
  local fake = H.fake_server()
  local app, dir, path

  setup(function()
    app = openresty.start(fake.server)
    dir = H.fake.tmpdir()
    os.execute("chmod 755 '" .. dir .. "'") -- nginx's workers read the key file
    path = testing.make_key_file(dir .. "/sa.json", fake.server)
  end)
  teardown(function()
    app:stop()
    os.execute("rm -rf '" .. dir .. "'")
  end)

  local function cancel(name, self_signed)
    return app:result([[
      local ok, err = pcall(vertexops.cancel, args.name, nil, { credentials = args.path, self_signed_jwt = args.self })
      return { ok = ok, tags = not ok and err.tags or nil, message = not ok and err.message or nil }]],
      { name = name, path = path, self = self_signed })
  end

  it("is one request: the cancel, its bearer the JWT the fake verified", function()
    local server = fake.server
    local res = cancel(server:create { done_after = 30 }.name, true)
    assert.is_true(res.ok, cjson.encode(res))
    local log = server:log()
    assert.are.equal(1, #log)
    assert.are.equal("cancel", log[1].call)
    assert.matches("^Bearer [%w_-]+%.[%w_-]+%.[%w_-]+$", log[1].headers.authorization)
  end)

  it("is two with the exchange: token, then the cancel", function()
    local server = fake.server
    local res = cancel(server:create { done_after = 30 }.name, false)
    assert.is_true(res.ok, cjson.encode(res))
    local log = server:log()
    assert.are.same({ "token", "cancel" }, { log[1].call, log[2] and log[2].call })
  end)
end)
