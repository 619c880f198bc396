-- make test: once
-- Inside nginx (examples/openresty/nginx.conf, the cosocket transport, shared_dict): an
-- external_account_authorized_user file refreshes at the fake's STS (/v1/oauthtoken) once for two
-- clients sharing the dict, and the impersonate_service_account option exchanges the source's
-- token at IAM Credentials once for two clients; neither secret nor token reaches nginx's log.
local cjson = require "cjson"
local fake = require "support.fake"
local openresty = require "support.openresty"

local TARGET = "target@test-project.iam.gserviceaccount.com"

-- two clients (each its own provider), each one get: the second finds the token in the dict
local TWO_CLIENTS = [[
  local out = {}
  for i = 1, 2 do
    local c = vertexops.client { shared_dict = "vertexops", credentials = args.file,
                                 impersonate_service_account = args.target, iam_endpoint = args.iam }
    local ok, err = pcall(c.get, c, args.name)
    out[i] = { ok = ok, err = not ok and tostring(err) or nil }
  end
  return out]]

describe("workforce users and impersonate_service_account inside nginx (shared_dict)", function()
  local h = openresty.credentials_harness(function(h)
    local dir, endpoint = h.dir, h.endpoint
    fake.write(dir .. "/wfu.json", cjson.encode {
      type = "external_account_authorized_user", audience = "//iam.googleapis.com/locations/global/workforcePools/p/providers/o",
      client_id = "test-workforce-client", client_secret = "test-workforce-secret",
      refresh_token = "test-workforce-refresh", token_url = endpoint .. "/v1/oauthtoken" })
    fake.write(dir .. "/user.json", cjson.encode {
      type = "authorized_user", client_id = "test-client", client_secret = "test-secret",
      refresh_token = "test-refresh", token_uri = endpoint .. "/token" })
    return openresty.start(h.server, {})
  end)
  local server, app, dir, endpoint
  before_each(function()
    server, app, dir, endpoint = h.server, h.app, h.dir, h.endpoint
    app:result([[ngx.shared.vertexops:flush_all() return true]])
  end)

  local function run(args)
    args.name = server:create {}.name
    local res = app:result(TWO_CLIENTS, args)
    for i = 1, 2 do assert.is_true(res[i].ok, "call " .. i .. ": " .. tostring(res[i].err)) end
    assert.are.equal(2, #server:log("get"))
  end

  local function clean_log()
    local log = app:error_log()
    for _, s in ipairs { "test-workforce-secret", "test-workforce-refresh", "test-secret", "test-refresh", "ya29." } do
      assert.is_nil(log:find(s, 1, true), s .. " in nginx's log")
    end
  end

  it("refreshes a workforce user's token once for two clients, with the client as Basic", function()
    run { file = dir .. "/wfu.json" }
    local sts = server:log("sts")
    assert.are.equal(1, #sts)
    assert.are.equal("grant_type=refresh_token&refresh_token=test-workforce-refresh", sts[1].body)
    assert.matches("^Basic ", sts[1].headers.authorization)
    assert.matches("^Bearer ya29%.wfu%-", server:log("get")[2].headers.authorization)
    clean_log()
  end)

  it("impersonates once for two clients", function()
    run { file = dir .. "/user.json", target = TARGET, iam = endpoint }
    assert.are.equal(1, #server:log("token"))
    assert.are.equal(1, #server:log("iam"))
    assert.matches("^Bearer ya29%.iam%-", server:log("get")[2].headers.authorization)
    clean_log()
  end)
end)
