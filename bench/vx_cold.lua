-- make bench's cold start: vertexops in a fresh process, credentials from a service-account key
-- file, one get.   lua bench/vx_cold.lua ENDPOINT CA_FILE KEY_FILE NAME self|exchange
-- self: self_signed_jwt = true (the JWT is the token: one round trip); exchange: false (the
-- jwt-bearer grant at the file's token_uri, then the get). Prints one JSON line.
local t0 = os.clock()
local vertexops = require "vertexops"
local endpoint, ca_file, key_file, name, mode = arg[1], arg[2], arg[3], arg[4], arg[5]
local c = vertexops.client { endpoint = endpoint, ca_file = ca_file, credentials = key_file,
                             self_signed_jwt = mode == "self" }
local op = c:get(name)
c:close()
print(('{"ok": %s, "cpu_seconds": %.4f}'):format(tostring(op.name == name), os.clock() - t0))
