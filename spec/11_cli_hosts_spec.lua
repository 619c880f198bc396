-- make test: once
-- The command line reaches Google's host of each location kind in the universe of
-- GOOGLE_CLOUD_UNIVERSE_DOMAIN (docs/contract.md, "Google's hosts"), with no --endpoint nor
-- VERTEXOPS_ENDPOINT: a region, the us and eu multi-regions (representative endpoints), global, and
-- a name without a location (the global host). The universe is under .invalid, which never resolves
-- (RFC 6761): the ConnectionFailedError (exit 5) names the host the request went to, and nothing
-- leaves the machine.
local H = require "support.helper"

local UD = "example.invalid"

-- bin/vertexops <args> with the universe and no endpoint: stdout and stderr together, exit code.
local function run(args)
  return H.run(H.lua_command() .. " bin/vertexops " .. args .. " --retries 0 --timeout 10",
    { GOOGLE_CLOUD_UNIVERSE_DOMAIN = UD, VERTEXOPS_ENDPOINT = "", GOOGLE_OAUTH_ACCESS_TOKEN = "test-token",
      GOOGLE_CLOUD_QUOTA_PROJECT = "", https_proxy = "", HTTPS_PROXY = "", ALL_PROXY = "", all_proxy = "" })
end

describe("vertexops in a universe from GOOGLE_CLOUD_UNIVERSE_DOMAIN", function()
  local cases = {
    { "get projects/p/locations/us-central1/operations/1", "us-central1-aiplatform." .. UD },
    { "cancel projects/p/locations/us/operations/1", "aiplatform.us.rep." .. UD },
    { "cancel projects/p/locations/eu/customJobs/4", "aiplatform.eu.rep." .. UD },
    { "list projects/p/locations/global", "aiplatform." .. UD },
    { "get reasoningEngines/r/sessions/s/operations/9 --api-version v1", "aiplatform." .. UD },
    { "cancel-all projects/p/locations/europe-west4/customJobs/42 --yes", "europe-west4-aiplatform." .. UD },
  }
  for _, c in ipairs(cases) do
    it(("sends %s to %s"):format(c[1]:match("^%S+ %S+"), c[2]), function()
      local out, _, code = run(c[1])
      assert.are.equal(5, code, out)
      assert.matches("ConnectionFailedError: Could not resolve host: " .. c[2]:gsub("%p", "%%%0") .. " ", out)
    end)
  end
end)
