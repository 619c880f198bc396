-- vertexops.auth.token: a raw access token from GOOGLE_OAUTH_ACCESS_TOKEN, read at each use and
-- never refreshed nor cached (kind "env").
local raise = require("vertexops.errors").raise

local os_getenv = os.getenv

local _M = {
  kind = "env",
  refreshable = false, -- a refused token cannot be replaced
  cached = false,      -- read at each use: neither the provider nor a shared_dict keeps it
}

--- The token, as the environment has it now; AuthError once it is gone.
function _M.fetch()
  local t = os_getenv("GOOGLE_OAUTH_ACCESS_TOKEN")
  if not t or t == "" then raise("AuthError", "GOOGLE_OAUTH_ACCESS_TOKEN is no longer set") end
  return t
end

return _M
