-- vertexops.auth.impersonated: a credentials file of type impersonated_service_account (as
-- `gcloud auth application-default login --impersonate-service-account` writes it). Its token:
-- the token of source_credentials (service_account, authorized_user or external_account, for
-- cloud-platform), then generateAccessToken at service_account_impersonation_url with the file's
-- delegates (auth/sts.lua). Failures name the file and the step; no secret goes into a message.
local common = require "vertexops.auth.common"
local sts = require "vertexops.auth.sts"

local ipairs, type = ipairs, type
local string_format = string.format
local raise = require("vertexops.errors").raise

local _M = {
  kind = "impersonated_service_account",
  fields = { "service_account_impersonation_url" }, -- what the file must have (non-empty strings)
  refreshable = true,
}

-- The source types, by kind (auth/sources.lua's KINDS; required when first needed: sources.lua requires this module).
local function source_type(kind)
  local t = require("vertexops.auth.sources").KINDS[kind]
  if t and t.fields and kind ~= _M.kind then return t end
end

local SOURCES = "service_account, authorized_user, external_account, external_account_authorized_user"

--- Checks source_credentials (its type, the fields that type needs), delegates and the URL (the
--- endpoint rules, and google-auth's shape: .../EMAIL:generateAccessToken), before any I/O.
function _M.check(d, where)
  local sc = d.source_credentials
  if type(sc) ~= "table" then raise("AuthError", where .. " has no 'source_credentials' object") end
  local t = source_type(sc.type)
  if not t then
    raise("AuthError", string_format("%s: source_credentials has type %s; supported: %s", where,
      type(sc.type) == "string" and ("'" .. sc.type:sub(1, 60) .. "'") or "missing", SOURCES))
  end
  local swhere = where .. " source_credentials (" .. sc.type .. ")"
  for _, k in ipairs(t.fields) do
    if type(sc[k]) ~= "string" or sc[k] == "" then raise("AuthError", string_format("%s has no '%s'", swhere, k)) end
  end
  if sc.token_uri ~= nil and type(sc.token_uri) ~= "string" then
    raise("AuthError", swhere .. " has a token_uri that is not a string")
  end
  if t.check then t.check(sc, swhere) end
  if d.delegates == common.json.null then d.delegates = nil end -- "delegates": null: none
  local dl = d.delegates
  if dl ~= nil then
    local ok = type(dl) == "table"
    for i = 1, ok and #dl or 0 do ok = ok and type(dl[i]) == "string" end
    if not ok then raise("AuthError", where .. ": delegates must be a list of strings") end
  end
  sts.check_impersonation_url(d.service_account_impersonation_url, where .. ": service_account_impersonation_url")
end

--- The identity in the shared_dict key: the impersonated account's URL (no secret); and the
--- digest of the file's content (source credentials included).
function _M.identity(src)
  return src.data.service_account_impersonation_url, src.digest or ""
end

--- The token and its lifetime, for scope.
function _M.fetch(provider, src, o, deadline, scope)
  local d = src.data
  local sc = d.source_credentials
  local sub = { kind = sc.type, path = src.path, origin = src.origin, data = sc, digest = src.digest,
                universe_domain = type(sc.universe_domain) == "string" and sc.universe_domain or src.universe_domain,
                describe = src.describe .. " source_credentials (" .. sc.type .. ")" }
  local bearer = source_type(sc.type).fetch(provider, sub, o, deadline, common.CLOUD_PLATFORM)
  return sts.generate_access_token(provider, { url = d.service_account_impersonation_url, bearer = bearer,
    scope = scope, lifetime = sts.DEFAULT_LIFETIME, delegates = d.delegates or {}, describe = src.describe,
    user_project = sc.quota_project_id }, o, deadline)
end

return _M
