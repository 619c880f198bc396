-- The fake verifies self-signed JWT bearer tokens (docs/fake.md, "Self-signed JWTs"): a JWT sent as
-- the access token (vertexops' self_signed_jwt, google-auth's JWTAccess) is accepted when its RS256
-- signature verifies with a key the fake knows (testing.make_key_file registers the key it mints),
-- iss = sub is that key's client_email, aud is https://aiplatform.googleapis.com/ or a scope claim
-- names cloud-platform, and exp is ahead of the fake's clock; else Vertex's 401 UNAUTHENTICATED,
-- which vertexops raises naming the credential's type and principal.
local vertexops = require "vertexops"
local testing = require "vertexops.testing"
local core = require "vertexops.core"
local cjson = require "cjson"
local H = require "support.helper"

local CLOUD = "https://www.googleapis.com/auth/cloud-platform"

describe("the fake's self-signed JWT bearers", function()
  local fake = H.fake_server()
  local server, dir, key, other_key

  setup(function()
    server = fake.server
    dir = H.fake.tmpdir()
    testing.make_key_file(dir .. "/sa.json", server)
    key = cjson.decode(H.read(dir .. "/sa.json"))
    -- the same account and key id, another private key: one the fake never issued
    local other = cjson.decode(H.read(dir .. "/sa.json"))
    other.private_key = H.fake.make_rsa_key(dir)
    other_key = other.private_key
    H.fake.write(dir .. "/other.json", cjson.encode(other))
  end)
  teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

  -- A JWT signed with pem: claims over the defaults (iss = sub = the key file's client_email, the
  -- scope claim, an hour from now); a claim given as false is left out.
  local function jwt(pem, over)
    local now = os.time()
    local claims = { iss = key.client_email, sub = key.client_email, scope = CLOUD, iat = now, exp = now + 3600 }
    for k, v in pairs(over or {}) do claims[k] = v or nil end
    local input = core.b64url(cjson.encode { alg = "RS256", typ = "JWT", kid = "fake-key-1" }) .. "."
      .. core.b64url(cjson.encode(claims))
    return input .. "." .. core.b64url(assert(core.rs256(pem, input)))
  end

  -- A get with token as the bearer: true, or the error raised.
  local function get_with(token)
    local op = server:create {}
    local ok, err = pcall(vertexops.get, op.name, nil, server:options { token = token, retry = false })
    return ok or err
  end

  local function key_file_client(path)
    return vertexops.client { endpoint = server.endpoint, ca_file = server.ca_file, credentials = path,
                              self_signed_jwt = true, retry = false }
  end

  it("accepts the key file's self-signed JWT: one request, no token endpoint", function()
    local c = key_file_client(dir .. "/sa.json")
    local op = server:create {}
    assert.are.equal(op.name, c:get(op.name).name)
    c:close()
    local log = server:log()
    assert.are.equal(1, #log)
    assert.are.equal("get", log[1].call)
    assert.matches("^Bearer [%w_-]+%.[%w_-]+%.[%w_-]+$", log[1].headers.authorization)
  end)

  it("accepts aud = https://aiplatform.googleapis.com/ without a scope claim (Google's clients' form)", function()
    assert.is_true(get_with(jwt(key.private_key, { scope = false, aud = "https://aiplatform.googleapis.com/" })))
  end)

  it("accepts aud = https://{the host called}/ (Node's client: https://{apiEndpoint}/)", function()
    assert.is_true(get_with(jwt(key.private_key, { scope = false, aud = "https://127.0.0.1/" })))
    assert.is_true(get_with(jwt(key.private_key, { scope = false, aud = "https://us-central1-aiplatform.googleapis.com/" })))
  end)

  it("keeps the keys it knows across reset()", function()
    server:reset()
    assert.is_true(get_with(jwt(key.private_key)))
  end)

  it("refuses a JWT signed by another key with 401 UNAUTHENTICATED", function()
    local err = get_with(jwt(other_key))
    assert.are.equal(401, err.code)
    assert.are.equal("UNAUTHENTICATED", err.status)
    assert.are.equal("ACCESS_TOKEN_TYPE_UNSUPPORTED", err.reason)
  end)

  it("refuses an expired JWT (exp behind the fake's clock) with reason ACCESS_TOKEN_EXPIRED", function()
    local token = jwt(key.private_key)
    server:clock { virtual = os.time() + 2 * 3600 }
    local err = get_with(token)
    assert.are.equal(401, err.code)
    assert.are.equal("ACCESS_TOKEN_EXPIRED", err.reason)
  end)

  it("refuses a wrong audience", function()
    local err = get_with(jwt(key.private_key, { scope = false, aud = "https://example.com/" }))
    assert.are.equal(401, err.code)
    assert.are.equal("ACCESS_TOKEN_TYPE_UNSUPPORTED", err.reason)
  end)

  it("refuses a scope claim without cloud-platform", function()
    local err = get_with(jwt(key.private_key, { scope = "https://www.googleapis.com/auth/drive" }))
    assert.are.equal(401, err.code)
  end)

  it("refuses an issuer it knows no key of, and sub other than iss", function()
    assert.are.equal(401, get_with(jwt(key.private_key, { iss = "x@y.iam.gserviceaccount.com", sub = false })).code)
    assert.are.equal(401, get_with(jwt(key.private_key, { sub = "other@test-project.iam.gserviceaccount.com" })).code)
  end)

  it("a refused key file's JWT: vertexops' 401 names the credential type and principal", function()
    local c = key_file_client(dir .. "/other.json")
    local op = server:create {}
    local err = H.raises(c.get, c, op.name)
    c:close()
    assert.are.equal(401, err.code)
    assert.are.equal("service_account", err.credential_type)
    assert.are.equal(key.client_email, err.principal)
    assert.matches("credentials: service_account file", tostring(err), 1, true)
    assert.are.equal(0, #server:log("token"))
    assert.is_nil(tostring(err):find("PRIVATE KEY", 1, true))
  end)

  it("its token endpoint takes a jwt-bearer assertion without typ (google-auth-library-nodejs: {\"alg\":\"RS256\"})", function()
    local now = os.time()
    local input = core.b64url(cjson.encode { alg = "RS256" }) .. "." .. core.b64url(cjson.encode {
      iss = key.client_email, scope = CLOUD, aud = "https://oauth2.googleapis.com/token", iat = now, exp = now + 3600 })
    local assertion = input .. "." .. core.b64url(assert(core.rs256(key.private_key, input)))
    local out = H.run(("curl -s --cacert '%s' --data 'grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-bearer"
      .. "&assertion=%s' '%s/token'"):format(server.ca_file, assertion, server.endpoint))
    assert.matches('"access_token":"ya29%.fake%-', out)
  end)

  it("the keys control refuses what is not a public key, naming the field", function()
    local err = H.raises(server.key, server, { client_email = "a@b", key_id = "k", public_key = "nope" })
    assert.are.equal(400, err.code)
    assert.matches("public_key", err.message)
    err = H.raises(server.key, server, { client_email = "a@b", public_key = "x" })
    assert.matches("key_id", err.message)
  end)
end)
