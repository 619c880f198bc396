-- impersonated_service_account credentials (docs/contract.md, "Credentials"): the token of
-- source_credentials (service_account, authorized_user, external_account), then IAM Credentials'
-- generateAccessToken with the file's delegates, through real sockets against the fake
-- (lua/vertexops/testing/sts.lua). The fake's log is the witness, compared with what google-auth
-- sends: google-auth-library-nodejs 11.3.4, build/src/auth/impersonated.js refreshToken (POST
-- {"delegates": [...], "scope": [...], "lifetime": "3600s"} with the source's token as Bearer;
-- expireTime parsed as a date) and googleauth.js fromImpersonatedJSON (source_credentials of any
-- type; the target principal from the URL's EMAIL:generateAccessToken).
local cjson = require "cjson"
local H = require "support.helper"

local write = H.fake.write
local SA = "target@test-project.iam.gserviceaccount.com"
local DELEGATES = { "hop1@test-project.iam.gserviceaccount.com", "hop2@test-project.iam.gserviceaccount.com" }

local function bearer(entry) return entry.headers.authorization:match("^Bearer (.+)$") end

describe("impersonated_service_account credentials", function()
  local h = H.credentials_harness()
  local client, raises, seen_errors, files = h.client, h.raises, h.errors, h.files
  local server, dir, key_pem

  local function imp(name, source, extra)
    local d = { type = "impersonated_service_account", source_credentials = source, delegates = DELEGATES,
                service_account_impersonation_url = server.endpoint .. "/v1/projects/-/serviceAccounts/" .. SA
                  .. ":generateAccessToken" }
    for k, v in pairs(extra or {}) do d[k] = v end
    h.file(name, d)
  end

  setup(function()
    server, dir = h.server, h.dir
    key_pem = H.fake.make_rsa_key(dir)
    write(dir .. "/subject.txt", "test-subject-token")
    local user = { type = "authorized_user", client_id = "test-client", client_secret = "test-secret",
                   refresh_token = "test-refresh", token_uri = server.endpoint .. "/token" }
    local sa = { type = "service_account", private_key = key_pem, client_email = "source@test-project.iam.gserviceaccount.com",
                 token_uri = server.endpoint .. "/token" }
    local ea = { type = "external_account", subject_token_type = "urn:ietf:params:oauth:token-type:jwt",
                 audience = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q",
                 token_url = server.endpoint .. "/v1/token", credential_source = { file = dir .. "/subject.txt" } }
    imp("user", user)
    imp("sa", sa)
    imp("ea", ea)
    imp("no_delegates", user, { delegates = cjson.null })
    imp("nested", { type = "impersonated_service_account" })
    imp("bad_source", { type = "authorized_user", client_id = "test-client" })
    imp("bad_url", user, { service_account_impersonation_url = server.endpoint .. "/v1/other" })
  end)


  it("exchanges an authorized_user's token at generateAccessToken with google-auth's body", function()
    client("user", { scopes = { "https://www.googleapis.com/auth/a" } }):get(server:create {}.name)
    local token, iam = server:log("token"), server:log("iam")
    assert.are.equal(1, #token)
    assert.matches("grant_type=refresh_token", token[1].body)
    assert.are.equal(1, #iam)
    assert.are.equal("/v1/projects/-/serviceAccounts/" .. SA .. ":generateAccessToken", iam[1].path)
    assert.matches("^application/json", iam[1].headers["content-type"])
    assert.are.equal("ya29.fake-1", bearer(iam[1]))
    assert.are.same({ delegates = DELEGATES, scope = { "https://www.googleapis.com/auth/a" }, lifetime = "3600s" },
      cjson.decode(iam[1].body))
    assert.matches("^ya29%.iam%-", bearer(server:log("get")[1]))
  end)

  it("sends an empty delegates list as [] when the file has none", function()
    client("no_delegates"):get(server:create {}.name)
    assert.matches('"delegates":%[%]', server:log("iam")[1].body)
  end)

  it("takes a service_account source's token (JWT bearer grant) first", function()
    client("sa"):get(server:create {}.name)
    assert.matches("grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant%-type%%3Ajwt%-bearer", server:log("token")[1].body)
    assert.are.equal("ya29.fake-1", bearer(server:log("iam")[1]))
  end)

  it("takes an external_account source's token (STS, for cloud-platform) first", function()
    client("ea", { scopes = { "https://www.googleapis.com/auth/a" } }):get(server:create {}.name)
    local sts = server:log("sts")
    assert.are.equal(1, #sts)
    assert.is_truthy(sts[1].body:find("&scope=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcloud-platform&", 1, true),
      sts[1].body)
    assert.matches("^ya29%.sts%-", bearer(server:log("iam")[1]))
    assert.are.same({ "https://www.googleapis.com/auth/a" }, cjson.decode(server:log("iam")[1].body).scope)
  end)

  it("keeps the token: a second call makes no token request", function()
    local c = client("user")
    local op = server:create {}
    c:get(op.name)
    c:get(op.name)
    assert.are.equal(1, #server:log("token"))
    assert.are.equal(1, #server:log("iam"))
  end)

  it("refreshes 300 s before the expireTime, by the injected clock", function()
    local t = H.fake_time()
    local c = client("user", { clock = t.clock, sleep = t.sleep })
    local op = server:create {}
    c:get(op.name)
    t.now = t.now + 3200 -- 400 s left (expireTime is to the second: one either way)
    c:get(op.name)
    assert.are.equal(1, #server:log("iam"))
    t.now = t.now + 200 -- 200 s left: replaced, the source's token fetched again too
    c:get(op.name)
    assert.are.equal(2, #server:log("iam"))
    assert.are.equal(2, #server:log("token"))
  end)

  it("names the file and Google's error when the source's token is refused", function()
    server:oauth { refresh_token = "another" }
    local c = client("user")
    local err = raises(c.get, c, H.NAME .. "1")
    assert.are.equal("AuthError", H.tags(err))
    assert.are.equal("invalid_grant", err.error)
    assert.is_truthy(err.message:find(files.user, 1, true), err.message)
    assert.are.equal(0, #server:log("iam"))
  end)

  it("names the impersonation step and Google's status when IAM refuses", function()
    server:fault { match = "iam", status = 403, message = "Permission 'iam.serviceAccounts.getAccessToken' denied" }
    local c = client("user", { retry = false })
    local err = raises(c.get, c, H.NAME .. "1")
    assert.are.equal("AuthError", H.tags(err))
    assert.are.equal(403, err.code)
    assert.is_truthy(err.message:find(files.user .. ": impersonation (generateAccessToken) at ", 1, true), err.message)
    assert.matches("403", err.message)
  end)

  it("that answers slowly is bounded by the call's timeout", function()
    server:fault { match = "iam", delay = 30 }
    local c = client("user")
    local t0 = require("socket").gettime()
    local err = raises(c.get, c, H.NAME .. "1", nil, { timeout = 1 })
    H.within(require("socket").gettime() - t0, 1, "the call")
    assert.are.equal("TimeoutError", H.tags(err))
  end)

  for _, case in ipairs {
    { "nested", "source_credentials has type 'impersonated_service_account'; supported: service_account, "
      .. "authorized_user, external_account, external_account_authorized_user" },
    { "bad_source", "source_credentials (authorized_user) has no 'client_secret'" },
    { "bad_url", "not an https (or loopback http) URL ending in EMAIL:generateAccessToken" },
  } do
    it("refuses a file before any request: " .. case[1], function()
      local c = client(case[1])
      local err = raises(c.get, c, H.NAME .. "1")
      assert.are.equal("AuthError", H.tags(err))
      assert.is_truthy(err.message:find(files[case[1]], 1, true), err.message)
      assert.is_truthy(err.message:find(case[2], 1, true), err.message)
      assert.are.equal(0, #server:log())
    end)
  end

  it("never shows a secret or a token in an error", function()
    assert.is_true(#seen_errors >= 6)
    local secrets = { "test-secret", "test-refresh", "test-subject-token", "ya29.", "PRIVATE KEY",
                      key_pem:match("\n([^\n]+)\n") }
    for _, msg in ipairs(seen_errors) do
      for _, secret in ipairs(secrets) do assert.is_falsy(msg:find(secret, 1, true), "secret in: " .. msg) end
    end
  end)
end)
