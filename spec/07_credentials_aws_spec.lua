-- external_account credentials with environment_id aws1 (docs/contract.md, "Credentials"): the
-- region and the role's credentials from the fake's AWS instance metadata service with an IMDSv2
-- session token (lua/vertexops/testing/aws.lua), or from the AWS_* environment, then the signed
-- GetCallerIdentity request as the subject token of the fake's STS. The log is the witness: the
-- PUT first, the session token on every GET, the signed request's headers (its signature
-- recomputed with core.sigv4 from the fake's secret). The environment path is compared with
-- google-auth-library-python 2.x's aws.Credentials.retrieve_subject_token for a fixed time.
local vertexops = require "vertexops"
local auth = require "vertexops.auth"
local core = require "vertexops.core"
local aws = require "vertexops.auth.aws"
local sources = require "vertexops.auth.sources"
local cjson = require "cjson"
local H = require "support.helper"

local write = H.fake.write
local AUD = "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/providers/aws"
local AWS_TYPE = "urn:ietf:params:aws:token-type:aws4_request"
local VERIFY = "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"
-- the fake's role credentials (testing/aws.lua defaults)
local FAKE_SECRET, FAKE_TOKEN = "fake/secret+access+key/EXAMPLE", "fake-aws-session-token"
-- the environment of the google-auth comparison
local ENV = { AWS_REGION = "us-east-2", AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE",
  AWS_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", AWS_SESSION_TOKEN = "IQoJb3JpZ2luX2VjEXAMPLETOKEN" }
-- google-auth's subject token for ENV at 2026-12-06T05:30:00Z (aws.Credentials with AUD and VERIFY)
local GOOGLE_AUTH = "%7B%22headers%22%3A%5B%7B%22key%22%3A%22Authorization%22%2C%22value%22%3A%22AWS4-HMAC-SHA256%20"
  .. "Credential%3DAKIAIOSFODNN7EXAMPLE/20261206/us-east-2/sts/aws4_request%2C%20SignedHeaders%3Dhost%3Bx-amz-date%3B"
  .. "x-amz-security-token%2C%20Signature%3D60ae5019c7b704d8a784c0dff577765340994e43f5113c8bd72c5dc9863600b9%22%7D%2C"
  .. "%7B%22key%22%3A%22host%22%2C%22value%22%3A%22sts.us-east-2.amazonaws.com%22%7D%2C%7B%22key%22%3A%22x-amz-date%22"
  .. "%2C%22value%22%3A%2220261206T053000Z%22%7D%2C%7B%22key%22%3A%22x-amz-security-token%22%2C%22value%22%3A%22"
  .. "IQoJb3JpZ2luX2VjEXAMPLETOKEN%22%7D%2C%7B%22key%22%3A%22x-goog-cloud-target-resource%22%2C%22value%22%3A%22//iam."
  .. "googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/providers/aws%22%7D%5D%2C%22method%22%3A"
  .. "%22POST%22%2C%22url%22%3A%22https%3A//sts.us-east-2.amazonaws.com%3FAction%3DGetCallerIdentity%26Version%3D"
  .. "2011-06-15%22%7D"

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- the form field name of a urlencoded body
local function field(body, name)
  for pair in (body or ""):gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=(.*)$")
    if k == name then return unescape(v) end
  end
end

describe("external_account credentials of environment_id aws1", function()
  local server, dir, env, saved_getenv, saved_now
  local files = {}
  local errors_seen = {}

  -- the credentials file name: aws1 against the fake's IMDS (paths of real IMDS), extra in cs
  local function file(name, cs_extra, extra)
    local m = server.http_endpoint
    local cs = { environment_id = "aws1", regional_cred_verification_url = VERIFY,
      region_url = m .. "/latest/meta-data/placement/availability-zone",
      url = m .. "/latest/meta-data/iam/security-credentials",
      imdsv2_session_token_url = m .. "/latest/api/token" }
    for k, v in pairs(cs_extra or {}) do cs[k] = v ~= false and v or nil end
    local d = { type = "external_account", audience = AUD, subject_token_type = AWS_TYPE,
      token_url = server.endpoint .. "/v1/token", credential_source = cs }
    for k, v in pairs(extra or {}) do d[k] = v end
    files[name] = dir .. "/" .. name .. ".json"
    write(files[name], cjson.encode(d))
    return files[name]
  end

  local function client(name)
    return vertexops.client { endpoint = server.endpoint, ca_file = server.ca_file, credentials = files[name] }
  end

  local function raises(f, ...)
    local err = H.raises(f, ...)
    errors_seen[#errors_seen + 1] = tostring(err)
    if err.cause then errors_seen[#errors_seen + 1] = tostring(err.cause) end
    return err
  end

  -- the subject token the STS was given, decoded: {url, method, headers = {key = value}}, and its list
  local function subject()
    local sts = server:log("sts")
    assert.are.equal(1, #sts)
    assert.are.equal(AWS_TYPE, field(sts[1].body, "subject_token_type"))
    local raw = field(sts[1].body, "subject_token")
    local req = cjson.decode(unescape(raw))
    local h = {}
    for _, kv in ipairs(req.headers) do h[kv.key] = kv.value end
    return req, h, raw
  end

  setup(function()
    server = H.fake.start()
    dir = H.fake.tmpdir()
    file("imdsv2")
    file("imdsv1", { imdsv2_session_token_url = false })
    file("no_region_url", { region_url = false })
    file("real_aws", { region_url = "http://169.254.169.254/latest/meta-data/placement/availability-zone",
      url = "http://169.254.169.254/latest/meta-data/iam/security-credentials",
      imdsv2_session_token_url = "http://[fd00:ec2::254]/latest/api/token" })
    file("other_http", { region_url = "http://metadata.example.com/latest/meta-data/placement/availability-zone" })
    file("link_local_other", { url = "http://169.254.169.253/latest/meta-data/iam/security-credentials" })
    file("token_url_http", nil, { token_url = "http://169.254.169.254/v1/token" })
    file("aws2", { environment_id = "aws2" })
    file("no_verify_url", { regional_cred_verification_url = false })
    saved_getenv, saved_now = sources.getenv, aws.now
  end)
  teardown(function()
    server:stop()
    os.execute("rm -rf '" .. dir .. "'")
  end)
  before_each(function()
    server:reset()
    env = {}
    sources.getenv = function(name) return env[name] end
  end)
  after_each(function()
    sources.getenv, aws.now = saved_getenv, saved_now
  end)

  describe("through the instance metadata service with IMDSv2", function()
    it("PUTs for the session token first, with google-auth's ttl of 300 seconds", function()
      client("imdsv2"):get(server:create {}.name)
      local log = server:log()
      assert.are.equal("aws_token", log[1].call)
      assert.are.equal("PUT", log[1].method)
      assert.are.equal("/latest/api/token", log[1].path)
      assert.are.equal("300", log[1].headers["x-aws-ec2-metadata-token-ttl-seconds"])
    end)

    it("then GETs the zone, the role and its credentials, each with the session token", function()
      client("imdsv2"):get(server:create {}.name)
      local gets = server:log("aws_metadata")
      local paths = {}
      for i, e in ipairs(gets) do
        paths[i] = e.method .. " " .. e.path
        assert.matches("^AQAEAfake%-imds%-%d+$", e.headers["x-aws-ec2-metadata-token"])
      end
      assert.are.same({ "GET /latest/meta-data/placement/availability-zone",
        "GET /latest/meta-data/iam/security-credentials",
        "GET /latest/meta-data/iam/security-credentials/vertexops-test-role" }, paths)
      assert.are.equal("application/json", gets[3].headers["content-type"])
    end)

    it("sends the STS the signed GetCallerIdentity of the zone's region, as google-auth serializes it", function()
      client("imdsv2"):get(server:create {}.name)
      local req, h, raw = subject()
      assert.are.equal("POST", req.method)
      assert.are.equal("https://sts.us-east-2.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15", req.url)
      local keys = {}
      for i, kv in ipairs(req.headers) do keys[i] = kv.key end
      assert.are.same({ "Authorization", "host", "x-amz-date", "x-amz-security-token", "x-goog-cloud-target-resource" },
        keys)
      assert.are.equal("sts.us-east-2.amazonaws.com", h.host)
      assert.are.equal(FAKE_TOKEN, h["x-amz-security-token"])
      assert.are.equal(AUD, h["x-goog-cloud-target-resource"])
      assert.matches('^%%7B%%22headers%%22%%3A%%5B', raw) -- URL-encoded JSON, keys sorted
      assert.matches("^AWS4%-HMAC%-SHA256 Credential=ASIAVERTEXOPSEXAMPLE/%d+/us%-east%-2/sts/aws4_request, "
        .. "SignedHeaders=host;x%-amz%-date;x%-amz%-security%-token, Signature=%x+$", h.Authorization)
    end)

    it("signs with the role's secret: the signature recomputed from the log with core.sigv4 matches", function()
      client("imdsv2"):get(server:create {}.name)
      local _, h = subject()
      local r = core.sigv4 { method = "POST", path = "/", query = "Action=GetCallerIdentity&Version=2011-06-15",
        headers = { host = h.host, ["x-amz-date"] = h["x-amz-date"], ["x-amz-security-token"] = h["x-amz-security-token"] },
        region = "us-east-2", service = "sts", access_key = "ASIAVERTEXOPSEXAMPLE", secret_key = FAKE_SECRET,
        date = h["x-amz-date"] }
      assert.are.equal(r.authorization, h.Authorization)
    end)

    it("sends Vertex the STS token exchanged for the signed request", function()
      client("imdsv2"):get(server:create {}.name)
      assert.matches("^Bearer ya29%.sts%-", server:log("get")[1].headers.authorization)
    end)

    it("without imdsv2_session_token_url: no PUT, GETs without a session token (IMDSv1)", function()
      server:aws { imdsv2 = false }
      client("imdsv1"):get(server:create {}.name)
      assert.are.equal(0, #server:log("aws_token"))
      local gets = server:log("aws_metadata")
      assert.are.equal(3, #gets)
      for _, e in ipairs(gets) do assert.is_nil(e.headers["x-aws-ec2-metadata-token"]) end
    end)

    it("region from AWS_DEFAULT_REGION, credentials from the role: the PUT still comes first, no zone GET", function()
      env.AWS_DEFAULT_REGION = "eu-west-3"
      client("imdsv2"):get(server:create {}.name)
      assert.are.equal("aws_token", server:log()[1].call)
      assert.are.equal(2, #server:log("aws_metadata"))
      assert.are.equal("https://sts.eu-west-3.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15", subject().url)
    end)
  end)

  describe("from the environment", function()
    it("AWS_REGION and the AWS_* keys: no metadata request, the subject token google-auth makes", function()
      for k, v in pairs(ENV) do env[k] = v end
      aws.now = function() return 1796535000 end -- 2026-12-06T05:30:00Z
      client("imdsv2"):get(server:create {}.name)
      assert.are.equal(0, #server:log("aws_token") + #server:log("aws_metadata"))
      local _, _, raw = subject()
      assert.are.equal(GOOGLE_AUTH, raw)
    end)

    it("without AWS_SESSION_TOKEN: no x-amz-security-token, header or signed", function()
      for k, v in pairs(ENV) do env[k] = v end
      env.AWS_SESSION_TOKEN = nil
      client("imdsv2"):get(server:create {}.name)
      local _, h = subject()
      assert.is_nil(h["x-amz-security-token"])
      assert.matches("SignedHeaders=host;x%-amz%-date,", h.Authorization)
    end)
  end)

  describe("failures name their step", function()
    it("a refused session token PUT: AuthError naming the AWS metadata session token, nothing else sent", function()
      server:fault { match = "aws_token", status = 403, times = 10 }
      local c = client("imdsv2")
      local err = raises(c.get, c, H.NAME .. "1")
      assert.are.equal("AuthError", H.tags(err))
      assert.truthy(err.message:find("AWS metadata session token", 1, true), err.message)
      assert.truthy(err.message:find(files.imdsv2, 1, true), err.message)
      assert.are.equal(0, #server:log("aws_metadata") + #server:log("sts"))
    end)

    it("an expired session token: the metadata service's 401 names the AWS region step", function()
      server:aws { session_expired = true }
      local c = client("imdsv2")
      local err = raises(c.get, c, H.NAME .. "1")
      assert.truthy(err.message:find("AWS region", 1, true), err.message)
      assert.truthy(err.message:find("401", 1, true), err.message)
      assert.are.equal(0, #server:log("sts"))
    end)

    it("a role whose credentials are not there: names the AWS credentials step", function()
      server:fault { match = "aws_metadata", status = 200, body = "vanished-role", content_type = "text/plain" }
      local c = client("imdsv1")
      server:aws { imdsv2 = false }
      env.AWS_REGION = "us-east-2"
      local err = raises(c.get, c, H.NAME .. "1")
      assert.truthy(err.message:find("AWS credentials from", 1, true), err.message)
      assert.truthy(err.message:find("404", 1, true), err.message)
    end)

    it("an AWS_REGION that is not a region name (it would move the signed URL's host) is refused", function()
      for k, v in pairs(ENV) do env[k] = v end
      env.AWS_REGION = "evil.example.com/x"
      local c = client("imdsv2")
      local err = raises(c.get, c, H.NAME .. "1")
      assert.truthy(err.message:find("AWS region: AWS_REGION is not a region name", 1, true), err.message)
      assert.are.equal(0, #server:log())
    end)

    it("a metadata service that answers slowly is bounded by the call's timeout", function()
      server:fault { match = "aws_metadata", delay = 30 }
      local c = client("imdsv2")
      local t0 = require("socket").gettime()
      local err = raises(c.get, c, H.NAME .. "1", nil, { timeout = 1 })
      H.within(require("socket").gettime() - t0, 1, "the call")
      assert.are.equal("TimeoutError", H.tags(err))
      assert.are.equal(0, #server:log("sts"))
    end)

    it("a 503 of the session token PUT is retried like any token request", function()
      server:fault { match = "aws_token", status = 503 }
      vertexops.client({ endpoint = server.endpoint, ca_file = server.ca_file, credentials = files.imdsv2,
        retry = { initial_delay = 0.01, max_delay = 0.01 } }):get(server:create {}.name)
      assert.are.equal(2, #server:log("aws_token"))
    end)

    it("no region anywhere: names the AWS region step before any request", function()
      local c = client("no_region_url")
      local err = raises(c.get, c, H.NAME .. "1")
      assert.truthy(err.message:find("AWS region: neither AWS_REGION nor AWS_DEFAULT_REGION", 1, true), err.message)
      assert.are.equal(0, #server:log("aws_metadata") + #server:log("sts"))
    end)

    it("keys the signer refuses: names the signing step, never the secret key or the session token", function()
      for k, v in pairs(ENV) do env[k] = v end
      env.AWS_ACCESS_KEY_ID = "AKIA/bad"
      local c = client("imdsv2")
      local err = raises(c.get, c, H.NAME .. "1")
      assert.truthy(err.message:find("AWS signing failed", 1, true), err.message)
      assert.are.equal(0, #server:log())
    end)

    it("environment_id aws2 and a missing regional_cred_verification_url are refused before any request", function()
      for _, case in ipairs { { "aws2", "environment_id 'aws2' is not supported (supported: aws1)" },
                              { "no_verify_url", "regional_cred_verification_url must be an https URL" } } do
        local c = client(case[1])
        local err = raises(c.get, c, H.NAME .. "1")
        assert.truthy(err.message:find(case[2], 1, true), err.message)
      end
      assert.are.equal(0, #server:log())
    end)

    it("no error seen here holds a secret key or a session token", function()
      assert.is_true(#errors_seen >= 6)
      for _, m in ipairs(errors_seen) do
        for _, secret in ipairs { FAKE_SECRET, FAKE_TOKEN, ENV.AWS_SECRET_ACCESS_KEY, ENV.AWS_SESSION_TOKEN, "AQAEAfake" } do
          assert.is_nil(m:find(secret, 1, true), m)
        end
      end
    end)
  end)

  describe("endpoint rules of credential_source URLs", function()
    it("a real AWS file (http://169.254.169.254, http://[fd00:ec2::254]) passes: environment keys, one exchange", function()
      for k, v in pairs(ENV) do env[k] = v end
      client("real_aws"):get(server:create {}.name)
      assert.are.equal(1, #server:log("sts"))
    end)

    it("a url source may name Azure's IMDS (http://169.254.169.254, with its query): the file is accepted", function()
      local path = dir .. "/azure.json"
      write(path, cjson.encode { type = "external_account", audience = AUD,
        subject_token_type = "urn:ietf:params:oauth:token-type:jwt", token_url = server.endpoint .. "/v1/token",
        credential_source = { headers = { Metadata = "True" },
          format = { type = "json", subject_token_field_name = "access_token" },
          url = "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01"
            .. "&resource=api://AzureADTokenExchange" } })
      assert.are.equal("external_account", auth.provider({ credentials = path }):source().kind)
    end)

    it("a url source's query goes on the wire", function()
      local path = dir .. "/query.json"
      write(path, cjson.encode { type = "external_account", audience = AUD,
        subject_token_type = "urn:ietf:params:oauth:token-type:jwt", token_url = server.endpoint .. "/v1/token",
        credential_source = { url = server.http_endpoint .. "/subject_token?api-version=2018-02-01&resource=api://x" } })
      vertexops.client({ endpoint = server.endpoint, ca_file = server.ca_file, credentials = path }):get(server:create {}.name)
      assert.are.equal("api-version=2018-02-01&resource=api://x", server:log("subject_token")[1].query)
    end)

    it("plain http to any other host is refused before any request, naming the URL", function()
      for _, name in ipairs { "other_http", "link_local_other", "token_url_http" } do
        local c = client(name)
        local err = raises(c.get, c, H.NAME .. "1")
        assert.are.equal("AuthError", H.tags(err))
        assert.truthy(err.message:find("is not usable", 1, true), err.message)
      end
      assert.are.equal(0, #server:log())
    end)
  end)
end)
