-- vertexops.auth.service_account: a service-account key file. Its token: an RS256 JWT (signed in
-- C, csrc/jwt.c) exchanged at token_uri by the jwt-bearer grant, or, in self_signed_jwt mode, the
-- JWT itself sent as the bearer token (no exchange: one round trip on a cold call). The mode is the
-- option when given; by default on when calls go to Google's own hosts (no endpoint), as Google's
-- generated clients do (useJWTAccessWithScope, always_use_jwt_access); always outside
-- googleapis.com, as google-auth does (Provider:_self_signed).
local core = require "vertexops.core"
local common = require "vertexops.auth.common"
local raise = require("vertexops.errors").raise
local file = require "vertexops.auth.file"
local cjson = common.json

local os_time, string_format, type = os.time, string.format, type

local _M = {
  kind = "service_account",
  fields = { "client_email", "private_key" }, -- what the file must have (non-empty strings)
  refreshable = true,
  identity = file.identity, -- in the shared_dict key
}

-- A signed JWT of claims, with the key of the file src.
local function jwt(src, claims)
  local sa = src.data
  local header = { alg = "RS256", typ = "JWT", kid = type(sa.private_key_id) == "string" and sa.private_key_id or nil }
  local input = core.b64url(cjson.encode(header)) .. "." .. core.b64url(cjson.encode(claims))
  local sig, why = core.rs256(sa.private_key, input)
  if not sig then raise("AuthError", string_format("credentials file %s: %s", src.path, why)) end
  return input .. "." .. core.b64url(sig)
end

--- The token and its lifetime for scope, in the provider's self_signed_jwt mode for a call with options o.
function _M.fetch(provider, src, o, deadline, scope)
  local sa = src.data
  local iat = os_time()
  if provider:_self_signed(src, o) then
    -- Sent as the bearer token itself: no token exchange.
    return jwt(src, { iss = sa.client_email, sub = sa.client_email, scope = scope, iat = iat,
                      exp = iat + common.JWT_LIFETIME }), common.JWT_LIFETIME
  end
  local uri = sa.token_uri or common.token_uri(src.universe_domain)
  common.check_url(uri, "token_uri") -- before signing: a token_uri that cannot be used is named first
  local assertion = jwt(src, { iss = sa.client_email, scope = scope, aud = uri, iat = iat,
                               exp = iat + common.JWT_LIFETIME })
  return common.grant(provider, uri, {
    { "grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer" }, { "assertion", assertion } }, o, deadline)
end

return _M
