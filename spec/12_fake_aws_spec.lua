-- The fake's AWS instance metadata service with IMDSv2 (lua/vertexops/testing/aws.lua, docs/fake.md
-- "AWS instance metadata (IMDSv2)"), asked over plain HTTP: the session token PUT, the GETs that
-- need it, its ttl on the fake's clock, the settings; and the STS's check of an aws4_request
-- subject token's structure.
local cjson = require "cjson"
local http = require "socket.http"
local ltn12 = require "ltn12"
local H = require "support.helper"

local AWS_TYPE = "urn%3Aietf%3Aparams%3Aaws%3Atoken-type%3Aaws4_request"
local ZONE = "/latest/meta-data/placement/availability-zone"
local ROLE = "/latest/meta-data/iam/security-credentials"

describe("the fake's AWS instance metadata service", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  local function request(method, path, headers, body)
    local out = {}
    headers = headers or {}
    headers["content-length"] = tostring(#(body or ""))
    local _, code = http.request { url = server.http_endpoint .. path, method = method, headers = headers,
      source = ltn12.source.string(body or ""), sink = ltn12.sink.table(out) }
    local text = table.concat(out)
    return code, text:match("^%s*{") and cjson.decode(text) or text
  end

  local function session(ttl)
    local code, token = request("PUT", "/latest/api/token", { ["X-aws-ec2-metadata-token-ttl-seconds"] = ttl or "300" })
    assert.are.equal(200, code)
    return token
  end

  it("answers a session token for a PUT with a ttl", function()
    assert.matches("^AQAEAfake%-imds%-%d+$", session())
  end)

  it("refuses a PUT without a ttl, or one past 21600 seconds (400)", function()
    assert.are.equal(400, (request("PUT", "/latest/api/token")))
    assert.are.equal(400, (request("PUT", "/latest/api/token", { ["X-aws-ec2-metadata-token-ttl-seconds"] = "21601" })))
  end)

  it("answers the zone, the role and its credentials with the session token", function()
    local h = { ["X-aws-ec2-metadata-token"] = session() }
    assert.are.same({ 200, "us-east-2b" }, { request("GET", ZONE, h) })
    assert.are.same({ 200, "vertexops-test-role" }, { request("GET", ROLE, h) })
    local code, creds = request("GET", ROLE .. "/vertexops-test-role", h)
    assert.are.equal(200, code)
    assert.are.equal("Success", creds.Code)
    assert.are.equal("ASIAVERTEXOPSEXAMPLE", creds.AccessKeyId)
    assert.are.equal("fake/secret+access+key/EXAMPLE", creds.SecretAccessKey)
    assert.are.equal("fake-aws-session-token", creds.Token)
  end)

  it("answers 404 for another role's credentials", function()
    assert.are.equal(404, (request("GET", ROLE .. "/someone-else", { ["X-aws-ec2-metadata-token"] = session() })))
  end)

  it("answers 401 without a session token, or with one not issued here", function()
    assert.are.equal(401, (request("GET", ZONE)))
    assert.are.equal(401, (request("GET", ZONE, { ["X-aws-ec2-metadata-token"] = "AQAEAforged" })))
  end)

  it("answers 401 once the session token's ttl has passed on the fake's clock", function()
    server:virtual_time()
    local h = { ["X-aws-ec2-metadata-token"] = session("60") }
    assert.are.equal(200, (request("GET", ZONE, h)))
    server:advance(60)
    assert.are.equal(401, (request("GET", ZONE, h)))
  end)

  it("needs no session token with imdsv2 = false, and answers the zone set", function()
    server:aws { imdsv2 = false, zone = "eu-west-3a" }
    assert.are.same({ 200, "eu-west-3a" }, { request("GET", ZONE) })
  end)

  it("refuses unknown settings (400)", function()
    local err = H.raises(server.aws, server, { region = "x" })
    assert.truthy(tostring(err):find("unknown aws setting region", 1, true), tostring(err))
  end)

  it("logs the PUT as aws_token and the GETs as aws_metadata, with their headers", function()
    local token = session()
    request("GET", ZONE, { ["X-aws-ec2-metadata-token"] = token })
    local log = server:log()
    assert.are.same({ "aws_token", "aws_metadata" }, { log[1].call, log[2].call })
    assert.are.equal("300", log[1].headers["x-aws-ec2-metadata-token-ttl-seconds"])
    assert.are.equal(token, log[2].headers["x-aws-ec2-metadata-token"])
  end)

  it("the STS refuses an aws4_request subject token that is not a signed GetCallerIdentity", function()
    local bad = cjson.encode { url = "https://evil.example.com/", method = "POST", headers = {} }
    local code, body = request("POST", "/v1/token", { ["content-type"] = "application/x-www-form-urlencoded" },
      "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&audience=aud&scope=x"
      .. "&requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token"
      .. "&subject_token_type=" .. AWS_TYPE .. "&subject_token=" .. bad:gsub("[^%w]", function(c)
        return string.format("%%25%02X", c:byte()) end))
    assert.are.equal(400, code)
    assert.are.equal("invalid_grant", body.error)
    assert.matches("^Invalid AWS subject token: ", body.error_description)
  end)
end)
