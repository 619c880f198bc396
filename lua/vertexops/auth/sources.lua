-- vertexops.auth.sources: where credentials come from, in Application Default Credentials order,
-- and what each kind of credential is.
--
-- CHAIN is walked in order; the first entry whose detect(opts, env) returns a source wins.
-- detect returns nil and a line for the "nothing found" message when its entry does not apply
-- (nil, nil when it is not worth saying); it does no network I/O (the metadata server is only named
-- here: its first token request is its detection). A source is a table {kind, describe, ...} whose
-- kind names its credential type in KINDS: the module that fetches its tokens (fetch), says whether
-- they can be refreshed (refreshable) and cached (cached ~= false), and names the credential in the
-- shared_dict key (identity).
--
-- A new credential file type (external_account, impersonated_service_account, ...): its module
-- auth/<type>.lua (kind, fields, refreshable, identity, fetch; check, when it needs more than
-- its string fields) and one line in FILE_TYPES.
-- A new place to look: one entry in CHAIN, at its place in the order.
local file = require "vertexops.auth.file"
local metadata = require "vertexops.auth.metadata"
local token = require "vertexops.auth.token"

local ipairs, type = ipairs, type
local io_open = io.open

local _M = {}

--- The credential file types, in the order "supported: ..." names them (each require in
--- parentheses: it returns two values on Lua 5.4).
_M.FILE_TYPES = {
  (require "vertexops.auth.service_account"),
  (require "vertexops.auth.authorized_user"),
  (require "vertexops.auth.external_account"),
  (require "vertexops.auth.impersonated"),
  (require "vertexops.auth.external_account_authorized_user"),
}

--- Every credential type by its kind: the file types, the raw token, the metadata server.
_M.KINDS = { [token.kind] = token, [metadata.kind] = metadata }
_M.KINDS.impersonate = require "vertexops.auth.impersonate" -- the option impersonate_service_account
for _, t in ipairs(_M.FILE_TYPES) do _M.KINDS[t.kind] = t end

local function load(path, origin) return file.load(path, origin, _M.FILE_TYPES) end

--- The chain, first match wins.
_M.CHAIN = {
  { name = "the credentials option", -- a key-file path; it alone is looked at when given
    detect = function(opts)
      if type(opts.credentials) == "string" then return load(opts.credentials, "the credentials option") end
    end },
  { name = "GOOGLE_OAUTH_ACCESS_TOKEN", -- a raw token
    detect = function(_, env)
      if env("GOOGLE_OAUTH_ACCESS_TOKEN") then return { kind = token.kind, describe = "GOOGLE_OAUTH_ACCESS_TOKEN" } end
      return nil, "GOOGLE_OAUTH_ACCESS_TOKEN is not set"
    end },
  { name = "GOOGLE_APPLICATION_CREDENTIALS", -- a key file: missing or bad is an AuthError, no fallback
    detect = function(_, env)
      local path = env("GOOGLE_APPLICATION_CREDENTIALS")
      if path then return load(path, "GOOGLE_APPLICATION_CREDENTIALS") end
      return nil, "GOOGLE_APPLICATION_CREDENTIALS is not set"
    end },
  { name = "the gcloud credentials file", -- $CLOUDSDK_CONFIG, else ~/.config/gcloud
    detect = function(_, env)
      local dir = env("CLOUDSDK_CONFIG")
      if not dir then
        local home = env("HOME")
        dir = home and home .. "/.config/gcloud"
      end
      local path = dir and dir .. "/application_default_credentials.json"
      local f = path and io_open(path, "rb")
      if f then
        f:close()
        return load(path, "the gcloud credentials file")
      end
      return nil, "no gcloud file " .. (path or "(neither CLOUDSDK_CONFIG nor HOME is set)")
    end },
  { name = "the metadata server", -- its first token request tells whether it is there
    detect = function(opts, env)
      -- off: no request, not even the DNS query for its host (NO_GCE_CHECK as Google's clients read it)
      if opts.metadata_server == false then return nil, "the metadata server is off (option metadata_server = false)" end
      local no = env("NO_GCE_CHECK")
      if no and no:lower() == "true" then return nil, "the metadata server is off (NO_GCE_CHECK=" .. no .. ")" end
      return metadata.source(env("GCE_METADATA_HOST"))
    end },
}

--- The process environment as detect reads it: an empty variable counts as unset.
function _M.getenv(name)
  local v = os.getenv(name)
  if v ~= "" then return v end
end

--- Walks CHAIN for opts: the first source found, with source.tried the lines of the entries
--- passed over. Raises what an entry raises (a bad key file: AuthError).
function _M.find(opts, env)
  env = env or _M.getenv
  local tried = {}
  for _, entry in ipairs(_M.CHAIN) do
    local src, why = entry.detect(opts, env)
    if src then
      src.tried = tried
      return src
    end
    tried[#tried + 1] = why
  end
  -- only when the metadata server is off (the last entry finds it otherwise)
  require("vertexops.errors").raise("AuthError", "no Google credentials found: " .. table.concat(tried, "; "))
end

return _M
