-- external_account credentials (workload identity federation; docs/contract.md, "Credentials"):
-- the subject token from a file or a URL, the STS token exchange, the optional impersonation, each
-- through real sockets against the fake's STS, IAM Credentials and subject-token URL
-- (lua/vertexops/testing/sts.lua). The fake's log is the witness of what goes on the wire, compared
-- with what google-auth sends: google-auth-library-nodejs 11.3.4, build/src/auth/stscredentials.js
-- exchangeToken (the form: grant_type, audience, scope, requested_token_type, subject_token,
-- subject_token_type, options), baseexternalclient.js refreshAccessTokenAsync (scope cloud-platform
-- when impersonating; options {"userProject"} only without client authentication) and
-- getImpersonatedAccessToken (Bearer STS token, {"scope": [...], "lifetime": "3600s"}),
-- oauth2common.js (client_id: HTTP Basic), urlsubjecttokensupplier.js (GET with the headers).
local vertexops = require "vertexops"
local auth = require "vertexops.auth"
local cjson = require "cjson"
local H = require "support.helper"

local write = H.fake.write
local AUD = "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/providers/prov"
local WORKFORCE = "//iam.googleapis.com/locations/global/workforcePools/wf-pool/providers/wf-prov"
local JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
local CLOUD = "https://www.googleapis.com/auth/cloud-platform"
local SA = "robot@test-project.iam.gserviceaccount.com"
local SUBJECT = "test-subject-token" -- the fake's default subject token
local CLIENT_SECRET = "ea-client-secret"
local HEADER_SECRET = "header-secret-value"

