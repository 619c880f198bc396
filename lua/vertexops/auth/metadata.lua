-- vertexops.auth.metadata: the metadata server of GCE, GKE, Cloud Run (plain HTTP with
-- Metadata-Flavor: Google). The last entry of the chain: its first lookup is also the detection,
-- given up within DETECT_TIMEOUT, and an absence is remembered per host for the Lua state.
local common = require "vertexops.auth.common"

local ipairs, tostring = ipairs, tostring
local table_concat = table.concat
local raise = require("vertexops.errors").raise

local _M = {
  kind = "metadata",
  refreshable = true,
  HOST = "metadata.google.internal", -- GCE_METADATA_HOST overrides
  PATH = "/computeMetadata/v1/instance/service-accounts/default/token",
  DETECT_TIMEOUT = 3, -- seconds: off Google Cloud the lookup gives up this fast
}

-- What the metadata server answered, per host, for this Lua state: the reason it is absent.
local absent = {}

--- Forgets what was learned about metadata servers (auth.reset_metadata_cache).
function _M.reset()
  absent = {}
end

--- The source for host (nil: the default host).
function _M.source(host)
  host = host or _M.HOST
  return { kind = "metadata", host = host, describe = "metadata server " .. host }
end

--- The identity in the shared_dict key: the host.
function _M.identity(src)
  return src.host, ""
end

-- "no Google credentials found", with what the chain tried and why the metadata server is not there.
local function nothing_found(src, why)
  local tried = {}
  for i, t in ipairs(src.tried or {}) do tried[i] = t end
  tried[#tried + 1] = "metadata server " .. src.host .. ": " .. why
  return "no Google credentials found: " .. table_concat(tried, "; ")
end

--- The token and its lifetime, for scope when the provider's options name scopes.
function _M.fetch(provider, src, o, deadline, scope)
  local host = src.host
  if absent[host] then raise("AuthError", nothing_found(src, absent[host])) end
  local url = "http://" .. host .. _M.PATH
  if provider.opts.scopes then url = url .. "?scopes=" .. common.form({ { "", scope } }):sub(2) end
  local detect = not src.detected and _M.DETECT_TIMEOUT or nil
  local body, headers_or_err = provider:_request({ call = "metadata", method = "GET", url = url, want_headers = true,
    headers = { "Metadata-Flavor: Google", "Accept: application/json" } }, "metadata server " .. host, o, detect,
    deadline)
  if not body or headers_or_err["metadata-flavor"] ~= "Google" then
    local why = not body and tostring(headers_or_err) or "the answer did not come from a metadata server"
    if detect then
      absent[host] = why -- remembered: the next lookup fails at once
      raise("AuthError", nothing_found(src, why))
    end
    raise("AuthError", "metadata server " .. host .. " failed: " .. why, { cause = not body and headers_or_err or nil })
  end
  src.detected = true
  return common.lifetime_of(body, "metadata server " .. host)
end

return _M
