-- The command line's --log-http (as gcloud's): every request and answer head on stderr, redacted
-- (Authorization: REDACTED, x-goog-api-key: REDACTED), one block per attempt the fake logged.
-- Contract: docs/contract.md, "Hooks, trace context and logs" (Logs); lua/vertexops/cli/commands.lua.
local H = require "support.helper"

local KEY = "AIzaSy-cli-log-http-0123456789abcdef"

local function blocks(err)
  local n = 0
  for _ in err:gmatch("\n?> [A-Z]+ https://") do n = n + 1 end
  return n
end

describe("vertexops --log-http", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  it("prints the request and answer heads of a call on stderr, the token as REDACTED", function()
    local op = server:create {}
    local out, err, status = H.cli_main(server, { "get", op.name, "--log-http" })
    assert.are.equal(0, status, err)
    assert.is_truthy(out:find(op.name, 1, true))
    local url = server.endpoint:gsub("{region}", "us-central1") .. "/v1beta1/" .. op.name
    assert.is_truthy(err:find("> GET " .. url .. "\n", 1, true), err)
    assert.is_truthy(err:find("\n> Accept: application/json\n", 1, true), err)
    assert.is_truthy(err:find("\n> Authorization: REDACTED\n", 1, true), err)
    assert.is_truthy(err:find("\n< 200 %(attempt 1, curl, %d+ ms%)\n"), err)
    assert.is_truthy(err:find("\n< content-type: application/json", 1, true), err)
    assert.is_nil(err:find("test-token", 1, true))
    assert.are.equal(#server:log(), blocks(err))
  end)

  it("prints one block per attempt, the failed one's status and headers too", function()
    local op = server:create {}
    server:fault { match = "cancel", status = 503 }
    local _, err, status = H.cli_main(server, { "cancel", op.name, "--log-http" },
      { options = H.opts(server, { sleep = function() end }) })
    assert.are.equal(0, status, err)
    assert.are.equal(2, #server:log("cancel"))
    assert.are.equal(2, blocks(err))
    assert.is_truthy(err:find("\n< 503 %(attempt 1, curl"), err)
    assert.is_truthy(err:find("\n< 200 %(attempt 2, curl"), err)
  end)

  it("shows an API key's header as REDACTED and never the key", function()
    server:api_keys { KEY }
    local op = server:create {}
    local o = H.opts(server, { api_key = KEY })
    o.token = nil
    local _, err, status = H.cli_main(server, { "get", op.name, "--log-http" }, { options = o })
    assert.are.equal(0, status, err)
    assert.is_truthy(err:find("\n> x-goog-api-key: REDACTED\n", 1, true), err)
    assert.is_nil(err:find(KEY, 1, true))
    assert.is_nil(err:find("Authorization", 1, true))
  end)

  it("prints nothing of the exchanges without it", function()
    local op = server:create {}
    local _, err, status = H.cli_main(server, { "get", op.name })
    assert.are.equal(0, status)
    assert.are.equal(0, blocks(err))
  end)

  it("is in --help of the commands that call the service", function()
    local out = H.cli_main(server, { "get", "--help" })
    assert.is_truthy(out:find("--log-http", 1, true), out)
  end)
end)
