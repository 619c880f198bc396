-- vertexops.auth.common: what the credential types share: the lifetimes and limits,
-- the warning, the form encoding, the scope, and the OAuth grant at a token endpoint.
-- Secrets never go into a message made here.
local core = require "vertexops.core"
local raise = require("vertexops.errors").raise

local error, ipairs, pcall, rawget, tonumber, tostring, type = error, ipairs, pcall, rawget, tonumber, tostring, type
local string_format, table_concat = string.format, table.concat
local _G = _G

local _M = {}

-- JSON for key files, JWTs and token answers: cjson.safe's contract (nil, reason), except that a
-- memory error stays the memory error it is: cjson.safe would turn it into a plain string
-- ("Memory allocation error in CJSON protected call", make torture: fuzz/torture/key.lua).
local cjson = { null = require("cjson").null }
do
  local raw = require("cjson").new()
  for _, f in ipairs { "decode", "encode" } do
    local fn = raw[f]
    cjson[f] = function(v)
      local ok, res = pcall(fn, v)
      if ok then return res end
      if res == "not enough memory" then error(res, 0) end
      return nil, res
    end
  end
end
_M.json = cjson

_M.CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
_M.DEFAULT_UNIVERSE = "googleapis.com" -- a credential's universe when it names none

--- The token endpoint of a key file that names none: Google's OAuth endpoint of its universe
--- (oauth2.googleapis.com, oauth2.{universe_domain} elsewhere).
function _M.token_uri(universe)
  return "https://oauth2." .. (universe or _M.DEFAULT_UNIVERSE) .. "/token"
end

_M.REFRESH_EARLY = 300 -- seconds before expiry a token is replaced
_M.JWT_LIFETIME = 3600 -- seconds: a self-signed JWT's, and a token's when the answer gives none
_M.TOKEN_TIMEOUT = 60  -- seconds for one token fetch, retries included
_M.MAX_LIFETIME = 86400 -- the longest expires_in that is trusted (and cached)

--- A warning: nginx's error log (WARN) inside nginx, Lua 5.4's warn() elsewhere (shown when the
--- host turned warnings on), nothing on older interpreters.
function _M.warning(message)
  local ngx = rawget(_G, "ngx")
  if ngx and ngx.log and ngx.WARN then
    ngx.log(ngx.WARN, message)
  elseif rawget(_G, "warn") then
    rawget(_G, "warn")(message)
  end
end

--- application/x-www-form-urlencoded from a list of {name, value} pairs, in order.
function _M.form(t)
  local parts = {}
  for _, kv in ipairs(t) do
    parts[#parts + 1] = kv[1] .. "=" .. tostring(kv[2]):gsub("[^%w%-%._~]", function(c)
      return string_format("%%%02X", c:byte())
    end)
  end
  return table_concat(parts, "&")
end

--- The scopes option as one space-separated string (cloud-platform when absent); TypeError for a
--- list with a non-string in it.
function _M.scope_string(opts)
  local s = opts.scopes
  if s == nil then return _M.CLOUD_PLATFORM end
  if type(s) == "string" then return s end
  for i = 1, #s do
    if type(s[i]) ~= "string" then
      raise("TypeError", "option 'scopes' must be a string or a list of strings")
    end
  end
  return table_concat(s, " ")
end

--- AuthError unless url passes the endpoint rules (core.check_url).
function _M.check_url(url, what)
  local ok, err = pcall(core.check_url, url)
  if not ok then raise("AuthError", string_format("%s %s is not usable: %s", what, url, tostring(err.message or err))) end
end

-- The hosts of cloud metadata services, reached over plain http:// by design: AWS's instance
-- metadata service (169.254.169.254, and [fd00:ec2::254] on IPv6-only instances), which is also
-- Azure's IMDS address.
_M.METADATA_HOSTS = { ["169.254.169.254"] = true, ["[fd00:ec2::254]"] = true }

--- AuthError unless url, a credential_source URL, passes the endpoint rules (core.check_url), or
--- is plain http:// to a cloud metadata host (METADATA_HOSTS; the rest of it held to the same
--- grammar); either may end in a query of visible ASCII without '#' (Azure's IMDS needs one).
function _M.check_source_url(url, what)
  local base, query = url:match("^([^?]*)%?(.*)$")
  if base and (not query:match("^[!-~]*$") or query:find("#", 1, true)) then
    raise("AuthError", string_format("%s %s is not usable: its query holds a space, a control or non-ASCII byte, "
      .. "or a '#'", what, url))
  end
  base = base or url
  local host, rest = base:match("^http://(%[[^%]/]*%])(.*)$")
  if not host then host, rest = base:match("^http://([^:/]*)(.*)$") end
  -- a metadata host: the same grammar as an https URL (a port, a path, no user info or fragment)
  local checked = host and _M.METADATA_HOSTS[host:lower()] and "https://" .. host .. rest or base
  local ok, err = pcall(core.check_url, checked)
  if not ok then raise("AuthError", string_format("%s %s is not usable: %s", what, url, tostring(err.message or err))) end
end

--- The token and its lifetime from a token answer: expires_in (a number, or a numeric string),
--- JWT_LIFETIME when the answer has none; anything else comes back as it is, for
--- Provider:_storable to refuse.
function _M.lifetime_of(body, where)
  if type(body.access_token) ~= "string" or body.access_token == "" then
    raise("AuthError", where .. " answered without an access_token")
  end
  local e = body.expires_in
  if e == nil or e == cjson.null then return body.access_token, _M.JWT_LIFETIME end
  local expires = tonumber(e)
  if expires == nil or expires ~= expires then expires = e end -- NaN, or not a number: refused
  return body.access_token, expires
end

--- An OAuth grant: fields (a list of {name, value}) POSTed as a form to the token endpoint uri
--- (checked by the endpoint rules) by the provider's client, within the call's deadline.
--- Returns the token and its lifetime (lifetime_of).
function _M.grant(provider, uri, fields, o, deadline)
  _M.check_url(uri, "token_uri")
  local where = "token endpoint " .. uri
  local called, body, err = require("vertexops.host").pcall(provider._request, provider, { call = "token",
    method = "POST", url = uri, body = _M.form(fields),
    headers = { "Content-Type: application/x-www-form-urlencoded", "Accept: application/json" } },
    where, o, nil, deadline)
  if not called then
    -- a token_uri the transport refuses (inside nginx: https by IP address) is the key file's fault
    if core.is(body, "ValueError") then
      raise("AuthError", string_format("token_uri %s of %s cannot be used: %s", uri,
        provider.src and provider.src.describe or "the credentials", tostring(body.message)), { cause = body })
    end
    error(body, 0)
  end
  if not body then raise("AuthError", where .. " failed: " .. tostring(err), { cause = err }) end
  return _M.lifetime_of(body, where)
end

return _M
