-- vertexops.testing.aws: an AWS EC2 instance metadata service with IMDSv2, as an external_account
-- file of environment_id aws1 reads it: PUT /latest/api/token (X-aws-ec2-metadata-token-ttl-seconds:
-- 1-21600) answers a session token; the GETs of /latest/meta-data/placement/availability-zone (the
-- zone, whose region is the zone less its letter), /latest/meta-data/iam/security-credentials (the
-- role's name) and .../security-credentials/ROLE (the role's credentials, JSON) need it in
-- X-aws-ec2-metadata-token (401 without it, with one not issued here, or past its ttl on the
-- server's clock), unless imdsv2 = false. Its settings: /_control/aws (server:aws{...}).
-- M.subject_token checks the signed GetCallerIdentity request the STS (sts.lua) is given.
local cjson = require("cjson.safe").new()
local check = require "vertexops.testing.check"
local reply = require "vertexops.testing.reply"
local state = require "vertexops.testing.state"

local ngx = ngx
local send = reply.send

local M = {}

M.TOKEN_TYPE = "urn:ietf:params:aws:token-type:aws4_request"

local function defaults()
  return {
    zone = "us-east-2b",                    -- the availability zone (its region: us-east-2)
    role = "vertexops-test-role",           -- the role attached to the instance
    access_key_id = "ASIAVERTEXOPSEXAMPLE", -- the role's credentials
    secret_access_key = "fake/secret+access+key/EXAMPLE",
    token = "fake-aws-session-token",
    imdsv2 = true,                          -- GETs need the session token
    session_expired = false,                -- every session token is refused as expired (401)
  }
end

local settings = state.settings("aws", defaults)

local function text(status, body)
  ngx.status = status
  ngx.header["Content-Type"] = "text/plain"
  ngx.print(body)
end

-- PUT /latest/api/token
local function token_endpoint()
  local ttl = tonumber(ngx.req.get_headers()["x-aws-ec2-metadata-token-ttl-seconds"])
  if not ttl or ttl ~= math.floor(ttl) or ttl < 1 or ttl > 21600 then
    return text(400, "")
  end
  state.issued = state.issued + 1
  local token = "AQAEAfake-imds-" .. state.issued
  state.aws_sessions = state.aws_sessions or {}
  state.aws_sessions[token] = state.now() + ttl
  return text(200, token)
end

-- 401 (as IMDS does) unless the request carries a live session token, when imdsv2 is on
local function session_ok()
  local s = settings()
  if not s.imdsv2 then return true end
  local token = ngx.req.get_headers()["x-aws-ec2-metadata-token"]
  local until_ = token and state.aws_sessions and state.aws_sessions[token]
  if not until_ or s.session_expired or state.now() >= until_ then
    text(401, "")
    return false
  end
  return true
end

-- GET /latest/meta-data/...: what = "zone", "role" or "credentials/ROLE"
local function metadata_endpoint(what)
  local s = settings()
  if not session_ok() then return end
  if what == "zone" then return text(200, s.zone) end
  if what == "role" then return text(200, s.role) end
  if what ~= "credentials/" .. s.role then return text(404, "") end
  return send(200, { Code = "Success", LastUpdated = os.date("!%Y-%m-%dT%H:%M:%SZ"), Type = "AWS-HMAC",
    AccessKeyId = s.access_key_id, SecretAccessKey = s.secret_access_key, Token = s.token,
    Expiration = os.date("!%Y-%m-%dT%H:%M:%SZ", ngx.time() + 6 * 3600) })
end

--- The route of an IMDS path for method: call ("aws_token", "aws_metadata", or false for a wrong
--- method) and what it asks ("zone", "role", "credentials/ROLE"), or nil when the path is not IMDS's.
function M.route(method, path)
  if path == "/latest/api/token" then return method == "PUT" and "aws_token" or false end
  local what
  if path == "/latest/meta-data/placement/availability-zone" then
    what = "zone"
  elseif path == "/latest/meta-data/iam/security-credentials" or path == "/latest/meta-data/iam/security-credentials/" then
    what = "role"
  else
    local role = path:match("^/latest/meta%-data/iam/security%-credentials/([^/]+)$")
    if not role then return nil end
    what = "credentials/" .. role
  end
  return method == "GET" and "aws_metadata" or false, what
end

M.ENDPOINTS = { aws_token = token_endpoint, aws_metadata = metadata_endpoint }

--- Checks an aws4_request subject token for audience (what Google's STS checks of its structure:
--- the URL-encoded JSON of a signed POST to AWS STS GetCallerIdentity); nil when it is well
--- formed, else why not. The signature itself is not verified here (Google's STS has AWS do it);
--- the specs recompute it from the log with core.sigv4.
function M.subject_token(token, audience)
  local req = cjson.decode(ngx.unescape_uri(token))
  if type(req) ~= "table" then return "the subject token is not URL-encoded JSON" end
  if req.method ~= "POST" then return "the signed request's method is not POST" end
  local gci = "^https://sts%.[%w-]+%.amazonaws%.com/?%?Action=GetCallerIdentity&Version=2011%-06%-15$"
  if type(req.url) ~= "string" or not req.url:match(gci) then
    return "the signed request is not GetCallerIdentity of a regional AWS STS endpoint"
  end
  if type(req.headers) ~= "table" then return "the signed request has no headers" end
  local h = {}
  for _, kv in ipairs(req.headers) do
    if type(kv) ~= "table" or type(kv.key) ~= "string" or type(kv.value) ~= "string" then
      return "the signed request's headers are not {key, value} objects"
    end
    h[kv.key:lower()] = kv.value
  end
  local region = req.url:match("^https://sts%.([%w-]+)%.")
  if h.host ~= "sts." .. region .. ".amazonaws.com" then return "the signed request's host is not its URL's" end
  if not (h["x-amz-date"] or ""):match("^%d%d%d%d%d%d%d%dT%d%d%d%d%d%dZ$") then return "no x-amz-date" end
  if h["x-goog-cloud-target-resource"] ~= audience then return "x-goog-cloud-target-resource is not the audience" end
  local cred, signed = (h.authorization or ""):match(
    "^AWS4%-HMAC%-SHA256 Credential=([^,]+), SignedHeaders=([^,]+), Signature=%x+$")
  if not cred then return "the Authorization header is not AWS4-HMAC-SHA256" end
  if not cred:match("^[^/]+/" .. h["x-amz-date"]:sub(1, 8) .. "/" .. region:gsub("%-", "%%-") .. "/sts/aws4_request$") then
    return "the Authorization's credential scope is not the date's, region's and sts's"
  end
  if not (";" .. signed .. ";"):find(";host;", 1, true) or not (";" .. signed .. ";"):find(";x-amz-date;", 1, true) then
    return "host and x-amz-date are not signed"
  end
end

-- settings (the control API) -----------------------------------------------------------------

local SETTINGS = { zone = "string", role = "string", access_key_id = "string", secret_access_key = "string",
                   token = "string", imdsv2 = "boolean", session_expired = "boolean" }

--- /_control/aws: nil, or the message of a 400.
function M.check_settings(body) return check.settings("aws", SETTINGS, body) end

function M.set(body)
  local s = settings()
  for k, v in pairs(body) do s[k] = v end
end

return M
