-- make test: once
-- A service-account key file inside nginx (spec/support/openresty.lua): testing.make_key_file's
-- (token_uri on localhost) works over cosockets; a token_uri by IP address, which cosockets
-- refuse, is an AuthError naming the token_uri and the key file, not a ValueError about "the endpoint".
local cjson = require "cjson"
local testing = require "vertexops.testing"
local H = require "support.helper"
local openresty = require "support.openresty"

describe("cosocket transport, a service-account key file", function()
  local fake = H.fake_server()
  local app, dir

  setup(function()
    app = openresty.start(fake.server)
    dir = H.fake.tmpdir()
    os.execute("chmod 755 '" .. dir .. "'") -- nginx's workers read the key files
  end)
  teardown(function()
    app:stop()
    os.execute("rm -rf '" .. dir .. "'")
  end)

  local function cancel(path, name)
    return app:result([[
      local ok, err = pcall(vertexops.cancel, args.name, nil, { credentials = args.path })
      return { ok = ok, tags = not ok and err.tags or nil, message = not ok and err.message or nil }]],
      { name = name or H.NAME .. "1", path = path })
  end

  it("from testing.make_key_file: one token request, then the cancel with the fake's token", function()
    local server = fake.server
    local path = testing.make_key_file(dir .. "/sa.json", server)
    local res = cancel(path, server:create { done_after = 30 }.name)
    assert.is_true(res.ok, cjson.encode(res))
    assert.are.equal(1, #server:log("token"))
    assert.matches("^Bearer ya29%.fake%-", server:log("cancel")[1].headers.authorization)
  end)

  it("with a token_uri by IP address: AuthError naming the token_uri and the file", function()
    local server = fake.server
    local path = testing.make_key_file(dir .. "/ip.json", server)
    local key = cjson.decode(H.read(path))
    key.token_uri = server.endpoint .. "/token" -- https://127.0.0.1:PORT/token
    H.fake.write(path, cjson.encode(key))
    local res = cancel(path)
    assert.are.same({ "AuthError" }, res.tags, cjson.encode(res))
    assert.matches("token_uri " .. server.endpoint .. "/token of service_account file " .. path, res.message, 1, true)
    assert.matches("IP address", res.message, 1, true)
    assert.are.equal(0, #server:log())
  end)
end)
