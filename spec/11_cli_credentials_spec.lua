-- vertexops --credentials FILE and --impersonate-service-account EMAIL (docs/contract.md, Credentials;
-- README's CLI options), in-process (vertexops.cli.main with a context of our own: captured output,
-- the fake's endpoint and CA file, no token): the fake's log is the witness of which credentials
-- the calls used. As gcloud's flag, --impersonate-service-account wraps whatever credentials were
-- found (the flag's file, or the environment's) into an impersonation (generateAccessToken); the
-- context's iam_endpoint points IAM Credentials at the fake.
local cjson = require "cjson"
local H = require "support.helper"

local cli = require "vertexops.cli"

local TARGET = "target@test-project.iam.gserviceaccount.com"

local capture = H.capture

describe("vertexops --credentials and --impersonate-service-account (in-process)", function()
  local fake = H.fake_server()
  local server, dir, user_file

  setup(function()
    dir = H.fake.tmpdir()
  end)
  teardown(function() os.execute("rm -rf '" .. dir .. "'") end)
  before_each(function()
    server = fake.server
    user_file = dir .. "/user.json"
    H.fake.write(user_file, cjson.encode { type = "authorized_user", client_id = "test-client",
      client_secret = "test-secret", refresh_token = "test-refresh", token_uri = server.endpoint .. "/token" })
  end)

  -- runs main with argv; returns stdout, stderr, status
  local function main(argv)
    local out, err = capture(), capture()
    local status = cli.main(argv, { stdout = out, stderr = err, isatty = function() return false end,
      options = { endpoint = server.endpoint, ca_file = server.ca_file, iam_endpoint = server.endpoint } })
    return out.text, err.text, status
  end

  local function bearer(entry) return entry.headers.authorization:match("^Bearer (.+)$") end

  it("reads the credentials file --credentials names", function()
    local op = server:create {}
    local _, err, status = main { "get", op.name, "--credentials", user_file, "--json" }
    assert.are.equal(0, status, err)
    assert.are.equal(1, #server:log("token"))
    assert.matches("grant_type=refresh_token", server:log("token")[1].body)
    assert.matches("^ya29%.fake%-", bearer(server:log("get")[1]))
  end)

  it("impersonates with the file's credentials: generateAccessToken with their token, then the call", function()
    local op = server:create {}
    local _, err, status = main { "get", op.name, "--credentials", user_file, "--impersonate-service-account", TARGET }
    assert.are.equal(0, status, err)
    local iam = server:log("iam")
    assert.are.equal(1, #iam)
    assert.are.equal("/v1/projects/-/serviceAccounts/" .. TARGET .. ":generateAccessToken", iam[1].path)
    assert.matches("^ya29%.fake%-", bearer(iam[1]))
    assert.are.same({ delegates = {}, scope = { "https://www.googleapis.com/auth/cloud-platform" }, lifetime = "3600s" },
      cjson.decode(iam[1].body))
    assert.matches("^ya29%.iam%-", bearer(server:log("get")[1]))
  end)

  it("impersonates with the environment's credentials (GOOGLE_APPLICATION_CREDENTIALS)", function()
    local getenv = os.getenv
    os.getenv = function(name) -- luacheck: ignore 122
      if name == "GOOGLE_APPLICATION_CREDENTIALS" then return user_file end
      return getenv(name)
    end
    local ok, out, err, status = pcall(main, { "get", server:create {}.name, "--impersonate-service-account", TARGET })
    os.getenv = getenv -- luacheck: ignore 122
    assert(ok, out)
    assert.are.equal(0, status, err)
    assert.are.equal(1, #server:log("token"))
    assert.are.equal(1, #server:log("iam"))
    assert.matches("^ya29%.iam%-", bearer(server:log("get")[1]))
  end)

  it("refuses an --impersonate-service-account that is no email, before any request (exit 2)", function()
    local _, err, status = main { "get", "projects/p/locations/us-central1/operations/1", "--credentials", user_file,
      "--impersonate-service-account", "not an email" }
    assert.are.equal(2, status)
    assert.matches("impersonate_service_account", err)
    assert.are.equal(0, #server:log())
  end)

  it("exits 3 with an AuthError naming the file when --credentials names a missing file", function()
    local _, err, status = main { "get", "projects/p/locations/us-central1/operations/1", "--credentials",
      dir .. "/missing.json" }
    assert.are.equal(3, status)
    assert.is_truthy(err:find(dir .. "/missing.json", 1, true), err)
    assert.are.equal(0, #server:log())
  end)

  it("names the impersonated account when Vertex refuses the call (403)", function()
    local op = server:create {}
    server:fault { match = "get", status = 403 }
    local _, err, status = main { "get", op.name, "--credentials", user_file, "--impersonate-service-account", TARGET,
      "--retries", "0" }
    assert.are.equal(4, status)
    assert.is_truthy(err:find("principal " .. TARGET, 1, true), err)
    assert.is_nil(err:find("test-secret", 1, true))
  end)

  it("lists both flags in --help", function()
    local out = main { "--help" }
    assert.is_truthy(out:find("--credentials FILE", 1, true), out)
    assert.is_truthy(out:find("--impersonate-service-account EMAIL", 1, true), out)
  end)
end)
