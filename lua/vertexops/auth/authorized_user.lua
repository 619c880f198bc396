-- vertexops.auth.authorized_user: a user's credentials file (gcloud auth application-default
-- login). Its token: the refresh-token grant at token_uri (default: its universe's oauth2 host).
local common = require "vertexops.auth.common"
local file = require "vertexops.auth.file"

local _M = {
  kind = "authorized_user",
  fields = { "client_id", "client_secret", "refresh_token" }, -- what the file must have
  refreshable = true,
  identity = file.identity, -- in the shared_dict key
}

--- The token and its lifetime.
function _M.fetch(provider, src, o, deadline)
  local u = src.data
  return common.grant(provider, u.token_uri or common.token_uri(src.universe_domain), {
    { "grant_type", "refresh_token" }, { "client_id", u.client_id }, { "client_secret", u.client_secret },
    { "refresh_token", u.refresh_token } }, o, deadline)
end

return _M
