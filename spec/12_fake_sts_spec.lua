-- The fake's STS, IAM Credentials and subject-token URL (lua/vertexops/testing/sts.lua,
-- docs/fake.md "STS, IAM Credentials, subject tokens"), asked over plain HTTP: Google's shapes
-- (the RFC 8693 answer and OAuth error body of sts.googleapis.com, generateAccessToken's answer
-- and google.rpc Status errors of iamcredentials.googleapis.com), the settings, and the tokens
-- issued accepted by the Vertex routes until their expiry on the fake's clock.
local vertexops = require "vertexops"
local cjson = require "cjson"
local http = require "socket.http"
local ltn12 = require "ltn12"
local mime = require "mime"
local H = require "support.helper"

local EXCHANGE = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&audience=aud"
  .. "&scope=x&requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token"
  .. "&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt&subject_token="
local IAM = "/v1/projects/-/serviceAccounts/robot@p.iam.gserviceaccount.com:generateAccessToken"

describe("the fake's STS and IAM Credentials", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  -- one plain HTTP request: status, decoded JSON (or the raw text), headers
  local function request(method, path, body, headers)
    local out = {}
    headers = headers or {}
    headers["content-length"] = tostring(#(body or ""))
    local _, code, got = http.request { url = server.http_endpoint .. path, method = method, headers = headers,
      source = ltn12.source.string(body or ""), sink = ltn12.sink.table(out) }
    local text = table.concat(out)
    return code, text:match("^%s*[{%[]") and cjson.decode(text) or text, got
  end

  local function exchange(subject, headers)
    headers = headers or {}
    headers["content-type"] = "application/x-www-form-urlencoded"
    return request("POST", "/v1/token", EXCHANGE .. (subject or "test-subject-token"), headers)
  end

  it("answers a token exchange as Google's STS does", function()
    local code, body = exchange()
    assert.are.equal(200, code)
    assert.matches("^ya29%.sts%-", body.access_token)
    assert.are.equal("urn:ietf:params:oauth:token-type:access_token", body.issued_token_type)
    assert.are.equal("Bearer", body.token_type)
    assert.are.equal(3600, body.expires_in)
  end)

  it("issues tokens the Vertex routes accept", function()
    local _, body = exchange()
    local op = server:create {}
    assert.are.equal(op.name, vertexops.get(op.name, nil, H.opts(server, { token = body.access_token })).name)
  end)

  it("refuses a wrong subject token with Google's OAuth error body", function()
    local code, body = exchange("wrong")
    assert.are.equal(400, code)
    assert.are.same({ error = "invalid_grant", error_description = "The subject token is invalid." }, body)
  end)

  it("refuses an expired subject token when told to", function()
    server:sts { subject_token_expired = true }
    local code, body = exchange()
    assert.are.equal(400, code)
    assert.are.equal("invalid_grant", body.error)
    assert.matches("stale", body.error_description)
  end)

  it("needs HTTP Basic client authentication once a client_id is set", function()
    server:sts { client_id = "cid", client_secret = "csecret" }
    assert.are.equal("invalid_client", select(2, exchange()).error)
    assert.are.equal(200, (exchange(nil, { authorization = "Basic " .. mime.b64("cid:csecret") })))
  end)

  it("answers generateAccessToken for a bearer it issued, with an RFC 3339 expireTime", function()
    local _, sts = exchange()
    local code, body = request("POST", IAM, cjson.encode { scope = { "s" }, lifetime = "1800s" },
      { authorization = "Bearer " .. sts.access_token, ["content-type"] = "application/json" })
    assert.are.equal(200, code)
    assert.matches("^ya29%.iam%-", body.accessToken)
    local y, mo, d, h, mi, s = body.expireTime:match("^(%d+)%-(%d+)%-(%d+)T(%d+):(%d+):(%d+)Z$")
    assert.is_truthy(y, body.expireTime)
    local expires = os.time { year = y, month = mo, day = d, hour = h, min = mi, sec = s }
      - os.time { year = 1970, month = 1, day = 1, hour = 0 } -- (os.time reads local time: the offset cancels)
    assert.is_true(math.abs(expires - os.time() - 1800) <= 2, body.expireTime)
  end)

  it("refuses generateAccessToken without an accepted bearer, with a google.rpc Status", function()
    local code, body = request("POST", IAM, cjson.encode { scope = { "s" } }, { authorization = "Bearer nope" })
    assert.are.equal(401, code)
    assert.are.equal(401, body.error.code)
    assert.are.equal("UNAUTHENTICATED", body.error.status)
  end)

  it("refuses a lifetime past max_lifetime", function()
    local _, sts = exchange()
    local code, body = request("POST", IAM, cjson.encode { scope = { "s" }, lifetime = "7200s" },
      { authorization = "Bearer " .. sts.access_token })
    assert.are.equal(400, code)
    assert.are.equal("INVALID_ARGUMENT", body.error.status)
  end)

  it("stops accepting an issued token at its expiry on the fake's clock", function()
    server:clock { virtual = 1000 }
    server:sts { expires_in = 100 }
    local _, sts = exchange()
    local op = server:create {}
    local o = H.opts(server, { token = sts.access_token, retry = false })
    vertexops.get(op.name, nil, o)
    server:advance(100)
    assert.are.equal(401, H.raises(vertexops.get, op.name, nil, o).code)
  end)

  it("refuses generateAccessToken for an STS token past its expiry on the fake's clock", function()
    server:clock { virtual = 1000 }
    server:sts { expires_in = 100 }
    local _, sts = exchange()
    local function iam()
      return request("POST", IAM, cjson.encode { scope = { "s" } }, { authorization = "Bearer " .. sts.access_token })
    end
    assert.are.equal(200, (iam()))
    server:advance(100)
    local code, body = iam()
    assert.are.equal(401, code)
    assert.are.equal("UNAUTHENTICATED", body.error.status)
  end)

  it("serves the subject token as text, or as JSON in the configured field", function()
    local code, text = request("GET", "/subject_token")
    assert.are.equal(200, code)
    assert.are.equal("test-subject-token", text)
    server:sts { subject_token_format = "json", subject_token_field = "value", subject_token = "s2" }
    assert.are.same({ value = "s2" }, select(2, request("GET", "/subject_token")))
  end)

  it("serves the subject token only with the configured headers", function()
    server:sts { subject_token_headers = { ["Metadata"] = "true" } }
    assert.are.equal(401, (request("GET", "/subject_token")))
    assert.are.equal(200, (request("GET", "/subject_token", nil, { metadata = "true" })))
  end)

  it("takes faults on sts, iam and subject_token", function()
    server:fault { match = "subject_token", status = 503 }
    assert.are.equal(503, (request("GET", "/subject_token")))
    server:fault { match = "sts", status = 400, body = '{"error":"invalid_request","error_description":"x"}' }
    assert.are.equal("invalid_request", select(2, exchange()).error)
  end)

  it("refuses unknown settings", function()
    local err = H.raises(server.sts, server, { nope = true })
    assert.matches("unknown sts setting nope", err.message)
  end)
end)
