-- vertexops.cli.version: `vertexops --version` and `vertexops version`: the version of vertexops
-- (csrc/vx.h's VX_VERSION, the one place it is written) and of what it runs with.
local core = require "vertexops.core"
local render = require "vertexops.cli.render"

local M = {}

--- versions() -> {vertexops, libcurl, openssl, lua}: "1.0.0", "7.88.1", "OpenSSL 3.0.11 19 Sep 2023",
--- "Lua 5.4" (LuaJIT: "Lua 5.1 (LuaJIT 2.1...)").
function M.versions()
  local jit = rawget(_G, "jit")
  return { vertexops = core.version, libcurl = core.curl_version, openssl = core.openssl_version,
           lua = _VERSION .. (jit and jit.version and " (" .. jit.version .. ")" or "") }
end

--- text() -> the lines of --version: "vertexops 1.0.0" first, then libcurl's, OpenSSL's and Lua's.
function M.text()
  local v = M.versions()
  return ("vertexops %s\nlibcurl %s\n%s\n%s\n"):format(v.vertexops, v.libcurl, v.openssl, v.lua)
end

--- run(inv, ctx) -> 0: the versions on stdout, as text or (--json) one JSON document.
function M.run(inv, ctx)
  if inv.flags.json then
    ctx:print(render.json(M.versions()))
  else
    ctx.stdout:write(M.text())
  end
  return 0
end

return M
