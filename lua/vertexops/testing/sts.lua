-- vertexops.testing.sts: the credentials of workload identity federation and impersonation, as
-- Google serves them: the Security Token Service (POST /v1/token, the RFC 8693 token exchange of
-- sts.googleapis.com; POST /v1/oauthtoken, its refresh of workforce users' tokens), IAM
-- Credentials (POST /v1/projects/-/serviceAccounts/EMAIL:generateAccessToken
-- of iamcredentials.googleapis.com) and an OIDC-style subject-token URL (GET /subject_token, what
-- a CI runner's or a cloud's identity endpoint serves). Their settings: /_control/sts (set, check).
-- Every token they issue is accepted as a bearer by the Vertex routes (state.tokens) until its
-- expiry on the server's clock (expired: tokens.lua's authorized() refuses it).
local cjson = require("cjson.safe").new()
local check = require "vertexops.testing.check"
local reply = require "vertexops.testing.reply"
local state = require "vertexops.testing.state"
local aws = require "vertexops.testing.aws"

local ngx = ngx
local send = reply.send

local M = {}

M.TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
M.ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"

-- What the endpoints accept and answer (server:sts{...} changes any of them; reset() restores them).
local function defaults()
  return {
    subject_token = "test-subject-token",   -- what the subject-token URL serves and the STS accepts
    subject_token_format = "text",          -- "text", or "json": {[subject_token_field] = token}
    subject_token_field = "id_token",
    subject_token_headers = nil,            -- {name = value}: the URL answers 401 without each
    subject_token_expired = false,          -- the STS refuses the subject token as expired
    audience = nil,                         -- the only audience the STS accepts (nil: any)
    client_id = nil, client_secret = nil,   -- when set: the STS needs them as Basic auth
    expires_in = 3600,                      -- of the STS's tokens
    max_lifetime = 3600,                    -- the longest lifetime generateAccessToken grants
    service_account = nil,                  -- the only email IAM knows (nil: any)
    -- /v1/oauthtoken (workforce users' refresh): the refresh token it accepts, the Basic client it
    -- needs, and a refresh token to answer beside the access token (rotation; nil: none)
    refresh_token = "test-workforce-refresh", refresh_client_id = "test-workforce-client",
    refresh_client_secret = "test-workforce-secret", rotate_refresh_token = nil,
  }
end

local settings = state.settings("sts", defaults)

-- A fresh token, accepted by the Vertex routes until now + lifetime on the server's clock.
local function issue(prefix, lifetime)
  state.issued = state.issued + 1
  local token = prefix .. state.issued
  state.tokens[token] = true
  state.token_expiry = state.token_expiry or {}
  state.token_expiry[token] = state.now() + lifetime
  return token
end

--- true when token was issued here and its lifetime is over (tokens.lua: authorized()).
function M.expired(token)
  local e = state.token_expiry and state.token_expiry[token]
  return e ~= nil and state.now() >= e
end

-- STS refusals: 400 (401 for the client) with the OAuth error body Google's STS sends.
local function oauth_error(status, err, description)
  return send(status, { error = err, error_description = description })
end

-- POST /v1/oauthtoken: a workforce user's refresh (grant_type=refresh_token, the client as Basic auth).
local function refresh_endpoint(s, args)
  local basic = (ngx.var.http_authorization or ""):match("^Basic (.+)$")
  if (basic and ngx.decode_base64(basic)) ~= s.refresh_client_id .. ":" .. s.refresh_client_secret then
    return oauth_error(401, "invalid_client", "The OAuth client was not found.")
  end
  if args.grant_type ~= "refresh_token" then
    return oauth_error(400, "unsupported_grant_type", "Invalid value for \"grant_type\".")
  end
  if args.refresh_token ~= s.refresh_token then
    return oauth_error(400, "invalid_grant", "Bad Request")
  end
  if s.rotate_refresh_token then s.refresh_token = s.rotate_refresh_token end -- the old one stops working
  return send(200, { access_token = issue("ya29.wfu-", s.expires_in), token_type = "Bearer",
                     expires_in = s.expires_in, refresh_token = s.rotate_refresh_token })
end

-- POST /v1/token: the token exchange (form fields as RFC 8693 names them).
local function sts_endpoint()
  local s = settings()
  local args = ngx.req.get_post_args(100)
  if ngx.var.uri == "/v1/oauthtoken" then return refresh_endpoint(s, args) end
  if args.grant_type ~= M.TOKEN_EXCHANGE then
    return oauth_error(400, "unsupported_grant_type", "Invalid value for \"grant_type\".")
  end
  if s.client_id then
    local basic = (ngx.var.http_authorization or ""):match("^Basic (.+)$")
    local pair = basic and ngx.decode_base64(basic)
    if pair ~= s.client_id .. ":" .. (s.client_secret or "") then
      return oauth_error(401, "invalid_client", "The OAuth client was not found.")
    end
  end
  for _, k in ipairs { "audience", "subject_token", "subject_token_type", "requested_token_type" } do
    if type(args[k]) ~= "string" or args[k] == "" then
      return oauth_error(400, "invalid_request", "Missing required parameter: \"" .. k .. "\".")
    end
  end
  if args.requested_token_type ~= M.ACCESS_TOKEN_TYPE then
    return oauth_error(400, "invalid_request", "Invalid value for \"requested_token_type\".")
  end
  if s.audience and args.audience ~= s.audience then
    return oauth_error(400, "invalid_target", "The target service indicated by the \"audience\" parameters is "
      .. "invalid. This might either be because the pool or provider is disabled or deleted or because it doesn't "
      .. "exist.")
  end
  if args.options ~= nil and type(cjson.decode(args.options)) ~= "table" then
    return oauth_error(400, "invalid_request", "Invalid value for \"options\".")
  end
  if args.subject_token_type == aws.TOKEN_TYPE then
    -- an AWS signed GetCallerIdentity request (aws.lua checks its structure)
    local why = aws.subject_token(args.subject_token, args.audience)
    if why then return oauth_error(400, "invalid_grant", "Invalid AWS subject token: " .. why .. ".") end
  elseif args.subject_token ~= s.subject_token then
    return oauth_error(400, "invalid_grant", "The subject token is invalid.")
  end
  if s.subject_token_expired then
    return oauth_error(400, "invalid_grant", "ID Token issued at 1000 is stale to sign-in.")
  end
  return send(200, { access_token = issue("ya29.sts-", s.expires_in), issued_token_type = M.ACCESS_TOKEN_TYPE,
                     token_type = "Bearer", expires_in = s.expires_in })
end

-- IAM Credentials' errors: google.rpc Status envelopes.
local function rpc_error(status, message)
  return send(status, { error = { code = status, message = message, status = reply.STATUS[status] or "UNKNOWN" } })
end

-- POST /v1/projects/-/serviceAccounts/EMAIL:generateAccessToken (bearer: a token issued here)
local function iam_endpoint(email)
  local s = settings()
  local token = (ngx.var.http_authorization or ""):match("^Bearer (.+)$")
  if not token or state.tokens[token] ~= true or M.expired(token) then
    return rpc_error(401, "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
      .. "cookie or other valid authentication credential.")
  end
  if s.service_account and email ~= s.service_account then
    return rpc_error(404, "Not found; Gaia id not found for email " .. tostring(email))
  end
  local body = cjson.decode(ngx.req.get_body_data() or "")
  if type(body) ~= "table" or type(body.scope) ~= "table" or #body.scope == 0 then
    return rpc_error(400, "Scope required.")
  end
  if body.delegates ~= nil and type(body.delegates) ~= "table" then
    return rpc_error(400, "Invalid value at 'delegates'.")
  end
  local lifetime = 3600
  if body.lifetime ~= nil then
    lifetime = type(body.lifetime) == "string" and tonumber(body.lifetime:match("^(%d+)s$"))
    if not lifetime then return rpc_error(400, "Invalid value at 'lifetime' (type.googleapis.com/google.protobuf.Duration)") end
  end
  if lifetime > s.max_lifetime then
    return rpc_error(400, ("Lifetime must be less than or equal to %d seconds"):format(s.max_lifetime))
  end
  -- expireTime: RFC 3339, on the wall clock (a client compares it with its own wall clock); the
  -- server's own clock (virtual or not) decides when the token stops being accepted
  return send(200, { accessToken = issue("ya29.iam-", lifetime),
                     expireTime = os.date("!%Y-%m-%dT%H:%M:%SZ", ngx.time() + lifetime) })
end

-- GET /subject_token: the subject token, as text or JSON, for requests carrying the configured headers
local function subject_token_endpoint()
  local s = settings()
  for name, value in pairs(s.subject_token_headers or {}) do
    if ngx.req.get_headers()[name] ~= value then
      ngx.status = 401
      ngx.header["Content-Type"] = "text/plain"
      ngx.print("missing or wrong header " .. name)
      return
    end
  end
  if s.subject_token_format == "json" then
    return send(200, { [s.subject_token_field] = s.subject_token })
  end
  ngx.status = 200
  ngx.header["Content-Type"] = "text/plain"
  ngx.print(s.subject_token)
end

--- The endpoints, keyed by their call (server.lua's PATHS, and ROUTE for generateAccessToken).
M.ENDPOINTS = { sts = sts_endpoint, iam = iam_endpoint, subject_token = subject_token_endpoint }

--- generateAccessToken's path: the email in it, or nil.
function M.iam_email(path)
  return path:match("^/v1/projects/%-/serviceAccounts/([^/:]+):generateAccessToken$")
end

-- settings (the control API) -----------------------------------------------------------------

local SETTINGS = { subject_token = "string", subject_token_format = "string", subject_token_field = "string",
                   subject_token_headers = "table", subject_token_expired = "boolean", audience = "string",
                   client_id = "string", client_secret = "string", service_account = "string",
                   refresh_token = "string", refresh_client_id = "string", refresh_client_secret = "string",
                   rotate_refresh_token = "string",
                   expires_in = function(body, k) return check.number_in(body, k, 0, 86400 * 366, true) end,
                   max_lifetime = function(body, k) return check.number_in(body, k, 1, 86400, true) end }

--- /_control/sts: nil, or the message of a 400.
function M.check_settings(body)
  local m = check.settings("sts", SETTINGS, body)
  if m then return m end
  if body.subject_token_format and body.subject_token_format ~= "text" and body.subject_token_format ~= "json" then
    return "subject_token_format must be \"text\" or \"json\""
  end
  for k, v in pairs(body.subject_token_headers or {}) do
    if type(k) ~= "string" or type(v) ~= "string" then return "subject_token_headers must map names to strings" end
  end
end

function M.set(body)
  local s = settings()
  for k, v in pairs(body) do s[k] = v end
end

return M
