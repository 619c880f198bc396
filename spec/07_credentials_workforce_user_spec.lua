-- external_account_authorized_user credentials (workforce identity federation's users;
-- docs/contract.md, "Credentials"): the refresh at token_url through real sockets against the fake's
-- STS (lua/vertexops/testing/sts.lua, POST /v1/oauthtoken). The fake's log is the witness, compared
-- with what google-auth sends: google-auth-library-nodejs 11.3.4,
-- build/src/auth/externalAccountAuthorizedUserClient.js refreshToken (a form of grant_type=refresh_token
-- and refresh_token only; the client as HTTP Basic, confidentialClientType "basic"; default token_url
-- https://sts.{universeDomain}/v1/oauthtoken; a refresh_token in the answer replaces the old one).
local mime = require "mime"
local H = require "support.helper"

local AUDIENCE = "//iam.googleapis.com/locations/global/workforcePools/pool/providers/oidc"

describe("external_account_authorized_user credentials", function()
  local h = H.credentials_harness()
  local client = h.client
  local server

  local function wfu(name, extra, drop)
    local d = { type = "external_account_authorized_user", audience = AUDIENCE,
                client_id = "test-workforce-client", client_secret = "test-workforce-secret",
                refresh_token = "test-workforce-refresh", token_url = server.endpoint .. "/v1/oauthtoken",
                token_info_url = server.endpoint .. "/v1/introspect",
                revoke_url = server.endpoint .. "/v1/revoke", quota_project_id = "quota-proj" }
    for k, v in pairs(extra or {}) do d[k] = v end
    for _, k in ipairs(drop or {}) do d[k] = nil end
    h.file(name, d)
  end

  setup(function()
    server = h.server
    wfu("user")
    wfu("no_secret", nil, { "client_secret" })
    wfu("bad_url", { token_url = "http://example.com/v1/oauthtoken" })
    wfu("bad_revoke", { revoke_url = 7 })
    wfu("other_universe", { universe_domain = "example.test" })
  end)

  it("refreshes at token_url with google-auth's form and the client as HTTP Basic", function()
    client("user"):get(server:create {}.name)
    local sts = server:log("sts")
    assert.are.equal(1, #sts)
    assert.are.equal("/v1/oauthtoken", sts[1].path)
    assert.are.equal("grant_type=refresh_token&refresh_token=test-workforce-refresh", sts[1].body)
    assert.matches("^application/x%-www%-form%-urlencoded", sts[1].headers["content-type"])
    local basic = sts[1].headers.authorization:match("^Basic (.+)$")
    assert.are.equal("test-workforce-client:test-workforce-secret", (mime.unb64(basic)))
    assert.matches("^Bearer ya29%.wfu%-", server:log("get")[1].headers.authorization)
  end)

  it("sends the file's quota_project_id as x-goog-user-project", function()
    client("user"):get(server:create {}.name)
    assert.are.equal("quota-proj", server:log("get")[1].headers["x-goog-user-project"])
  end)

  it("keeps the token: a second call makes no refresh", function()
    local c = client("user")
    local op = server:create {}
    c:get(op.name)
    c:get(op.name)
    assert.are.equal(1, #server:log("sts"))
  end)

  it("refreshes 300 s before expires_in, by the injected clock", function()
    local t = H.fake_time()
    local c = client("user", { clock = t.clock, sleep = t.sleep })
    local op = server:create {}
    c:get(op.name)
    t.now = t.now + 3600 - 300 - 1
    c:get(op.name)
    assert.are.equal(1, #server:log("sts"))
    t.now = t.now + 2
    c:get(op.name)
    assert.are.equal(2, #server:log("sts"))
  end)

  it("uses a rotated refresh_token from the answer for the next refresh", function()
    server:sts { rotate_refresh_token = "test-workforce-refresh-2", expires_in = 301 }
    local t = H.fake_time()
    local c = client("user", { clock = t.clock, sleep = t.sleep })
    local op = server:create {}
    c:get(op.name)
    t.now = t.now + 2
    c:get(op.name)
    local sts = server:log("sts")
    assert.are.equal(2, #sts)
    assert.are.equal("grant_type=refresh_token&refresh_token=test-workforce-refresh-2", sts[2].body)
  end)

  it("defaults token_url to https://sts.{universe_domain}/v1/oauthtoken", function()
    local m = require "vertexops.auth.external_account_authorized_user"
    assert.are.equal("https://sts.googleapis.com/v1/oauthtoken", m.default_token_url())
    assert.are.equal("https://sts.example.test/v1/oauthtoken", m.default_token_url("example.test"))
  end)

  it("raises AuthError with Google's error when the STS refuses the refresh token, never the secret", function()
    server:sts { refresh_token = "another" }
    local err = H.raises(function() client("user"):get(server:create {}.name) end)
    assert.are.equal("AuthError", H.tags(err))
    assert.matches("invalid_grant", tostring(err))
    assert.matches("external_account_authorized_user file", tostring(err))
    assert.is_nil(tostring(err):find("test-workforce-refresh", 1, true))
    assert.is_nil(tostring(err):find("test-workforce-secret", 1, true))
  end)

  it("raises AuthError invalid_client when the client is refused", function()
    server:sts { refresh_client_secret = "other" }
    local err = H.raises(function() client("user"):get(server:create {}.name) end)
    assert.are.equal("AuthError", H.tags(err))
    assert.matches("invalid_client", tostring(err))
    assert.are.equal(401, err.code)
  end)

  it("refuses a file without client_secret before any request", function()
    local err = H.raises(function() client("no_secret"):get("projects/p/locations/us-central1/operations/1") end)
    assert.are.equal("AuthError", H.tags(err))
    assert.matches("has no 'client_secret'", tostring(err))
    assert.are.equal(0, #server:log())
  end)

  it("refuses a token_url the endpoint rules refuse before any request", function()
    local err = H.raises(function() client("bad_url"):get("projects/p/locations/us-central1/operations/1") end)
    assert.are.equal("AuthError", H.tags(err))
    assert.matches("token_url", tostring(err))
    assert.are.equal(0, #server:log())
  end)

  it("refuses a revoke_url that is not a string", function()
    local err = H.raises(function() client("bad_revoke"):get("projects/p/locations/us-central1/operations/1") end)
    assert.matches("'revoke_url' that is not a non%-empty string", tostring(err))
  end)

  it("checks the file's universe_domain against the client's", function()
    local err = H.raises(function() client("other_universe"):get("projects/p/locations/us-central1/operations/1") end)
    assert.are.equal("AuthError", H.tags(err))
    assert.matches("example%.test", tostring(err))
    assert.are.equal(0, #server:log())
  end)
end)
