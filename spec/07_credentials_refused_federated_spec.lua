-- A 401 or 403 from Vertex names the federated and impersonated credentials it refused
-- (docs/contract.md, "Credentials": the principal is the impersonated account, from
-- service_account_impersonation_url or the impersonate_service_account option, and an
-- external_account_authorized_user's audience), never a subject token, client secret or refresh
-- token; spec/07_credentials_refused_spec.lua has the key files and an external_account without
-- impersonation. The fake refuses the call with a fault; a 401 is refused again after one fresh token.
local H = require "support.helper"

local TARGET = "target@test-project.iam.gserviceaccount.com"
local POOL = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q"
local WORKFORCE = "//iam.googleapis.com/locations/global/workforcePools/pool/providers/oidc"

describe("a 401 or 403 from Vertex, federated and impersonated credentials", function()
  local h = H.credentials_harness()
  local server

  setup(function()
    server = h.server
    H.fake.write(h.dir .. "/subject.txt", "test-subject-token")
    h.file("ea_imp", { type = "external_account", subject_token_type = "urn:ietf:params:oauth:token-type:jwt",
      audience = POOL, token_url = server.endpoint .. "/v1/token", credential_source = { file = h.dir .. "/subject.txt" },
      service_account_impersonation_url = server.endpoint .. "/v1/projects/-/serviceAccounts/" .. TARGET
        .. ":generateAccessToken" })
    h.file("wfu", { type = "external_account_authorized_user", audience = WORKFORCE,
      client_id = "test-workforce-client", client_secret = "test-workforce-secret",
      refresh_token = "test-workforce-refresh", token_url = server.endpoint .. "/v1/oauthtoken" })
    H.authorized_user(h.dir .. "/user.json", server.endpoint)
    h.files.user = h.dir .. "/user.json"
  end)

  local function refused(name, status, extra)
    local o = { retry = false }
    for k, v in pairs(extra or {}) do o[k] = v end
    local c = h.client(name, o)
    server:fault { match = "get", status = status, times = 2 }
    local err = h.raises(function() c:get(server:create {}.name) end)
    assert.are.equal(status, err.code)
    assert.are.equal("HttpError", err.tags[1])
    for _, secret in ipairs { "test-subject-token", "test-workforce-secret", "test-workforce-refresh", "test-secret",
                              "test-refresh", "ya29" } do
      assert.is_nil(tostring(err):find(secret, 1, true), tostring(err))
    end
    return err, tostring(err)
  end

  it("names the impersonated account of an external_account with service_account_impersonation_url", function()
    local err, msg = refused("ea_imp", 403)
    assert.are.equal("external_account", err.credential_type)
    assert.are.equal(TARGET, err.principal)
    assert.is_truthy(msg:find("principal " .. TARGET, 1, true), msg)
  end)

  it("names it on a 401 that a fresh token did not cure", function()
    local err = refused("ea_imp", 401)
    assert.are.equal(2, #server:log("get"))
    assert.are.equal(TARGET, err.principal)
  end)

  it("names the audience of an external_account_authorized_user", function()
    local err = refused("wfu", 403)
    assert.are.equal("external_account_authorized_user", err.credential_type)
    assert.are.equal(WORKFORCE, err.principal)
  end)

  it("names the account the impersonate_service_account option impersonates", function()
    local err = refused("user", 403, { impersonate_service_account = TARGET, iam_endpoint = server.endpoint })
    assert.are.equal(TARGET, err.principal)
    assert.is_truthy(err.credential_source:find("authorized_user", 1, true), err.credential_source)
  end)
end)
