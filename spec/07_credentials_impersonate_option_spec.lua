-- The impersonate_service_account option (docs/contract.md, Credentials; the CLI's
-- --impersonate-service-account): the credentials the chain finds become the source of an
-- impersonation, as google-auth's Impersonated credentials (google-auth-library-nodejs 11.3.4
-- build/src/auth/impersonated.js refreshToken: POST {endpoint}/v1/projects/-/serviceAccounts/
-- EMAIL:generateAccessToken, {"delegates": [], "scope": [...], "lifetime": "3600s"}, the source's
-- token as Bearer; endpoint https://iamcredentials.{universeDomain}). The fake's log is the witness;
-- iam_endpoint points IAM Credentials at the fake.
local vertexops = require "vertexops"
local auth = require "vertexops.auth"
local cjson = require "cjson"
local H = require "support.helper"

local TARGET = "target@test-project.iam.gserviceaccount.com"
local UD = "example-cloud.test"

describe("the impersonate_service_account option", function()
  local fake = H.fake_server()
  local server, dir, key_pem
  local files = {}

  setup(function()
    dir = H.fake.tmpdir()
    key_pem = H.fake.make_rsa_key(dir)
  end)
  teardown(function() os.execute("rm -rf '" .. dir .. "'") end)
  before_each(function()
    server = fake.server
    local function file(name, d)
      files[name] = dir .. "/" .. name .. ".json"
      H.fake.write(files[name], cjson.encode(d))
    end
    file("user", { type = "authorized_user", client_id = "test-client", client_secret = "test-secret",
                   refresh_token = "test-refresh", token_uri = server.endpoint .. "/token", quota_project_id = "qp" })
    file("sa_ud", { type = "service_account", private_key = key_pem, client_email = "robot@p.iam.gserviceaccount.com",
                    token_uri = server.endpoint .. "/token", universe_domain = UD })
  end)

  local function client(extra)
    local o = { endpoint = server.endpoint, ca_file = server.ca_file, credentials = files.user,
                impersonate_service_account = TARGET, iam_endpoint = server.endpoint }
    for k, v in pairs(extra or {}) do o[k] = v end
    return vertexops.client(o)
  end

  local function bearer(entry) return entry.headers.authorization:match("^Bearer (.+)$") end

  it("exchanges the source's token at generateAccessToken with google-auth's body", function()
    client({ scopes = { "https://www.googleapis.com/auth/a" } }):get(server:create {}.name)
    local iam = server:log("iam")
    assert.are.equal(1, #server:log("token"))
    assert.are.equal(1, #iam)
    assert.are.equal("/v1/projects/-/serviceAccounts/" .. TARGET .. ":generateAccessToken", iam[1].path)
    assert.are.equal("ya29.fake-1", bearer(iam[1]))
    assert.are.same({ delegates = {}, scope = { "https://www.googleapis.com/auth/a" }, lifetime = "3600s" },
      cjson.decode(iam[1].body))
    assert.matches('^{"delegates":%[%],', iam[1].body)
    assert.matches("^ya29%.iam%-", bearer(server:log("get")[1]))
  end)

  it("asks the source for cloud-platform whatever the scopes", function()
    client({ scopes = { "https://www.googleapis.com/auth/a" } }):get(server:create {}.name)
    assert.is_truthy(server:log("token")[1].body:find("grant_type=refresh_token", 1, true))
    -- an authorized_user's refresh names no scope; the impersonated token carries the call's
    assert.are.same({ "https://www.googleapis.com/auth/a" }, cjson.decode(server:log("iam")[1].body).scope)
  end)

  it("keeps the source's quota project", function()
    client():get(server:create {}.name)
    assert.are.equal("qp", server:log("get")[1].headers["x-goog-user-project"])
  end)

  it("keeps the impersonated token: a second call makes no token request", function()
    local c = client()
    local op = server:create {}
    c:get(op.name)
    c:get(op.name)
    assert.are.equal(1, #server:log("token"))
    assert.are.equal(1, #server:log("iam"))
  end)

  it("names the impersonated account in the shared_dict key, and the source's type", function()
    local p = auth.provider { credentials = files.user, impersonate_service_account = TARGET }
    local key = auth.shared_key(p)
    assert.is_truthy(key:find(TARGET, 1, true), key)
    assert.is_truthy(key:find("authorized_user", 1, true), key)
    assert.are_not.equal(key, auth.shared_key(auth.provider { credentials = files.user }))
  end)

  it("calls iamcredentials.{universe_domain} when no iam_endpoint is given", function()
    local c = vertexops.client { credentials = files.sa_ud, universe_domain = UD, impersonate_service_account = TARGET,
                                 endpoint = "https://127.0.0.1:9", retry = false, connect_timeout = 2 }
    local err = H.raises(function() c:get("projects/p/locations/us-central1/operations/1") end)
    local msg = tostring(err)
    assert.are.equal("AuthError", H.tags(err))
    assert.is_truthy(msg:find("https://iamcredentials." .. UD .. "/v1/projects/-/serviceAccounts/" .. TARGET
      .. ":generateAccessToken", 1, true), msg)
    assert.is_truthy(msg:find("impersonating " .. TARGET, 1, true), msg)
  end)

  it("raises AuthError naming the step when IAM refuses, never the source's secret", function()
    server:sts { service_account = "other@test-project.iam.gserviceaccount.com" }
    local err = H.raises(function() client():get(server:create {}.name) end)
    assert.are.equal("AuthError", H.tags(err))
    assert.matches("impersonation %(generateAccessToken%)", tostring(err))
    assert.are.equal(404, err.code)
    assert.is_nil(tostring(err):find("test-secret", 1, true))
  end)

  it("is a ValueError when it is not an email", function()
    H.value_error("impersonate_service_account", vertexops.client, { impersonate_service_account = "a b@c" })
    H.value_error("impersonate_service_account", vertexops.client, { impersonate_service_account = "nobody" })
  end)

  it("is a ValueError beside token or api_key", function()
    H.value_error("impersonate_service_account", vertexops.client, { impersonate_service_account = TARGET, token = "t" })
    H.value_error("impersonate_service_account", vertexops.client,
      { impersonate_service_account = TARGET, api_key = "k" })
  end)

  it("is a TypeError when it is not a string", function()
    local err = H.raises(vertexops.client, { impersonate_service_account = 7 })
    assert.are.equal("TypeError", H.tags(err))
  end)
end)
