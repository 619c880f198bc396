-- make test: once
-- An external_account credentials file (subject token from a file) inside nginx:
-- examples/openresty/nginx.conf with two workers and shared_dict, GOOGLE_APPLICATION_CREDENTIALS
-- naming the file, the STS being the fake's (reached over the cosocket transport). The fake holds
-- each token exchange for a while so that both workers ask while one is in flight: it sees one
-- exchange between them, with google-auth's form, and neither the subject token nor the access
-- token appears in nginx's log.
-- Contract: docs/contract.md, "Credentials" and "Hosts".
local cjson = require "cjson"
local fake = require "support.fake"
local openresty = require "support.openresty"

local SUBJECT = "nginx-subject-token"

describe("external_account credentials inside nginx (two workers, shared_dict)", function()
  local h = openresty.credentials_harness(function(h)
    fake.write(h.dir .. "/subject.txt", SUBJECT)
    fake.write(h.dir .. "/external.json", cjson.encode {
      type = "external_account", subject_token_type = "urn:ietf:params:oauth:token-type:jwt",
      audience = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q",
      token_url = h.endpoint .. "/v1/token", credential_source = { file = h.dir .. "/subject.txt" } })
    return openresty.start_two_workers(h.server,
      { GOOGLE_OAUTH_ACCESS_TOKEN = "", GOOGLE_APPLICATION_CREDENTIALS = h.dir .. "/external.json" })
  end)
  local server, app
  before_each(function() server, app = h.server, h.app end)

  it("makes one token exchange for both workers, and keeps the tokens out of the log", function()
    server:sts { subject_token = SUBJECT }
    local created = server:create_many(200, {})
    server:fault { match = "sts", delay = 0.5 }
    local ok, workers = openresty.probe_load(app, created.first, 200)
    assert.are.equal(200, ok)
    assert.are.equal(2, workers, "the load reached one worker only")
    local sts = server:log("sts")
    assert.are.equal(1, #sts)
    assert.is_truthy(sts[1].body:find("&subject_token=" .. SUBJECT .. "&", 1, true), sts[1].body)
    assert.are.equal(200, #server:log("cancel"))
    local token = server:log("cancel")[1].headers.authorization:match("^Bearer (.+)$")
    assert.matches("^ya29%.sts%-", token)
    assert.is_falsy(app:error_log():find(token, 1, true))
    assert.is_falsy(app:error_log():find(SUBJECT, 1, true))
  end)
end)
