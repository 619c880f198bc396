-- VERTEXOPS_CA_FILE is the default of the ca_file option (csrc/options.c's schema, read by
-- lua/vertexops/options.lua like VERTEXOPS_ENDPOINT): `vertexops fake` prints it in its export line.
-- Each case runs in a child interpreter with the variable set.
local H = require "support.helper"

describe("VERTEXOPS_CA_FILE", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  local function get(env, extra)
    local op = server:create {}
    return H.run_lua(([[
      local vertexops = require "vertexops"
      local o = { endpoint = %q, token = "test-token", retry = false }
      %s
      local ok, res = pcall(vertexops.get, %q, nil, o)
      print(ok and "GOT " .. res.name or "ERR " .. tostring(res))]]):format(server.endpoint, extra or "", op.name),
      env), op
  end

  it("gives ca_file when the options have none", function()
    local out, op = get { VERTEXOPS_CA_FILE = server.ca_file }
    assert.matches("GOT " .. op.name, out, 1, true)
  end)

  it("yields to the ca_file option", function()
    local out = get({ VERTEXOPS_CA_FILE = "/nonexistent/ca.pem" }, ("o.ca_file = %q"):format(server.ca_file))
    assert.matches("^GOT ", out)
  end)

  it("unset: the system store, which does not know the fake's CA", function()
    local out = get { VERTEXOPS_CA_FILE = "" } -- H.run unsets a variable given as ""
    assert.matches("ERR ConnectionFailedError: certificate verify failed", out, 1, true)
  end)

  it("naming a file that cannot be read fails the call with ConnectionFailedError", function()
    local out = get { VERTEXOPS_CA_FILE = "/nonexistent/ca.pem" }
    assert.matches("^ERR ConnectionFailedError", out)
  end)
end)
