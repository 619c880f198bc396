-- Cancel an operation and wait until it has ended.
--   lua5.4 examples/cancel_and_wait.lua projects/P/locations/L/operations/ID
-- Token: $GOOGLE_OAUTH_ACCESS_TOKEN. $VERTEXOPS_ENDPOINT and $VERTEXOPS_CA_FILE point it elsewhere
-- (the specs run it against the fake server that way).
local vertexops = require "vertexops"

local name = assert(arg[1], "usage: cancel_and_wait.lua OPERATION_NAME")
local client = vertexops.client { ca_file = os.getenv("VERTEXOPS_CA_FILE"), timeout = 600 }

local ok, op, cancelled = pcall(client.cancel_and_wait, client, name)
if not ok then
  local err = op
  if vertexops.is(err, "HttpError") and err.status == "UNIMPLEMENTED" then
    print("this operation cannot be cancelled")
  elseif vertexops.is(err, "OperationError") then
    print("the operation failed: " .. err.operation.error.message)
  else
    print("could not cancel: " .. tostring(err))
  end
  os.exit(1)
end
if cancelled then
  print(op.name .. " was cancelled")
else
  print(op.name .. " completed before the cancel took effect")
end
