-- vertexops.auth.sts: the two token exchanges of federated and impersonated credentials, as
-- google-auth sends them: Google's Security Token Service (the RFC 8693 token exchange at an
-- external account's token_url) and IAM Credentials' generateAccessToken (a service account's
-- token, for a bearer that may impersonate it). Secrets (subject tokens, client secrets, access
-- tokens) never go into a message made here.
local core = require "vertexops.core"
local common = require "vertexops.auth.common"
local cjson = common.json

local ipairs, os_time, tonumber, tostring, type = ipairs, os.time, tonumber, tostring, type
local string_format, table_concat = string.format, table.concat
local raise = require("vertexops.errors").raise

local _M = {}

_M.TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
_M.ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
_M.DEFAULT_TOKEN_URL = "https://sts.googleapis.com/v1/token"

--- The STS token endpoint of a universe (google-auth's DEFAULT_TOKEN_URL https://sts.{universeDomain}/v1/token),
--- for an external_account file that names no token_url.
function _M.token_url(universe)
  return "https://sts." .. (universe or common.DEFAULT_UNIVERSE) .. "/v1/token"
end

--- IAM Credentials' generateAccessToken URL of email in a universe (google-auth's impersonated.js:
--- https://iamcredentials.{universeDomain}/v1/projects/-/serviceAccounts/EMAIL:generateAccessToken).
function _M.iam_url(universe, email)
  return "https://iamcredentials." .. (universe or common.DEFAULT_UNIVERSE)
    .. "/v1/projects/-/serviceAccounts/" .. email .. ":generateAccessToken"
end
_M.DEFAULT_LIFETIME = 3600 -- seconds asked of generateAccessToken when the file names none

-- base64 with padding (RFC 4648 section 4), from the C base64url
local function b64(s)
  local u = core.b64url(s):gsub("-", "+"):gsub("_", "/")
  return u .. ("="):rep((4 - #u % 4) % 4)
end

--- The STS token exchange for the subject token (t: token_url, audience, subject_token_type,
--- subject_token, scope (a string), client_id, client_secret, user_project, describe), within
--- deadline. The form's fields and their order are google-auth's (google-auth-library-nodejs
--- src/auth/stscredentials.ts exchangeToken, baseexternalclient.ts refreshAccessTokenAsync):
--- grant_type, audience, scope, requested_token_type, subject_token, subject_token_type, options
--- ({"userProject": ...} only for a workforce pool without client authentication); a client_id
--- goes as HTTP Basic authentication (oauth2common.ts, confidentialClientType "basic").
--- Returns the STS token and its lifetime; raises AuthError naming the step (Google's error and
--- error_description when it refused).
function _M.exchange(provider, t, o, deadline)
  common.check_url(t.token_url, t.describe .. ": token_url")
  local fields = {
    { "grant_type", _M.TOKEN_EXCHANGE }, { "audience", t.audience }, { "scope", t.scope },
    { "requested_token_type", _M.ACCESS_TOKEN_TYPE }, { "subject_token", t.subject_token },
    { "subject_token_type", t.subject_token_type },
  }
  if t.user_project and not t.client_id then
    fields[#fields + 1] = { "options", cjson.encode({ userProject = t.user_project }) }
  end
  local headers = { "Content-Type: application/x-www-form-urlencoded", "Accept: application/json" }
  if t.client_id then
    headers[#headers + 1] = "Authorization: Basic " .. b64(t.client_id .. ":" .. (t.client_secret or ""))
  end
  local where = string_format("%s: STS token exchange at %s", t.describe, t.token_url)
  local body, err = provider:_request({ call = "token", method = "POST", url = t.token_url,
    body = common.form(fields), headers = headers }, where, o, nil, deadline)
  if not body then raise("AuthError", where .. " failed: " .. tostring(err), { cause = err, code = err and err.code }) end
  return common.lifetime_of(body, where)
end

local days_from_civil = require("vertexops.retry").days_from_civil

--- Seconds since the epoch of an RFC 3339 date-time ("2026-12-06T05:00:00Z", fractions and
--- offsets allowed), or nil when s is not one.
function _M.rfc3339(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, sec, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt](%d%d):(%d%d):(%d%d)(.*)$")
  if not y then return nil end
  local frac, zone = rest:match("^(%.%d+)(.*)$")
  zone = zone or rest
  local offset
  if zone == "Z" or zone == "z" then
    offset = 0
  else
    local sign, oh, om = zone:match("^([+-])(%d%d):(%d%d)$")
    if not sign then return nil end
    offset = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "-" and -1 or 1)
  end
  y, mo, d, h, mi, sec = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec)
  if mo < 1 or mo > 12 or d < 1 or d > 31 or h > 23 or mi > 59 or sec > 60 then return nil end
  return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec + (tonumber(frac or "0") or 0) - offset
end

--- AuthError unless url is a generateAccessToken URL: its scheme, host and port under the endpoint
--- rules (core.check_url), its path of letters, digits and - . _ ~ : / and the @ of an email (the
--- endpoint rules refuse an @ anywhere: user info), ending in :generateAccessToken.
function _M.check_impersonation_url(url, what)
  local origin, path = tostring(url):match("^(https?://[^/]+)(/.*)$")
  if not origin or not path:match("^/[%w%-%._~:/@]+:generateAccessToken$") then
    raise("AuthError", string_format("%s %s is not usable: not an https (or loopback http) URL ending in "
      .. "EMAIL:generateAccessToken",
      what, tostring(url)))
  end
  common.check_url(origin, what)
end

-- a JSON list of strings (an empty one as [], which cjson would make {})
local function list(strings)
  local parts = {}
  for i, s in ipairs(strings) do parts[i] = cjson.encode(s) end
  return "[" .. table_concat(parts, ",") .. "]"
end

--- generateAccessToken at url (checked by the endpoint rules) with bearer (the source's token),
--- for scope (a space-separated string), lifetime (seconds) and delegates (a list, or nil: not
--- sent), within deadline. The body is google-auth's: {"scope": [...], "lifetime": "3600s"}
--- (baseexternalclient.ts getImpersonatedAccessToken), with "delegates" first for an
--- impersonated_service_account (impersonated.ts refreshToken); t.user_project (optional): the
--- source credentials' quota project, sent as x-goog-user-project as google-auth's source client
--- does (Node's Impersonated requests through its sourceClient; Python's through an
--- AuthorizedSession of the source). Returns the token and its
--- lifetime (expireTime, RFC 3339, against this host's wall clock); raises AuthError naming the
--- step and Google's status and message.
function _M.generate_access_token(provider, t, o, deadline)
  _M.check_impersonation_url(t.url, t.describe .. ": service_account_impersonation_url")
  local scopes = {}
  for s in t.scope:gmatch("%S+") do scopes[#scopes + 1] = s end
  local body = "{" .. (t.delegates and '"delegates":' .. list(t.delegates) .. "," or "")
    .. '"scope":' .. list(scopes) .. ',"lifetime":"' .. string_format("%d", t.lifetime) .. 's"}'
  local where = string_format("%s: impersonation (generateAccessToken) at %s", t.describe, t.url)
  local headers = { "Content-Type: application/json", "Accept: application/json", "Authorization: Bearer " .. t.bearer }
  -- the source credentials' quota project, as google-auth's source client sends it on this request
  if type(t.user_project) == "string" and t.user_project:match("^[%w._:-]+$") then
    headers[#headers + 1] = "x-goog-user-project: " .. t.user_project
  end
  local answer, err = provider:_request({ call = "token", method = "POST", url = t.url, body = body,
    headers = headers }, where, o, nil, deadline)
  if not answer then
    raise("AuthError", where .. " failed: " .. tostring(err), { cause = err, code = err and err.code,
      status = err and type(err.status) == "string" and err.status or nil })
  end
  if type(answer.accessToken) ~= "string" or answer.accessToken == "" then
    raise("AuthError", where .. " answered without an accessToken")
  end
  local expires = _M.rfc3339(answer.expireTime)
  if not expires then
    raise("AuthError", string_format("%s answered an expireTime that is not an RFC 3339 time: %s", where,
      tostring(answer.expireTime):sub(1, 40)))
  end
  return answer.accessToken, expires - os_time()
end

return _M
