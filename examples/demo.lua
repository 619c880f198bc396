-- make demo: the command line against the bundled fake Vertex server.
--  1. cancel a running operation with --wait: it ends CANCELLED;
--  2. the same for an operation that completes before the cancel lands.
-- Run from the repository root (the Makefile sets LUA_PATH and LUA_CPATH).
local fake = require "support.fake"

local lua = os.getenv("VERTEXOPS_LUA") or "lua5.4"
local server = fake.start()
local ok, err = pcall(function()
  print(("fake Vertex server on %s (HTTP/2, self-signed certificate)\n"):format(server.endpoint))
  local env = ("GOOGLE_OAUTH_ACCESS_TOKEN=test-token VERTEXOPS_ENDPOINT=%s "):format(server.endpoint)
  local function run(args)
    print("$ vertexops " .. args)
    local status = os.execute(env .. lua .. " bin/vertexops " .. args .. " --ca-file " .. server.ca_file)
    print()
    return status
  end

  local running = server:create { done_after = 3600, progress = true }
  run("get " .. running.name)
  assert(run("cancel " .. running.name .. " --wait"), "cancel --wait failed")
  assert(run("get " .. running.name .. " --json"))

  local finishing = server:create { done_after = 3600, cancel = "late" }
  print("# an operation that completes before the cancel lands:")
  assert(run("cancel " .. finishing.name .. " --wait"), "cancel --wait failed")

  local n = #server:log()
  print(("the fake server answered %d requests"):format(n))
end)
server:stop()
if not ok then error(err, 0) end
