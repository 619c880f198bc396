-- Key loading and RS256: core.rs256 and core.b64url on a PEM key, and a service-account key file
-- read and signed by vertexops.auth (a self-signed JWT: no token request).
local core = require "vertexops.core"
local auth = require "vertexops.auth"
local function read(path)
  local f = assert(io.open(assert(path, "TORTURE_KEYFILE is not set"), "rb"))
  local s = f:read("a")
  f:close()
  return s
end
return {
  setup = function()
    local keyfile = os.getenv("TORTURE_KEYFILE")
    local pem = require("cjson").decode(read(keyfile)).private_key
    return { keyfile = keyfile, pem = pem }
  end,
  run = function(ctx)
    local sig = assert(core.rs256(ctx.pem, "eyJhbGciOiJSUzI1NiJ9.e30"))
    assert(#core.b64url(sig) > 300)
    local nil1, why = core.rs256("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "x")
    assert(nil1 == nil and type(why) == "string")
    local p = auth.provider { credentials = ctx.keyfile, self_signed_jwt = true }
    local tok = p:token()
    assert(type(tok) == "string" and select(2, tok:gsub("%.", "")) == 2)
  end,
  check = function(ctx)
    assert(core.rs256(ctx.pem, "data"))
    local p = auth.provider { credentials = ctx.keyfile, self_signed_jwt = true }
    assert(p:token())
  end,
}
