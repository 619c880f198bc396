-- A cold call in one round trip (docs/contract.md, "Credentials", Self-signed JWTs): with a
-- service-account key and self_signed_jwt, the JWT is the bearer token, so a fresh client's first
-- call is one request (no token endpoint); with the exchange it is two. By default the mode is on
-- when calls go to Google's own hosts (no endpoint option, no VERTEXOPS_ENDPOINT) and off with an
-- endpoint. The fake verifies the JWT against the key testing.make_key_file minted (12_fake_self_signed_jwt).
local vertexops = require "vertexops"
local auth = require "vertexops.auth"
local testing = require "vertexops.testing"
local cjson = require "cjson"
local H = require "support.helper"

local function claims_of(jwt)
  local c = jwt:match("^[%w_-]+%.([%w_-]+)%.[%w_-]+$")
  c = c:gsub("-", "+"):gsub("_", "/")
  return cjson.decode((require("mime").unb64(c .. string.rep("=", (4 - #c % 4) % 4))))
end

describe("self_signed_jwt: a cold call", function()
  local fake = H.fake_server()
  local server, dir, path

  setup(function()
    server = fake.server
    dir = H.fake.tmpdir()
    path = testing.make_key_file(dir .. "/sa.json", server)
  end)
  teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

  local function cold_get(extra)
    local o = { endpoint = server.endpoint, ca_file = server.ca_file, credentials = path, retry = false }
    for k, v in pairs(extra or {}) do o[k] = v end
    local op = server:create {}
    server:reset_log()
    local c = vertexops.client(o)
    c:get(op.name)
    c:close()
    return server:log()
  end

  it("is one request when self-signed: the get, its bearer the JWT, no token endpoint", function()
    local log = cold_get { self_signed_jwt = true }
    assert.are.equal(1, #log)
    assert.are.equal("get", log[1].call)
    local claims = claims_of(log[1].headers.authorization:match("^Bearer (.+)$"))
    assert.are.equal(testing.KEY_FILE_EMAIL, claims.iss)
    assert.are.equal(claims.iss, claims.sub)
    assert.are.equal("https://www.googleapis.com/auth/cloud-platform", claims.scope)
  end)

  it("is two requests with the exchange (self_signed_jwt = false): token, then the get", function()
    local log = cold_get { self_signed_jwt = false }
    assert.are.same({ "token", "get" }, { log[1].call, log[2].call })
    assert.are.equal(2, #log)
  end)

  it("exchanges by default when an endpoint is given", function()
    local log = cold_get()
    assert.are.same({ "token", "get" }, { log[1] and log[1].call, log[2] and log[2].call })
  end)

  it("exchanges by default when VERTEXOPS_ENDPOINT gives the endpoint", function()
    local op = server:create {}
    server:reset_log()
    local out, ok = H.run_lua(([[
      local vertexops = require "vertexops"
      vertexops.client { credentials = %q, retry = false }:get(%q)
      print("ok")
    ]]):format(path, op.name), { VERTEXOPS_ENDPOINT = server.endpoint, VERTEXOPS_CA_FILE = server.ca_file })
    assert.is_true(ok, out)
    assert.are.same({ "token", "get" }, { server:log()[1].call, server:log()[2].call })
  end)

  it("self-signs by default for Google's own hosts (no endpoint): the token is the JWT, nothing sent", function()
    local p = auth.provider { credentials = path, ca_file = server.ca_file }
    local token = p:token()
    assert.are.equal(testing.KEY_FILE_EMAIL, claims_of(token).iss)
    assert.are.equal(0, #server:log())
  end)

  it("decides per call: a provider's JWT never serves a call with an endpoint", function()
    local p = auth.provider { credentials = path, ca_file = server.ca_file }
    local jwt = p:token()
    local token = p:token { endpoint = server.endpoint, ca_file = server.ca_file }
    assert.matches("^ya29%.fake%-", token)
    assert.are_not.equal(jwt, token)
    assert.are.equal(1, #server:log("token"))
    assert.are_not.equal(auth.shared_key(p), auth.shared_key(p, { endpoint = server.endpoint }))
  end)

  it("self_signed_jwt = false is kept without an endpoint", function()
    local p = auth.provider { credentials = path, ca_file = server.ca_file, self_signed_jwt = false }
    assert.matches("^ya29%.fake%-", p:token())
    assert.are.equal(1, #server:log("token"))
  end)
end)
