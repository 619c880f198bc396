-- The universe of the credentials (docs/contract.md, Credentials): a key file's universe_domain
-- (googleapis.com when it names none) must be the client's (the universe_domain option, else
-- GOOGLE_CLOUD_UNIVERSE_DOMAIN, else googleapis.com): otherwise an AuthError naming both, before
-- any request. Outside googleapis.com a service account's JWT is its token (no exchange), and a
-- file without token_uri uses its universe's oauth2 host.
local vertexops = require "vertexops"
local auth = require "vertexops.auth"
local common = require "vertexops.auth.common"
local cjson = require "cjson"
local H = require "support.helper"

describe("the universe of the credentials", function()
  local fake = H.fake_server()
  local server, dir, key_pem

  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p " .. dir)
    key_pem = H.fake.make_rsa_key(dir)
  end)
  teardown(function() os.execute("rm -rf " .. dir) end)
  before_each(function()
    server = fake.server
    auth.reset_metadata_cache()
  end)

  -- a service_account file in universe (nil: the file names none); returns its path
  local function sa_file(name, universe, extra)
    local sa = { type = "service_account", project_id = "test-project", private_key = key_pem,
                 client_email = "robot@test-project.iam.gserviceaccount.com", client_id = "1234",
                 token_uri = server.endpoint .. "/token", universe_domain = universe }
    for k, v in pairs(extra or {}) do sa[k] = v end
    local path = dir .. "/" .. name .. ".json"
    H.fake.write(path, cjson.encode(sa))
    return path
  end

  local function opts(extra)
    local o = { endpoint = server.endpoint, ca_file = server.ca_file, retry = false }
    for k, v in pairs(extra or {}) do o[k] = v end
    return o
  end

  it("refuses a file of another universe than the client's default, naming both, before any request", function()
    local path = sa_file("other", "example-cloud.test")
    local op = server:create {}
    local err = H.raises(vertexops.get, op.name, nil, opts { credentials = path })
    assert.are.equal("AuthError", err.tags[1])
    assert.are.equal("the configured universe domain (googleapis.com) does not match the universe domain found "
      .. "in the credentials (example-cloud.test, service_account file " .. path .. "); the universe domain is the "
      .. "universe_domain option, else GOOGLE_CLOUD_UNIVERSE_DOMAIN, else googleapis.com", err.message)
    assert.are.equal("googleapis.com", err.universe_domain)
    assert.are.equal("example-cloud.test", err.credentials_universe_domain)
    assert.are.equal(0, #server:log())
  end)

  it("refuses a file that names no universe (googleapis.com) for a client of another, before any request", function()
    local path = sa_file("default", nil)
    local op = server:create {}
    local err = H.raises(vertexops.get, op.name, nil, opts { credentials = path, universe_domain = "example-cloud.test" })
    assert.are.equal("AuthError", err.tags[1])
    assert.is_truthy(err.message:find("(example-cloud.test) does not match", 1, true), err.message)
    assert.is_truthy(err.message:find("(googleapis.com, service_account file", 1, true), err.message)
    assert.are.equal(0, #server:log())
  end)

  it("takes the client's universe from GOOGLE_CLOUD_UNIVERSE_DOMAIN", function()
    local path = sa_file("default_env", nil)
    local op = server:create {}
    local out, ok = H.run_lua(([[
      local vertexops = require "vertexops"
      local ok, err = pcall(vertexops.get, %q, nil, { endpoint = %q, ca_file = %q, credentials = %q })
      print(ok, err.universe_domain, err.credentials_universe_domain)
    ]]):format(op.name, server.endpoint, server.ca_file, path), { GOOGLE_CLOUD_UNIVERSE_DOMAIN = "example-cloud.test" })
    assert.is_true(ok, out)
    assert.are.equal("false\texample-cloud.test\tgoogleapis.com\n", out)
    assert.are.equal(0, #server:log())
  end)

  it("lets a file of the client's universe through; outside googleapis.com its JWT is the token", function()
    local path = sa_file("same", "example-cloud.test")
    local op = server:create {}
    server:tokens {} -- the fake knows no JWT: the answer is a 401, the request is what is looked at
    local err = H.raises(vertexops.get, op.name, nil,
      opts { credentials = path, universe_domain = "example-cloud.test" })
    assert.are.equal(401, err.code)
    assert.are.equal(0, #server:log("token"), "no token exchange")
    local get = server:log("get")[1]
    local header, claims = get.headers.authorization:match("^Bearer ([%w_-]+)%.([%w_-]+)%.[%w_-]+$")
    assert.is_truthy(header and claims, get.headers.authorization)
  end)

  it("exchanges the JWT at token_uri in googleapis.com, whether the file names that universe or none", function()
    local op = server:create {}
    for _, universe in ipairs { "googleapis.com", false } do
      server:reset_log()
      local path = sa_file("google_" .. tostring(universe), universe or nil)
      assert.are.equal(op.name, vertexops.get(op.name, nil, opts { credentials = path }).name)
      assert.are.equal(1, #server:log("token"))
    end
  end)

  it("refuses a file whose universe_domain is not a non-empty string, naming the file", function()
    for i, bad in ipairs { 7, "", true } do
      local path = sa_file("bad" .. i, nil, { universe_domain = bad })
      local err = H.raises(vertexops.get, server:create {}.name, nil, opts { credentials = path })
      assert.are.equal("AuthError", err.tags[1])
      assert.is_truthy(err.message:find(path .. " (the credentials option) has a universe_domain that is not a "
        .. "non-empty string", 1, true), err.message)
    end
    assert.are.equal(0, #server:log())
  end)

  it("gives a file without token_uri its universe's oauth2 token endpoint", function()
    assert.are.equal("https://oauth2.googleapis.com/token", common.token_uri())
    assert.are.equal("https://oauth2.googleapis.com/token", common.token_uri("googleapis.com"))
    assert.are.equal("https://oauth2.example-cloud.test/token", common.token_uri("example-cloud.test"))
  end)

  it("does not check a token, which names no universe", function()
    local op = server:create {}
    assert.are.equal(op.name, vertexops.get(op.name, nil, opts { token = "test-token",
                                                                universe_domain = "example-cloud.test" }).name)
  end)
end)
