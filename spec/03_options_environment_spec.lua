-- make test: once
-- Environment variables reach requests (docs/contract.md, "Environment variables"): a call in a
-- child interpreter started with them. (Run once, as when it was part of the packaging specs.)
local H = require "support.helper"

describe("environment", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  local function cancel_in_child(env)
    local op = server:create {}
    local out, ok = H.run_lua(([[
      local vertexops = require "vertexops"
      print(vertexops.cancel(%q, nil, { ca_file = %q, token = "test-token" }))
    ]]):format(op.name, server.ca_file), env)
    assert.is_true(ok, out)
    return server:log()[1]
  end

  it("VERTEXOPS_ENDPOINT replaces the default endpoint", function()
    local e = cancel_in_child { VERTEXOPS_ENDPOINT = server.endpoint, GOOGLE_CLOUD_QUOTA_PROJECT = "" }
    assert.are.equal("POST", e.method)
  end)

  it("GOOGLE_CLOUD_QUOTA_PROJECT is sent as x-goog-user-project", function()
    local e = cancel_in_child { VERTEXOPS_ENDPOINT = server.endpoint, GOOGLE_CLOUD_QUOTA_PROJECT = "quota-1" }
    assert.are.equal("quota-1", e.headers["x-goog-user-project"])
  end)
end)
