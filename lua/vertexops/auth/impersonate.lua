-- vertexops.auth.impersonate: the option impersonate_service_account (the CLI's
-- --impersonate-service-account, as gcloud's): whatever credentials the chain found become the
-- source of an impersonation, as google-auth's Impersonated credentials wrap a source
-- (google-auth-library-nodejs impersonated.js; python impersonated_credentials.py): the source's
-- token for cloud-platform, then IAM Credentials' generateAccessToken at
-- {iam_endpoint}/v1/projects/-/serviceAccounts/EMAIL:generateAccessToken (default origin
-- https://iamcredentials.{universe_domain}) with {"delegates": [], "scope": [...], "lifetime": "3600s"}
-- and the source's token as bearer (auth/sts.lua). No secret goes into a message.
local common = require "vertexops.auth.common"
local sts = require "vertexops.auth.sts"

local _M = {
  kind = "impersonate",
  refreshable = true,
}

-- The credential types by kind (sources.lua requires what requires this module: looked up late).
local function kinds() return require("vertexops.auth.sources").KINDS end

--- The source that impersonates email with the credentials src found; iam (optional) the origin
--- of IAM Credentials. Its universe, quota project and what it is are its source's.
function _M.source(src, email, iam)
  return { kind = _M.kind, source = src, impersonate = email, iam_endpoint = iam,
           universe_domain = src.universe_domain, quota_project = src.quota_project,
           describe = src.describe .. " impersonating " .. email }
end

--- The generateAccessToken URL of the source for a call in universe (the source's, else the call's).
function _M.url(src, universe)
  if src.iam_endpoint then
    return (src.iam_endpoint:gsub("/+$", "")) .. "/v1/projects/-/serviceAccounts/" .. src.impersonate
      .. ":generateAccessToken"
  end
  return sts.iam_url(src.universe_domain or universe, src.impersonate)
end

--- The identity in the shared_dict key: the impersonated account and the source's identity.
function _M.identity(src)
  local inner = src.source
  local of = kinds()[inner.kind].identity -- a raw token has none (never shared)
  local identity, digest = "", ""
  if of then identity, digest = of(inner) end
  return src.impersonate .. " " .. (src.iam_endpoint or "") .. " " .. inner.kind .. " " .. identity, digest
end

--- The token and its lifetime, for scope: the source's token (for cloud-platform; a raw token as
--- it is), then generateAccessToken.
function _M.fetch(provider, src, o, deadline, scope)
  local inner = src.source
  local bearer = kinds()[inner.kind].fetch(provider, inner, o, deadline, common.CLOUD_PLATFORM)
  return sts.generate_access_token(provider, { url = _M.url(src, provider:_universe(o)), bearer = bearer,
    scope = scope or common.scope_string(provider.opts), lifetime = sts.DEFAULT_LIFETIME, delegates = {},
    describe = src.describe, user_project = inner.quota_project }, o, deadline)
end

return _M
