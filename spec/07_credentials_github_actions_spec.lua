-- external_account credentials of the shape GitHub Actions' OIDC gives (google-github-actions/auth
-- writes it; docs/contract.md, "Credentials", and README.md show the file): a url source
-- ACTIONS_ID_TOKEN_REQUEST_URL with "&audience=" and the percent-encoded audience appended, the header
-- "Authorization: Bearer ACTIONS_ID_TOKEN_REQUEST_TOKEN", the JSON answer's field "value", and
-- service_account_impersonation_url. Through real sockets against the fake's subject-token URL, STS
-- and IAM Credentials (lua/vertexops/testing/sts.lua); the fake's log is the witness.
local cjson = require "cjson"
local H = require "support.helper"

local AUD = "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/github/providers/gh"
-- what google-github-actions/auth appends: encodeURIComponent("https:" .. AUD)
local AUD_QUERY = "https%3A%2F%2Fiam.googleapis.com%2Fprojects%2F123%2Flocations%2Fglobal"
  .. "%2FworkloadIdentityPools%2Fgithub%2Fproviders%2Fgh"
local QUERY = "api-version=2.0&audience=" .. AUD_QUERY
local JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
local SA = "deployer@test-project.iam.gserviceaccount.com"
local REQUEST_TOKEN = "gh-request-token-secret" -- ACTIONS_ID_TOKEN_REQUEST_TOKEN
local ID_TOKEN = "eyJhbGciOiJSUzI1NiJ9.gh-oidc-claims.gh-oidc-signature" -- the answer's "value"

local function form(body)
  local out = {}
  for pair in (body or ""):gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=(.*)$")
    out[k] = v:gsub("%%(%x%x)", function(x) return string.char(tonumber(x, 16)) end)
  end
  return out
end

describe("external_account credentials from GitHub Actions' OIDC", function()
  local h = H.credentials_harness()
  local server

  setup(function()
    server = h.server
    h.file("github", {
      type = "external_account",
      audience = AUD,
      subject_token_type = JWT_TYPE,
      token_url = server.endpoint .. "/v1/token",
      service_account_impersonation_url = server.endpoint .. "/v1/projects/-/serviceAccounts/" .. SA
        .. ":generateAccessToken",
      credential_source = {
        url = server.endpoint .. "/subject_token?" .. QUERY,
        headers = { Authorization = "Bearer " .. REQUEST_TOKEN },
        format = { type = "json", subject_token_field_name = "value" },
      },
    })
  end)

  -- what GitHub's token service does: the request token as a bearer, the ID token as {"value": ...}
  local function github(extra)
    local s = { subject_token = ID_TOKEN, subject_token_format = "json", subject_token_field = "value",
                subject_token_headers = { Authorization = "Bearer " .. REQUEST_TOKEN },
                audience = AUD, service_account = SA }
    for k, v in pairs(extra or {}) do s[k] = v end
    server:sts(s)
  end

  it("GETs the URL with its query as written (the audience stays percent-encoded) and the bearer header", function()
    github()
    h.client("github"):get(server:create {}.name)
    local got = server:log("subject_token")
    assert.are.equal(1, #got)
    assert.are.equal("GET", got[1].method)
    assert.are.equal("/subject_token", got[1].path)
    assert.are.equal(QUERY, got[1].query)
    assert.are.equal("Bearer " .. REQUEST_TOKEN, got[1].headers.authorization)
  end)

  it("exchanges the JSON answer's value at STS as a JWT for the pool's audience", function()
    github()
    h.client("github"):get(server:create {}.name)
    local sts = server:log("sts")
    assert.are.equal(1, #sts)
    local f = form(sts[1].body)
    assert.are.equal(ID_TOKEN, f.subject_token)
    assert.are.equal(JWT_TYPE, f.subject_token_type)
    assert.are.equal(AUD, f.audience)
  end)

  it("impersonates the service account with the STS token, and calls Vertex with IAM's token", function()
    github()
    h.client("github"):get(server:create {}.name)
    local iam = server:log("iam")
    assert.are.equal(1, #iam)
    assert.are.equal("/v1/projects/-/serviceAccounts/" .. SA .. ":generateAccessToken", iam[1].path)
    assert.matches("^Bearer ya29%.sts%-", iam[1].headers.authorization)
    assert.are.equal("3600s", cjson.decode(iam[1].body).lifetime)
    assert.matches("^Bearer ya29%.iam%-", server:log("get")[1].headers.authorization)
  end)

  it("is an AuthError naming the subject token URL when the request token is refused, nothing exchanged", function()
    github { subject_token_headers = { Authorization = "Bearer another-request-token" } }
    local c = h.client("github")
    local err = h.raises(c.get, c, H.NAME .. "1")
    assert.are.equal("AuthError", H.tags(err))
    assert.is_truthy(err.message:find("subject token URL " .. server.endpoint .. "/subject_token", 1, true),
      err.message)
    assert.matches("401", err.message)
    assert.are.equal(0, #server:log("sts"))
    assert.are.equal(0, #server:log("iam"))
  end)

  it("is an AuthError naming the field when the answer has no value", function()
    github { subject_token_field = "token" }
    local c = h.client("github")
    local err = h.raises(c.get, c, H.NAME .. "1")
    assert.are.equal("AuthError", H.tags(err))
    assert.matches("answered no string 'value'", err.message)
    assert.are.equal(0, #server:log("sts"))
  end)

  it("never shows the request token or the ID token in an error", function()
    assert.is_true(#h.errors >= 2)
    for _, msg in ipairs(h.errors) do
      for _, secret in ipairs { REQUEST_TOKEN, ID_TOKEN, "ya29." } do
        assert.is_falsy(msg:find(secret, 1, true), "secret in: " .. msg)
      end
    end
  end)
end)
