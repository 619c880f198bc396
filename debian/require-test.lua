-- dh-lua's build-time test (LUA_TEST), run as `luaX.Y -l vertexops debian/require-test.lua` and
-- from a C host linked with the core: the module loads and names its version.
local vertexops = require "vertexops"
assert(type(vertexops._VERSION) == "string" and vertexops._VERSION:match("^%d+%.%d+%.%d+"), "no _VERSION")
assert(type(require("vertexops.core").cancel) == "function", "vertexops.core has no cancel")
print("vertexops " .. vertexops._VERSION .. " loads in " .. _VERSION)
