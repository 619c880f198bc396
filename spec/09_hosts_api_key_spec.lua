-- make test: once
-- The api_key option inside nginx (examples/openresty/nginx.conf, spec/support/openresty.lua):
-- the key goes as x-goog-api-key over the cosocket transport and over a worker thread, with no
-- Authorization header although the app's environment has GOOGLE_OAUTH_ACCESS_TOKEN, and a
-- refusal does not show it.
-- Contract: docs/contract.md, "Hosts" and "Credentials" (api_key).
local cjson = require "cjson"
local H = require "support.helper"
local openresty = require "support.openresty"

local KEY = "AIzaSy-nginx-0123456789abcdef"

describe("api_key in nginx", function()
  local fake = H.fake_server()
  local server, app

  setup(function() app = openresty.start(fake.server) end)
  teardown(function() app:stop() end)
  before_each(function()
    server = fake.server
    server:api_keys { KEY }
  end)

  for _, transport in ipairs { "cosocket", "thread" } do
    it("is sent over the " .. transport .. " transport, with no Authorization header", function()
      local op = server:create {}
      local res = app:result([[return vertexops.get(args.name, nil,
        { api_key = args.key, transport = args.transport, ca_file = args.ca_file })]],
        { name = op.name, key = KEY, transport = transport, ca_file = server.ca_file })
      assert.are.equal(op.name, res.name)
      local log = server:log()
      assert.are.equal(1, #log)
      assert.are.equal("accepted", log[1].api_key)
      assert.is_nil(log[1].headers.authorization)
    end)
  end

  it("does not show in the error of a refused key", function()
    local op = server:create {}
    server:api_keys { "another-key" }
    local doc = app:run([[return vertexops.get(args.name, nil, { api_key = args.key })]], { name = op.name, key = KEY })
    assert.is_false(doc.ok)
    assert.are.equal(400, doc.error.code)
    assert.is_nil(cjson.encode(doc.error):find(KEY, 1, true))
  end)
end)
