-- make test: once
-- The executable credential source inside nginx (examples/openresty/nginx.conf, with
-- GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES passed by an `env` directive): it runs the program with
-- ngx.pipe (lua-resty-core), never core.spawn (which would block the worker and race nginx's own
-- SIGCHLD reaping). Debian's libnginx-mod-http-lua 0.10.23 is built without ngx.pipe: there the
-- call raises a clear AuthError and nothing runs; an nginx with ngx.pipe gets the token.
local cjson = require "cjson"
local fake = require "support.fake"
local openresty = require "support.openresty"

describe("the executable credential source inside nginx", function()
  local h = openresty.credentials_harness(function(h)
    local dir, endpoint = h.dir, h.endpoint
    local script = dir .. "/token.sh"
    fake.write(script, "#!/bin/sh\necho run >> " .. dir .. "/runs.txt\nprintf '%s' '" .. cjson.encode {
      version = 1, success = true, token_type = "urn:ietf:params:oauth:token-type:jwt",
      id_token = "test-subject-token", expiration_time = os.time() + 3600 } .. "'\n")
    os.execute("chmod +x '" .. script .. "'")
    fake.write(dir .. "/external.json", cjson.encode {
      type = "external_account", subject_token_type = "urn:ietf:params:oauth:token-type:jwt",
      audience = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q",
      token_url = endpoint .. "/v1/token", credential_source = { executable = { command = script } } })
    return openresty.start(h.server, {
      env = { GOOGLE_OAUTH_ACCESS_TOKEN = "", GOOGLE_APPLICATION_CREDENTIALS = dir .. "/external.json",
              GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES = "1" },
      conf = { { "env VERTEXOPS_CA_FILE;", "env VERTEXOPS_CA_FILE;\nenv GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES;" } },
    })
  end)
  local server, app, dir
  before_each(function() server, app, dir = h.server, h.app, h.dir end)

  it("runs the program with ngx.pipe, or says clearly that this nginx has no ngx.pipe", function()
    local name = server:create {}.name
    local doc = app:run("return vertexops.get(args.name)", { name = name })
    local has_pipe = app:result("return (pcall(require, 'ngx.pipe'))")
    print("ngx.pipe in this nginx: " .. tostring(has_pipe))
    if has_pipe then
      assert.is_true(doc.ok, cjson.encode(doc.error))
      assert.equal(1, #server:log("sts"))
      return
    end
    assert.is_false(doc.ok)
    local err = doc.error.raised or doc.error
    assert.equal("AuthError", table.concat(err.tags, ","))
    assert.matches("executable .*token%.sh cannot start inside nginx: ngx%.pipe is not available in this nginx",
      err.message)
    assert.is_nil(fake.read(dir .. "/runs.txt"))
    assert.equal(0, #server:log())
  end)
end)
