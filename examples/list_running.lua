-- List the operations of a project and location that are still running.
--   lua5.4 examples/list_running.lua projects/P/locations/L
local vertexops = require "vertexops"

local parent = assert(arg[1], "usage: list_running.lua projects/P/locations/L")
local n = 0
for op in vertexops.operations(parent, nil, { filter = "done=false", page_size = 100,
                                              ca_file = os.getenv("VERTEXOPS_CA_FILE") }) do
  n = n + 1
  local md = op.metadata or {}
  print(op.name, md["@type"] and md["@type"]:match("[^.]+$") or "")
end
print(n .. " running")
