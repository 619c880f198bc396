std = "max"
max_line_length = 130
files["spec"] = { std = "+busted" }
-- the fake service runs inside nginx; its driver (init.lua) does not
files["lua/vertexops/testing"] = { globals = { "ngx" } }
files["lua/vertexops/testing/init.lua"] = { not_globals = { "ngx" } }
files["examples/testing/spec"] = { std = "+busted" }
exclude_files = { "build", ".luarocks", "lua_modules" }
files["examples/openresty"] = { globals = { "ngx" } }
