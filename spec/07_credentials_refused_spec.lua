-- A 401 or 403 from Vertex names the credentials it refused (docs/contract.md, "Credentials"): their
-- type, source and principal (a service account's client_email, the impersonated account, a federated
-- credential's audience), never a secret, as google-auth's get_cred_info does when google-api-core
-- adds it to such errors (credential_source, credential_type, principal). The fake refuses with
-- faults; its log shows the call was made with the credentials' token.
local vertexops = require "vertexops"
local cjson = require "cjson"
local H = require "support.helper"

local SA = "robot@test-project.iam.gserviceaccount.com"
local TARGET = "target@test-project.iam.gserviceaccount.com"
local AUDIENCE = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q"

describe("a 401 or 403 from Vertex", function()
  local fake = H.fake_server()
  local server, dir, key_pem
  local files = {}

  setup(function()
    server = fake.server
    dir = H.fake.tmpdir()
    key_pem = H.fake.make_rsa_key(dir)
    H.fake.write(dir .. "/subject.txt", "test-subject-token")
    local function file(name, d)
      files[name] = dir .. "/" .. name .. ".json"
      H.fake.write(files[name], cjson.encode(d))
    end
    local user = { type = "authorized_user", client_id = "test-client", client_secret = "test-secret",
                   refresh_token = "test-refresh", token_uri = server.endpoint .. "/token" }
    file("sa", { type = "service_account", private_key = key_pem, client_email = SA, private_key_id = "kid-1",
                 token_uri = server.endpoint .. "/token" })
    file("user", user)
    file("imp", { type = "impersonated_service_account", source_credentials = user,
                  service_account_impersonation_url = server.endpoint .. "/v1/projects/-/serviceAccounts/" .. TARGET
                    .. ":generateAccessToken" })
    file("ea", { type = "external_account", subject_token_type = "urn:ietf:params:oauth:token-type:jwt",
                 audience = AUDIENCE, token_url = server.endpoint .. "/v1/token",
                 credential_source = { file = dir .. "/subject.txt" } })
  end)
  teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

  local function refused(name, status)
    local c = vertexops.client { endpoint = server.endpoint, ca_file = server.ca_file, credentials = files[name],
                                 retry = false }
    local op = server:create {}
    server:fault { match = "get", status = status, times = 2 }
    local err = H.raises(function() c:get(op.name) end)
    assert.are.equal(status, err.code)
    return err, tostring(err)
  end

  it("names a service account's type, file and client_email on a 403", function()
    local err, msg = refused("sa", 403)
    assert.are.equal("service_account", err.credential_type)
    assert.are.equal(SA, err.principal)
    assert.are.equal("service_account file " .. files.sa, err.credential_source)
    assert.is_truthy(msg:find("(credentials: service_account file " .. files.sa .. ", principal " .. SA .. ")", 1, true), msg)
  end)

  it("names them on a 401 that a fresh token did not cure", function()
    local err, msg = refused("sa", 401)
    assert.are.equal(2, #server:log("get")) -- refused, refreshed, refused again
    assert.are.equal(SA, err.principal)
    assert.is_truthy(msg:find("principal " .. SA, 1, true), msg)
  end)

  it("never shows the private key, the key id or a token", function()
    local _, msg = refused("sa", 403)
    assert.is_nil(msg:find("PRIVATE KEY", 1, true))
    assert.is_nil(msg:find("kid-1", 1, true))
    assert.is_nil(msg:find("ya29", 1, true))
  end)

  it("names the impersonated account of an impersonated_service_account", function()
    local err = refused("imp", 403)
    assert.are.equal("impersonated_service_account", err.credential_type)
    assert.are.equal(TARGET, err.principal)
  end)

  it("names the audience of an external_account without impersonation", function()
    local err, msg = refused("ea", 403)
    assert.are.equal("external_account", err.credential_type)
    assert.are.equal(AUDIENCE, err.principal)
    assert.is_nil(msg:find("test-subject-token", 1, true))
  end)

  it("names no principal for an authorized_user file without an account, nor its secrets", function()
    local err, msg = refused("user", 403)
    assert.are.equal("authorized_user", err.credential_type)
    assert.is_nil(err.principal)
    assert.is_nil(msg:find("test-secret", 1, true))
    assert.is_nil(msg:find("test-refresh", 1, true))
  end)

  it("adds nothing for a token given as an option", function()
    local c = vertexops.client(H.opts(server, { retry = false }))
    local op = server:create {}
    server:fault { match = "get", status = 403 }
    local err = H.raises(function() c:get(op.name) end)
    assert.is_nil(err.credential_type)
    assert.is_nil(tostring(err):find("credentials:", 1, true))
  end)
end)
