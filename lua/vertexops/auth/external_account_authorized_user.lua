-- vertexops.auth.external_account_authorized_user: workforce identity federation's user
-- credentials (a credentials file of type external_account_authorized_user, as `gcloud auth
-- application-default login` writes it for a workforce pool's user). Its token: the refresh-token
-- grant at token_url (default https://sts.{universe_domain}/v1/oauthtoken), with the client
-- authenticated by HTTP Basic (client_id:client_secret), as google-auth sends it
-- (google-auth-library-nodejs externalAccountAuthorizedUserClient.js refreshToken; python
-- external_account_authorized_user.py through sts.Client.refresh_token): the form holds only
-- grant_type=refresh_token and refresh_token. A refresh_token in the answer replaces the file's
-- for the provider's next refresh (google-auth keeps it too). revoke_url, token_info_url and
-- audience are read and checked, not used for tokens; quota_project_id and universe_domain
-- as for every key file. No secret (refresh token, client secret) goes into a message.
local common = require "vertexops.auth.common"
local core = require "vertexops.core"

local ipairs, tostring, type = ipairs, tostring, type
local string_format = string.format
local raise = require("vertexops.errors").raise

local _M = {
  kind = "external_account_authorized_user",
  fields = { "client_id", "client_secret", "refresh_token" }, -- what the file must have (non-empty strings)
  refreshable = true,
}

--- The token endpoint of a file that names none (google-auth's DEFAULT_TOKEN_URL).
function _M.default_token_url(universe)
  return "https://sts." .. (universe or common.DEFAULT_UNIVERSE) .. "/v1/oauthtoken"
end

--- Checks the optional strings and the URLs (the endpoint rules) before any I/O.
function _M.check(d, where)
  for _, k in ipairs { "audience", "token_url", "token_info_url", "revoke_url" } do
    if d[k] ~= nil and (type(d[k]) ~= "string" or d[k] == "") then
      raise("AuthError", string_format("%s has a '%s' that is not a non-empty string", where, k))
    end
  end
  if d.token_url then common.check_url(d.token_url, where .. ": token_url") end
  if d.revoke_url then common.check_url(d.revoke_url, where .. ": revoke_url") end
end

--- The identity in the shared_dict key: the audience (the workforce pool's provider) and the
--- client_id (no secret); and the digest of the file's content (the refresh token's stand-in).
function _M.identity(src)
  local d = src.data
  return (d.audience or "") .. " " .. d.client_id, src.digest or ""
end

--- The principal an error names: the workforce pool's audience, else the OAuth client.
function _M.principal(src)
  return src.data.audience or ("client_id " .. src.data.client_id)
end

-- base64 with padding (RFC 4648 section 4), from the C base64url
local function b64(s)
  local u = core.b64url(s):gsub("-", "+"):gsub("_", "/")
  return u .. ("="):rep((4 - #u % 4) % 4)
end

--- The token and its lifetime (the refresh at token_url).
function _M.fetch(provider, src, o, deadline)
  local d = src.data
  local url = d.token_url or _M.default_token_url(src.universe_domain)
  common.check_url(url, src.describe .. ": token_url")
  local where = string_format("%s: refresh at %s", src.describe, url)
  local body, err = provider:_request({ call = "token", method = "POST", url = url,
    body = common.form { { "grant_type", "refresh_token" }, { "refresh_token", src.refresh_token or d.refresh_token } },
    headers = { "Content-Type: application/x-www-form-urlencoded", "Accept: application/json",
                "Authorization: Basic " .. b64(d.client_id .. ":" .. d.client_secret) } },
    where, o, nil, deadline)
  if not body then raise("AuthError", where .. " failed: " .. tostring(err), { cause = err, code = err and err.code }) end
  local token, lifetime = common.lifetime_of(body, where)
  -- a rotated refresh token serves the next refresh (kept on the source, never shown)
  if type(body.refresh_token) == "string" and body.refresh_token ~= "" then src.refresh_token = body.refresh_token end
  return token, lifetime
end

return _M