-- a form body as a list of {name, value}, in order
local function form(body)
  local out = {}
  for pair in (body or ""):gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=(.*)$")
    v = v:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
    out[#out + 1] = { k, v }
  end
  return out
end

local function field(list, name)
  for _, kv in ipairs(list) do
    if kv[1] == name then return kv[2] end
  end
end

local function bearer(entry) return entry.headers.authorization:match("^Bearer (.+)$") end

describe("external_account credentials", function()
  local h = H.credentials_harness()
  local client, raises, seen_errors, files = h.client, h.raises, h.errors, h.files
  local server, dir

  -- writes the credentials file name with the fields of base and extra (extra wins)
  local function ea(name, extra)
    local d = { type = "external_account", audience = AUD, subject_token_type = JWT_TYPE,
                token_url = server.endpoint .. "/v1/token",
                credential_source = { file = dir .. "/subject.txt" } }
    for k, v in pairs(extra or {}) do d[k] = v end
    return h.file(name, d)
  end

  setup(function()
    server, dir = h.server, h.dir
    write(dir .. "/subject.txt", SUBJECT)
    write(dir .. "/subject.json", cjson.encode { id_token = SUBJECT, other = "x" })
    local url = server.endpoint .. "/subject_token"
    local imp = server.endpoint .. "/v1/projects/-/serviceAccounts/" .. SA .. ":generateAccessToken"
    ea("file_text")
    ea("file_json", { credential_source = { file = dir .. "/subject.json",
      format = { type = "json", subject_token_field_name = "id_token" } } })
    ea("url_text", { credential_source = { url = url, headers = { ["X-Token-Request"] = HEADER_SECRET } } })
    ea("url_json", { credential_source = { url = url, format = { type = "json", subject_token_field_name = "id_token" } } })
    ea("impersonate", { service_account_impersonation_url = imp })
    ea("impersonate_1800", { service_account_impersonation_url = imp,
      service_account_impersonation = { token_lifetime_seconds = 1800 } })
    ea("client", { client_id = "ea-client", client_secret = CLIENT_SECRET, audience = WORKFORCE,
      workforce_pool_user_project = "wf-project" })
    ea("workforce", { audience = WORKFORCE, workforce_pool_user_project = "wf-project" })
    ea("missing_file", { credential_source = { file = dir .. "/nowhere.txt" } })
    ea("executable", { credential_source = { executable = { command = "/bin/true" } } })
    ea("aws2", { credential_source = { environment_id = "aws2", region_url = "http://169.254.169.254/x",
      regional_cred_verification_url = "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15" } })
    ea("plain_http", { token_url = "http://sts.example.com/v1/token" })
    ea("workforce_wrong", { workforce_pool_user_project = "wf-project" })
  end)


  describe("file source", function()
    it("exchanges the text file's subject token at token_url with google-auth's form", function()
      local c = client("file_text")
      c:get(server:create {}.name)
      local sts = server:log("sts")
      assert.are.equal(1, #sts)
      assert.are.equal("POST", sts[1].method)
      assert.matches("^application/x%-www%-form%-urlencoded", sts[1].headers["content-type"])
      assert.is_nil(sts[1].headers.authorization)
      assert.are.same({
        { "grant_type", "urn:ietf:params:oauth:grant-type:token-exchange" }, { "audience", AUD }, { "scope", CLOUD },
        { "requested_token_type", "urn:ietf:params:oauth:token-type:access_token" }, { "subject_token", SUBJECT },
        { "subject_token_type", JWT_TYPE } }, form(sts[1].body))
    end)

    it("sends the STS token to Vertex as the bearer", function()
      local c = client("file_text")
      c:get(server:create {}.name)
      assert.matches("^ya29%.sts%-", bearer(server:log("get")[1]))
    end)

    it("reads a JSON file's subject_token_field_name", function()
      client("file_json"):get(server:create {}.name)
      assert.are.equal(SUBJECT, field(form(server:log("sts")[1].body), "subject_token"))
    end)

    it("asks the STS for the client's scopes", function()
      client("file_text", { scopes = { "https://www.googleapis.com/auth/a", "https://www.googleapis.com/auth/b" } })
        :get(server:create {}.name)
      assert.are.equal("https://www.googleapis.com/auth/a https://www.googleapis.com/auth/b",
        field(form(server:log("sts")[1].body), "scope"))
    end)

    it("names the file and the subject token step when the subject token file is missing", function()
      local c = client("missing_file")
      local err = raises(c.get, c, H.NAME .. "1")
      assert.are.equal("AuthError", H.tags(err))
      assert.is_truthy(err.message:find(files.missing_file, 1, true), err.message)
      assert.is_truthy(err.message:find("subject token file " .. dir .. "/nowhere.txt cannot be opened", 1, true),
        err.message)
      assert.are.equal(0, #server:log())
    end)
  end)

  describe("url source", function()
    it("GETs the subject token with the configured headers (text format)", function()
      server:sts { subject_token_headers = { ["X-Token-Request"] = HEADER_SECRET } }
      client("url_text"):get(server:create {}.name)
      local got = server:log("subject_token")
      assert.are.equal(1, #got)
      assert.are.equal("GET", got[1].method)
      assert.are.equal(HEADER_SECRET, got[1].headers["x-token-request"])
      assert.are.equal(SUBJECT, field(form(server:log("sts")[1].body), "subject_token"))
    end)

    it("reads the JSON format's subject_token_field_name", function()
      server:sts { subject_token_format = "json" }
      client("url_json"):get(server:create {}.name)
      assert.are.equal(SUBJECT, field(form(server:log("sts")[1].body), "subject_token"))
    end)

    it("names the subject token step when the URL refuses (and never shows the header's value)", function()
      server:sts { subject_token_headers = { ["X-Token-Request"] = "another value" } }
      local c = client("url_text")
      local err = raises(c.get, c, H.NAME .. "1")
      assert.are.equal("AuthError", H.tags(err))
      assert.is_truthy(err.message:find(files.url_text .. ": subject token URL " .. server.endpoint
        .. "/subject_token failed: ", 1, true), err.message)
      assert.matches("401", err.message)
      assert.are.equal(0, #server:log("sts"))
    end)

    it("refuses a text answer longer than 4 KiB instead of cutting it", function()
      server:sts { subject_token = string.rep("t", 5000) }
      local c = client("url_text")
      local err = raises(c.get, c, H.NAME .. "1")
      assert.are.equal("AuthError", H.tags(err))
      assert.matches("subject token URL .* answered a subject token longer than 4 KiB", err.message)
      assert.are.equal(0, #server:log("sts"))
    end)

    it("names the subject token step when a JSON answer lacks the field", function()
      server:sts { subject_token_format = "json", subject_token_field = "access_token" }
      local c = client("url_json")
      local err = raises(c.get, c, H.NAME .. "1")
      assert.matches("subject token URL .* answered no string 'id_token'", err.message)
    end)
  end)

  describe("STS", function()
    it("authenticates the client with HTTP Basic and sends no options then", function()
      server:sts { client_id = "ea-client", client_secret = CLIENT_SECRET }
      client("client"):get(server:create {}.name)
      local sts = server:log("sts")[1]
      local basic = sts.headers.authorization:match("^Basic (.+)$")
      local mime = require "mime"
      assert.are.equal("ea-client:" .. CLIENT_SECRET, (mime.unb64(basic)))
      assert.is_nil(field(form(sts.body), "options"))
      assert.is_nil(field(form(sts.body), "client_secret"))
    end)

    it("sends a workforce pool's user project in options without client authentication", function()
      client("workforce"):get(server:create {}.name)
      local f = form(server:log("sts")[1].body)
      assert.are.equal("options", f[#f][1])
      assert.are.same({ userProject = "wf-project" }, cjson.decode(f[#f][2]))
    end)

    it("refuses a workforce_pool_user_project for an audience that is not a workforce pool's", function()
      local c = client("workforce_wrong")
      local err = raises(c.get, c, H.NAME .. "1")
      assert.are.equal("AuthError", H.tags(err))
      assert.matches("workforce_pool_user_project but its audience is not a workforce pool's", err.message)
      assert.are.equal(0, #server:log())
    end)

    it("raises AuthError with Google's error and error_description, naming the STS step", function()
      server:sts { subject_token_expired = true }
      local c = client("file_text")
      local err = raises(c.get, c, H.NAME .. "1")
      assert.are.equal("AuthError", H.tags(err))
      assert.are.equal("invalid_grant", err.error)
      assert.are.equal(400, err.code)
      assert.is_truthy(err.message:find(files.file_text .. ": STS token exchange at " .. server.endpoint
        .. "/v1/token refused the credentials", 1, true), err.message)
      assert.matches("invalid_grant: ID Token issued at 1000 is stale to sign%-in", err.message)
      assert.are.equal(0, #server:log("get"))
    end)

    it("raises AuthError for an audience the STS does not know", function()
      server:sts { audience = "//iam.googleapis.com/another" }
      local c = client("file_text")
      local err = raises(c.get, c, H.NAME .. "1")
      assert.are.equal("invalid_target", err.error)
    end)

    it("that answers slowly is bounded by the call's timeout", function()
      server:fault { match = "sts", delay = 30 }
      local c = client("file_text")
      local t0 = require("socket").gettime()
      local err = raises(c.get, c, H.NAME .. "1", nil, { timeout = 1 })
      H.within(require("socket").gettime() - t0, 1, "the call")
      assert.are.equal("TimeoutError", H.tags(err))
    end)

    it("retries a 503 of the STS like any token request", function()
      server:fault { match = "sts", status = 503 }
      local c = client("file_text", { retry = { initial_delay = 0.01, max_delay = 0.01 } })
      c:get(server:create {}.name)
      assert.are.equal(2, #server:log("sts"))
    end)
  end)

  describe("impersonation", function()
    it("exchanges the STS token (asked for cloud-platform) at generateAccessToken with google-auth's body", function()
      client("impersonate", { scopes = { "https://www.googleapis.com/auth/a" } }):get(server:create {}.name)
      local sts, iam = server:log("sts"), server:log("iam")
      assert.are.equal(CLOUD, field(form(sts[1].body), "scope"))
      assert.are.equal(1, #iam)
      assert.are.equal("POST", iam[1].method)
      assert.are.equal("/v1/projects/-/serviceAccounts/" .. SA .. ":generateAccessToken", iam[1].path)
      assert.matches("^application/json", iam[1].headers["content-type"])
      assert.matches("^ya29%.sts%-", bearer(iam[1]))
      assert.are.same({ scope = { "https://www.googleapis.com/auth/a" }, lifetime = "3600s" },
        cjson.decode(iam[1].body))
      assert.matches("^ya29%.iam%-", bearer(server:log("get")[1]))
    end)

    it("asks for service_account_impersonation.token_lifetime_seconds", function()
      client("impersonate_1800"):get(server:create {}.name)
      assert.are.equal("1800s", cjson.decode(server:log("iam")[1].body).lifetime)
    end)

    it("names the impersonation step and Google's status when IAM refuses", function()
      server:sts { service_account = "another@test-project.iam.gserviceaccount.com" }
      local c = client("impersonate")
      local err = raises(c.get, c, H.NAME .. "1")
      assert.are.equal("AuthError", H.tags(err))
      assert.are.equal(404, err.code)
      assert.are.equal("NOT_FOUND", err.status)
      assert.is_truthy(err.message:find(files.impersonate .. ": impersonation (generateAccessToken) at "
        .. server.endpoint .. "/v1/projects/-/serviceAccounts/" .. SA .. ":generateAccessToken failed: ", 1, true),
        err.message)
      assert.matches("Gaia id not found", err.message)
    end)

    it("refreshes before the expireTime IAM gave, by the injected clock", function()
      local t = H.fake_time()
      local c = client("impersonate_1800", { clock = t.clock, sleep = t.sleep })
      local op = server:create {}
      c:get(op.name)
      t.now = t.now + 1400 -- 400 s left (expireTime is to the second: one either way)
      c:get(op.name)
      assert.are.equal(1, #server:log("iam"))
      t.now = t.now + 200 -- 200 s left: replaced
      c:get(op.name)
      assert.are.equal(2, #server:log("iam"))
      assert.are.equal(2, #server:log("sts"))
    end)
  end)

  describe("cache", function()
    it("keeps the token: a second call makes no token request", function()
      local c = client("url_json")
      server:sts { subject_token_format = "json" }
      local op = server:create {}
      c:get(op.name)
      c:get(op.name)
      assert.are.equal(1, #server:log("subject_token"))
      assert.are.equal(1, #server:log("sts"))
      assert.are.equal(2, #server:log("get"))
    end)

    it("refreshes 300 s before the STS token's expiry, by the injected clock", function()
      local t = H.fake_time()
      local c = client("file_text", { clock = t.clock, sleep = t.sleep })
      local op = server:create {}
      c:get(op.name)
      t.now = t.now + 3299
      c:get(op.name)
      assert.are.equal(1, #server:log("sts"))
      t.now = t.now + 2
      c:get(op.name)
      assert.are.equal(2, #server:log("sts"))
    end)

    it("fetches once for requests side by side (single flight)", function()
      server:fault { match = "sts", delay = 0.2 }
      local c = client("file_text")
      local reqs = {}
      for i = 1, 5 do reqs[i] = c:start("get", server:create {}.name) end
      for i = 1, 5 do reqs[i]:wait() end
      assert.are.equal(1, #server:log("sts"))
    end)

    it("keys a shared_dict entry by audience and source, with no secret in the key", function()
      local p = auth.provider { credentials = files.client }
      local key = auth.shared_key(p)
      assert.is_truthy(key:find(WORKFORCE, 1, true), key)
      assert.is_truthy(key:find("file:" .. dir .. "/subject.txt", 1, true), key)
      assert.is_falsy(key:find(CLIENT_SECRET, 1, true), key)
      assert.is_falsy(key:find(SUBJECT, 1, true), key)
    end)
  end)

  describe("the fake", function()
    it("stops accepting an STS token at its expiry on its clock", function()
      local t = H.virtual_time(server)
      local c = client("file_text", { clock = t.clock, sleep = t.sleep, retry = false })
      local op = server:create {}
      c:get(op.name)
      local token = bearer(server:log("get")[1])
      server:advance(3601)
      local err = H.raises(vertexops.get, op.name, nil, H.opts(server, { token = token, retry = false }))
      assert.are.equal(401, err.code)
    end)
  end)

  describe("sources not supported yet", function()
    for _, case in ipairs { { "executable", "executables need to be explicitly allowed" },
                            { "aws2", "credential_source environment_id 'aws2' is not supported (supported: aws1)" } } do
      it("raise AuthError naming the source type: " .. case[1], function()
        local c = client(case[1])
        local err = raises(c.get, c, H.NAME .. "1")
        assert.are.equal("AuthError", H.tags(err))
        assert.is_truthy(err.message:find(files[case[1]], 1, true), err.message)
        assert.is_truthy(err.message:find(case[2], 1, true), err.message)
        assert.are.equal(0, #server:log())
      end)
    end
  end)

  it("holds token_url to the endpoint rules before any request", function()
    local c = client("plain_http")
    local err = raises(c.get, c, H.NAME .. "1")
    assert.are.equal("AuthError", H.tags(err))
    assert.matches("token_url http://sts%.example%.com/v1/token is not usable", err.message)
    assert.are.equal(0, #server:log())
  end)

  it("never shows a subject token, a client secret, a header value or a token in an error", function()
    assert.is_true(#seen_errors >= 10)
    for _, msg in ipairs(seen_errors) do
      for _, secret in ipairs { SUBJECT, CLIENT_SECRET, HEADER_SECRET, "ya29." } do
        assert.is_falsy(msg:find(secret, 1, true), "secret in: " .. msg)
      end
    end
  end)
end)
