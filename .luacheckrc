std = "max"
max_line_length = 130
files["spec"] = { std = "+busted" }
files["lua/vertexops/testing/server.lua"] = { globals = { "ngx" } }
files["examples/testing/spec"] = { std = "+busted" }
exclude_files = { "build", ".luarocks", "lua_modules" }
files["examples/openresty"] = { globals = { "ngx" } }
