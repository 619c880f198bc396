std = "max"
max_line_length = 130
files["spec"] = { std = "+busted" }
files["spec/fake"] = { globals = { "ngx" } }
exclude_files = { "build", ".luarocks", "lua_modules" }
files["examples/openresty"] = { globals = { "ngx" } }
