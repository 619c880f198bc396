-- vertexops.testing.tokens: credentials. The endpoints that issue access tokens (the OAuth token
-- endpoint: JWT bearer and refresh-token grants; the GCE metadata server), the bearer check every
-- Vertex call passes, and the control API's settings of both (/_control/oauth, /_control/tokens).
-- Each endpoint is a function of ENDPOINTS, keyed by the call server.lua's PATHS name. Google's
-- STS token exchange (/v1/token), IAM Credentials (generateAccessToken) and a subject-token URL
-- are in sts.lua, the same way; a token they issue stops being accepted at its expiry.
local cjson = require("cjson.safe").new()
local check = require "vertexops.testing.check"
local reply = require "vertexops.testing.reply"
local state = require "vertexops.testing.state"
local sts = require "vertexops.testing.sts"
local jwt = require "vertexops.testing.jwt"

local ngx = ngx
local send = reply.send
local LIMITS = check.LIMITS

local M = {}

local function b64url_decode(s)
  s = s:gsub("-", "+"):gsub("_", "/")
  s = s .. string.rep("=", (4 - #s % 4) % 4)
  return ngx.decode_base64(s)
end

-- A fresh access token, accepted from now on as a bearer token: the token endpoints' answer.
local function issue()
  state.issued = state.issued + 1
  local token = "ya29.fake-" .. state.issued
  state.tokens[token] = true
  local e = state.oauth.expires_in
  return { access_token = token, expires_in = state.oauth.expires_in_string and tostring(e) or e,
           token_type = "Bearer" }
end

-- The refusals of the token endpoint: status and body.
local function oauth_error(err, description)
  return 400, { error = err, error_description = description }
end

local JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"

-- A service account's signed JWT (the signature is not verified): nil, or the refusal.
local function refuse_jwt(args)
  local h, c, sig = (args.assertion or ""):match("^([%w_-]+)%.([%w_-]+)%.([%w_-]+)$")
  local header = h and cjson.decode(b64url_decode(h) or "")
  local claims = c and cjson.decode(b64url_decode(c) or "")
  if not (header and claims and sig) then return oauth_error("invalid_request", "Malformed JWT.") end
  -- typ is optional (RFC 7519 5.1): google-auth-library-nodejs signs {"alg":"RS256"} alone
  if header.alg ~= "RS256" or header.typ ~= nil and header.typ ~= "JWT" then
    return oauth_error("invalid_grant", "Bad JWT header.")
  end
  if state.oauth.client_email and claims.iss ~= state.oauth.client_email then
    return oauth_error("invalid_grant", "Invalid JWT: unknown issuer.")
  end
  if type(claims.aud) ~= "string" or not claims.aud:match("/token$") or type(claims.scope) ~= "string"
    or type(claims.iat) ~= "number" or claims.exp ~= claims.iat + 3600 then
    return oauth_error("invalid_grant", "Invalid JWT claims.")
  end
end

-- An authorized user's refresh token: nil, or the refusal.
local function refuse_refresh(args)
  local o = state.oauth
  if args.client_id ~= o.client_id or args.client_secret ~= o.client_secret then
    return 401, { error = "invalid_client", error_description = "The OAuth client was not found." }
  end
  if args.refresh_token ~= o.refresh_token then
    return oauth_error("invalid_grant", "Token has been expired or revoked.")
  end
end

-- The grants the token endpoint knows, each its checks.
local GRANTS = { [JWT_BEARER] = refuse_jwt, refresh_token = refuse_refresh }

-- POST /token (https://oauth2.googleapis.com/token)
local function token_endpoint()
  local args = ngx.req.get_post_args()
  local refuse = GRANTS[args.grant_type]
  if not refuse then
    return send(oauth_error("unsupported_grant_type", "Invalid grant_type: " .. tostring(args.grant_type)))
  end
  local status, body = refuse(args)
  if status then return send(status, body) end
  return send(200, issue())
end

-- GET /computeMetadata/v1/instance/service-accounts/default/token (Metadata-Flavor: Google)
local function metadata_endpoint()
  if ngx.var.http_metadata_flavor ~= "Google" then
    ngx.status = 403
    ngx.header["Content-Type"] = "text/html"
    ngx.print("Missing required header: Metadata-Flavor")
    return
  end
  return send(200, issue(), { ["Metadata-Flavor"] = "Google" })
end

--- The token endpoints, keyed by their call (server.lua's PATHS). They need no bearer token.
M.ENDPOINTS = { token = token_endpoint, metadata = metadata_endpoint }

--- What the API key of a request (x-goog-api-key, express mode) is to the server: nil when the
--- request has none, "accepted" when it is one of the accepted keys, else "refused". (The request
--- log keeps this, never the key: log.lua.)
function M.api_key(headers)
  local key = headers["x-goog-api-key"]
  if key == nil then return nil end
  return type(key) == "string" and state.api_keys[key] == true and "accepted" or "refused"
end

--- true when the request carries an API key the server accepts, or else a bearer token it accepts:
--- one it issued or was given (/_control/tokens), or a self-signed JWT by a key it knows (jwt.lua).
--- Else false and the reason of the 401 (ErrorInfo), for unauthorized().
function M.authorized()
  local key = M.api_key(ngx.req.get_headers(200))
  if key then return key == "accepted" end
  local token = (ngx.var.http_authorization or ""):match("^Bearer (.+)$")
  if token ~= nil and state.tokens[token] == true and not sts.expired(token) then return true end
  if token ~= nil and state.tokens[token] == nil and next(state.keys) and jwt.is_jwt(token) then
    local reason = jwt.refusal(token)
    if not reason then return true end
    return false, reason
  end
  return false
end

--- Vertex's answer to a request without an accepted API key or bearer token: Google's 400
--- API_KEY_INVALID for a key, its 401 UNAUTHENTICATED for a token (reason: ACCESS_TOKEN_EXPIRED for
--- an expired self-signed JWT, else ACCESS_TOKEN_TYPE_UNSUPPORTED).
function M.unauthorized(reason)
  if M.api_key(ngx.req.get_headers(200)) then
    return reply.gerror(400, "API key not valid. Please pass a valid API key.", nil, { reason = "API_KEY_INVALID" })
  end
  return reply.gerror(401, "Request had invalid authentication credentials. Expected OAuth 2 access "
    .. "token, login cookie or other valid authentication credential.", nil,
    { reason = reason or "ACCESS_TOKEN_TYPE_UNSUPPORTED" })
end

-- settings (the control API) -----------------------------------------------------------------

local OAUTH = { client_id = "string", client_secret = "string", refresh_token = "string", client_email = "string",
                expires_in = "string|number|boolean", expires_in_string = "boolean" }

--- /_control/oauth: what the token endpoint accepts. Returns nil, or the message of a 400.
function M.check_oauth(body) return check.settings("oauth", OAUTH, body) end

function M.set_oauth(body)
  for k, v in pairs(body) do state.oauth[k] = v end
end

--- /_control/tokens: the bearer tokens accepted (a list of strings). Returns nil, or the message of a 400.
function M.check_tokens(body)
  if type(body) ~= "table" or next(body) ~= nil and #body == 0 then return "tokens must be a list of strings" end
  if #body > LIMITS.tokens then return ("at most %d tokens, got %d"):format(LIMITS.tokens, #body) end
  for _, t in ipairs(body) do
    if type(t) ~= "string" or #t == 0 or #t > LIMITS.token_length then
      return ("each token must be a string of 1 to %d bytes"):format(LIMITS.token_length)
    end
  end
end

function M.set_tokens(list)
  state.tokens = {}
  for _, t in ipairs(list) do state.tokens[t] = true end
end

--- /_control/api_keys: the API keys accepted (a list of strings, as tokens).
function M.check_api_keys(body)
  local m = M.check_tokens(body)
  return m and m:gsub("^tokens", "api keys"):gsub("each token", "each api key")
end

function M.set_api_keys(list)
  state.api_keys = {}
  for _, k in ipairs(list) do state.api_keys[k] = true end
end

return M
