-- make demo: cancel a running operation on the bundled fake Vertex server and read it back.
-- Run from the repository root (the Makefile sets LUA_PATH and LUA_CPATH).
local vertexops = require "vertexops"
local fake = require "support.fake"
local cjson = require "cjson"

local server = fake.start()
local ok, err = pcall(function()
  print(("fake Vertex server on %s (HTTP/2, self-signed certificate)"):format(server.endpoint))
  local client = vertexops.client {
    endpoint = server.endpoint, -- real use: leave it out for https://{region}-aiplatform.googleapis.com
    ca_file = server.ca_file,
    token = "test-token",
  }
  local op = server:create { done_after = 3600 } -- a long-running job that is still running
  print("running:   " .. op.name)

  client:cancel(op.name) -- the region comes from the name: us-central1
  print("cancelled: POST .../" .. op.name:match("operations/.*") .. ":cancel")

  local final = client:get(op.name)
  print(("final:     done=%s error.code=%d (%s)"):format(tostring(final.done), final.error.code, final.error.message))
  print(cjson.encode(final))
  local stats = client:stats()
  print(("%d requests over %d connection"):format(stats.requests, stats.connects))
  assert(final.done and final.error.code == 1, "the operation did not end CANCELLED")
end)
server:stop()
if not ok then error(err, 0) end
