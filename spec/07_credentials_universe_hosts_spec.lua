-- STS and IAM Credentials hosts follow the universe domain (docs/contract.md, "Credentials"), where
-- google-auth builds them: an external_account file without token_url exchanges at
-- https://sts.{universe_domain}/v1/token (google-auth-library-nodejs baseexternalclient.js
-- DEFAULT_TOKEN_URL), an external_account_authorized_user file refreshes at
-- https://sts.{universe_domain}/v1/oauthtoken, and an impersonation the library builds (the
-- impersonate_service_account option) calls https://iamcredentials.{universe_domain}/v1/... (impersonated.js).
-- The shared_dict key of every credential names its universe. Hosts of another universe do not
-- resolve here: the AuthError names the URL that was tried (retry off: one try).
local vertexops = require "vertexops"
local auth = require "vertexops.auth"
local sts = require "vertexops.auth.sts"
local cjson = require "cjson"
local H = require "support.helper"

local UD = "example-cloud.test"

describe("STS and IAM Credentials hosts of a universe", function()
  local dir
  setup(function()
    dir = H.fake.tmpdir()
    H.fake.write(dir .. "/subject.txt", "test-subject-token")
  end)
  teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

  local function file(name, d)
    local path = dir .. "/" .. name .. ".json"
    H.fake.write(path, cjson.encode(d))
    return path
  end

  local function ea(universe)
    return file("ea-" .. tostring(universe), {
      type = "external_account", subject_token_type = "urn:ietf:params:oauth:token-type:jwt",
      audience = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q",
      credential_source = { file = dir .. "/subject.txt" }, universe_domain = universe })
  end

  local function fails_at(path, universe)
    local c = vertexops.client { credentials = path, universe_domain = universe, retry = false,
                                 endpoint = "https://127.0.0.1:9", connect_timeout = 2 }
    local err = H.raises(function() c:get("projects/p/locations/us-central1/operations/1") end)
    assert.are.equal("AuthError", H.tags(err))
    return tostring(err)
  end

  it("builds the STS token URL of a universe", function()
    assert.are.equal("https://sts.googleapis.com/v1/token", sts.token_url())
    assert.are.equal("https://sts." .. UD .. "/v1/token", sts.token_url(UD))
  end)

  it("builds the generateAccessToken URL of a universe", function()
    assert.are.equal("https://iamcredentials." .. UD .. "/v1/projects/-/serviceAccounts/a@b.iam.gserviceaccount.com"
      .. ":generateAccessToken", sts.iam_url(UD, "a@b.iam.gserviceaccount.com"))
  end)

  it("exchanges an external_account's subject token at sts.{universe_domain} when the file has no token_url", function()
    local msg = fails_at(ea(UD), UD)
    assert.is_truthy(msg:find("STS token exchange at https://sts." .. UD .. "/v1/token", 1, true), msg)
  end)

  it("exchanges at sts.googleapis.com when the file names no universe", function()
    local msg = fails_at(ea(nil), nil)
    assert.is_truthy(msg:find("STS token exchange at https://sts.googleapis.com/v1/token", 1, true), msg)
  end)

  it("refreshes an external_account_authorized_user at sts.{universe_domain}/v1/oauthtoken", function()
    local path = file("wfu", { type = "external_account_authorized_user", client_id = "c", client_secret = "s",
                               refresh_token = "r", universe_domain = UD })
    local msg = fails_at(path, UD)
    assert.is_truthy(msg:find("refresh at https://sts." .. UD .. "/v1/oauthtoken", 1, true), msg)
  end)

  it("names the universe in the shared_dict key of every credential", function()
    local p = auth.provider { universe_domain = UD }
    p.src = require("vertexops.auth.metadata").source()
    local key = auth.shared_key(p)
    assert.is_truthy(key:find(#UD .. ":" .. UD, 1, true), key)
    local q = auth.provider {}
    q.src = p.src
    assert.are_not.equal(key, auth.shared_key(q))
    assert.is_truthy(auth.shared_key(q):find("14:googleapis.com", 1, true))
  end)

  it("keys a key file's token by the file's universe", function()
    local p = auth.provider { credentials = ea(UD), universe_domain = UD }
    assert.is_truthy(auth.shared_key(p):find(#UD .. ":" .. UD, 1, true))
  end)
end)
