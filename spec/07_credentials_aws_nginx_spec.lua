-- make test: once
-- An external_account file of environment_id aws1 inside nginx (examples/openresty/nginx.conf):
-- the IMDSv2 PUT, the metadata GETs and the STS exchange go over the cosocket transport, the fake
-- playing AWS's instance metadata service and Google's STS; the log is the witness, and neither the
-- role's secret key nor its session token appears in nginx's log.
local cjson = require "cjson"
local fake = require "support.fake"
local openresty = require "support.openresty"

describe("external_account credentials of environment_id aws1 inside nginx", function()
  local h = openresty.credentials_harness(function(h)
    local endpoint, m = h.endpoint, h.server.http_endpoint
    local file = h.dir .. "/aws.json"
    fake.write(file, cjson.encode {
      type = "external_account", subject_token_type = "urn:ietf:params:aws:token-type:aws4_request",
      audience = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/aws",
      token_url = endpoint .. "/v1/token",
      credential_source = { environment_id = "aws1",
        regional_cred_verification_url = "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
        region_url = m .. "/latest/meta-data/placement/availability-zone",
        url = m .. "/latest/meta-data/iam/security-credentials",
        imdsv2_session_token_url = m .. "/latest/api/token" } })
    return openresty.start(h.server, { env = { GOOGLE_OAUTH_ACCESS_TOKEN = "", GOOGLE_APPLICATION_CREDENTIALS = file } })
  end)
  local server, app
  before_each(function() server, app = h.server, h.app end)

  it("PUTs for the session token, GETs with it, exchanges the signed request, over cosockets", function()
    local op = server:create {}
    local name = app:result([[
      local vertexops, args = ...
      return vertexops.get(args.name, nil, { transport = "cosocket" }).name]], { name = op.name })
    assert.are.equal(op.name, name)
    local calls = {}
    for i, e in ipairs(server:log()) do calls[i] = e.call end
    assert.are.same({ "aws_token", "aws_metadata", "aws_metadata", "aws_metadata", "sts", "get" }, calls)
    local log = server:log()
    assert.are.equal("PUT", log[1].method)
    assert.are.equal("300", log[1].headers["x-aws-ec2-metadata-token-ttl-seconds"])
    for i = 2, 4 do assert.matches("^AQAEAfake%-imds%-", log[i].headers["x-aws-ec2-metadata-token"]) end
    assert.matches("^Bearer ya29%.sts%-", log[6].headers.authorization)
    assert.is_falsy(app:error_log():find("fake/secret+access+key/EXAMPLE", 1, true))
    assert.is_falsy(app:error_log():find("fake-aws-session-token", 1, true))
  end)
end)
