-- Use a service-account key explicitly, with a token cached per client.
--   lua5.4 examples/service_account.lua KEY_FILE.json OPERATION_NAME
-- (Without `credentials`, vertexops finds credentials itself: GOOGLE_OAUTH_ACCESS_TOKEN,
-- GOOGLE_APPLICATION_CREDENTIALS, the gcloud file, then the metadata server.)
local vertexops = require "vertexops"
local auth = require "vertexops.auth"

local key_file, name = arg[1], arg[2]
assert(key_file and name, "usage: service_account.lua KEY_FILE.json OPERATION_NAME")

-- One provider can serve several clients; it fetches a token once and refreshes it 5 minutes
-- before it expires (or at once when Vertex answers 401).
local provider = auth.provider {
  credentials = key_file,
  scopes = { "https://www.googleapis.com/auth/cloud-platform" },
  ca_file = os.getenv("VERTEXOPS_CA_FILE"), -- only for a test server with its own certificate
}
local client = vertexops.client { credentials = provider, ca_file = os.getenv("VERTEXOPS_CA_FILE") }

local op = client:get(name)
print(op.name, op.done and "done" or "running")
print("token requests: " .. provider.fetches)
