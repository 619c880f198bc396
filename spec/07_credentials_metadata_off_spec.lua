-- "No metadata server here": NO_GCE_CHECK=True (as Google's clients read it) or the option
-- metadata_server = false skip the credential chain's last step; no request reaches the metadata
-- server (the fake plays it), and the AuthError says why it was skipped. Each case runs in a child
-- interpreter with only the environment it names.
local H = require "support.helper"

describe("the metadata server turned off", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  local function child(env, extra)
    local op = server:create {}
    local e = { GOOGLE_OAUTH_ACCESS_TOKEN = "", GOOGLE_APPLICATION_CREDENTIALS = "", CLOUDSDK_CONFIG = "",
                HOME = "/nonexistent/home", GOOGLE_CLOUD_QUOTA_PROJECT = "", NO_GCE_CHECK = "",
                GCE_METADATA_HOST = "127.0.0.1:" .. server.http_port } -- the fake answers as the metadata server
    for k, v in pairs(env) do e[k] = v end
    local out, ok = H.run_lua(([[
      local vertexops = require "vertexops"
      local ok, err = pcall(vertexops.get, %q, nil, { endpoint = %q, ca_file = %q %s })
      io.write(ok and "ok" or tostring(err))
    ]]):format(op.name, server.endpoint, server.ca_file, extra or ""), e)
    assert.is_true(ok, out)
    return out
  end

  it("asks the metadata server when nothing turns it off", function()
    assert.are.equal("ok", child {})
    assert.are.equal(1, #server:log("metadata"))
  end)

  it("skips it with NO_GCE_CHECK=True, in any case: AuthError saying so, no request", function()
    for _, v in ipairs { "True", "true", "TRUE" } do
      local out = child { NO_GCE_CHECK = v }
      assert.matches("^AuthError: no Google credentials found", out)
      assert.matches("the metadata server is off (NO_GCE_CHECK=" .. v .. ")", out, 1, true)
    end
    assert.are.equal(0, #server:log("metadata"))
  end)

  it("asks it with NO_GCE_CHECK=False", function()
    assert.are.equal("ok", child { NO_GCE_CHECK = "False" })
    assert.are.equal(1, #server:log("metadata"))
  end)

  it("skips it with the option metadata_server = false", function()
    local out = child({}, ", metadata_server = false")
    assert.matches("the metadata server is off (option metadata_server = false)", out, 1, true)
    assert.are.equal(0, #server:log("metadata"))
  end)

  it("refuses a metadata_server that is not a boolean, before any I/O", function()
    local out = child({}, ', metadata_server = "no"')
    assert.matches("^TypeError: .*metadata_server", out)
    assert.are.equal(0, #server:log())
  end)
end)
