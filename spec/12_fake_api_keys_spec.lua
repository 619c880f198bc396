-- The fake's API keys (express mode, docs/fake.md): x-goog-api-key accepted from api_keys(list),
-- Google's 400 API_KEY_INVALID for another, and a request log that says whether the key arrived
-- without ever holding it.
-- Contract: docs/fake.md, "Tokens and credentials" and "The request log".
local core = require "vertexops.core"
local cjson = require "cjson"
local H = require "support.helper"

local KEY = "fake-spec-key-0123456789"

describe("the fake's API keys", function()
  local fake = H.fake_server()
  local server, h
  before_each(function()
    server = fake.server
    h = core.handle()
  end)
  after_each(function() h:close() end)

  -- a GET of name with the header lines given, no bearer token: ok, result
  local function get(name, ...)
    local req = core.build("get", name, nil, { endpoint = server.endpoint })
    for _, line in ipairs { ... } do req.headers[#req.headers + 1] = line end
    req.ca_file = server.ca_file
    return h:call(req)
  end

  it("accepts testing.API_KEY until api_keys(list) replaces it", function()
    local op = server:create {}
    assert.is_true((get(op.name, "x-goog-api-key: " .. H.fake.API_KEY)))
    server:api_keys { KEY }
    assert.is_false((get(op.name, "x-goog-api-key: " .. H.fake.API_KEY)))
    assert.is_true((get(op.name, "x-goog-api-key: " .. KEY)))
  end)

  it("answers an unknown key with Google's 400 INVALID_ARGUMENT, reason API_KEY_INVALID", function()
    local op = server:create {}
    local ok, err = get(op.name, "x-goog-api-key: not-a-key")
    assert.is_false(ok)
    assert.are.equal(400, err.code)
    assert.are.equal("INVALID_ARGUMENT", err.status)
    assert.are.equal("API_KEY_INVALID", err.reason)
    assert.are.equal("API key not valid. Please pass a valid API key.", err.body.error.message)
  end)

  it("logs whether the key was accepted, and the key nowhere", function()
    local op = server:create {}
    server:api_keys { KEY }
    get(op.name, "x-goog-api-key: " .. KEY)
    get(op.name, "x-goog-api-key: " .. KEY .. "-other")
    get(op.name)
    local log = server:log()
    assert.are.same({ "accepted", "refused" }, { log[1].api_key, log[2].api_key })
    assert.is_nil(log[3].api_key)
    assert.are.equal("(redacted)", log[1].headers["x-goog-api-key"])
    assert.are.equal("(redacted)", log[2].headers["x-goog-api-key"])
    assert.is_nil(cjson.encode(log):find(KEY, 1, true))
  end)

  it("refuses an api_keys list that is not a list of strings, changing nothing", function()
    for _, bad in ipairs { { 1 }, { "" }, { k = "v" } } do
      local err = H.raises(server.api_keys, server, bad)
      assert.are.equal(400, err.code)
    end
    local op = server:create {}
    assert.is_true((get(op.name, "x-goog-api-key: " .. H.fake.API_KEY)))
  end)
end)
