-- vertexops.auth.file: reading a credentials (key) file, for every chain entry that names one.
-- Its "type" picks the credential type that fetches its tokens (auth/sources.lua, FILE_TYPES).
local common = require "vertexops.auth.common"
local cjson = common.json

local ipairs, rawget, tostring, type = ipairs, rawget, tostring, type
local io_open, string_format, table_concat = io.open, string.format, table.concat
local _G = _G
local raise = require("vertexops.errors").raise

local _M = {}

--- Reads and checks the credentials file at path (origin: the chain entry that named it, for
--- messages) against the credential types it may have (an ordered list of type modules).
--- Returns the source {kind, path, origin, data, digest, quota_project, universe_domain, describe}; raises
--- AuthError naming the file and the reason, never a secret.
function _M.load(path, origin, types)
  local f, err = io_open(path, "rb")
  if not f then
    -- nginx workers run as nginx.conf's `user` (nobody when nginx starts as root): not the file's owner
    local hint = tostring(err):find("Permission denied", 1, true)
      and "; it must be readable by the user this process runs as (nginx workers: nginx.conf's `user`, "
        .. "nobody by default when nginx starts as root; e.g. chgrp that group and chmod 0640)" or ""
    raise("AuthError", string_format("credentials file %s (%s) cannot be opened: %s%s", path, origin, tostring(err), hint))
  end
  local text, rerr = f:read("*a")
  f:close()
  if not text then
    raise("AuthError", string_format("credentials file %s (%s) cannot be read: %s", path, origin, tostring(rerr)))
  end
  local data, jerr = cjson.decode(text)
  if type(data) ~= "table" then
    raise("AuthError", string_format("credentials file %s (%s) is not valid JSON: %s", path, origin,
      tostring(jerr or "not an object")))
  end
  local kind, typ, names = data.type, nil, {}
  for i, t in ipairs(types) do
    names[i] = t.kind
    if t.kind == kind then typ = t end
  end
  if not typ then
    raise("AuthError", string_format("credentials file %s (%s) has type %s; supported: %s", path, origin,
      type(kind) == "string" and ("'" .. kind .. "'") or "missing", table_concat(names, ", ")))
  end
  for _, k in ipairs(typ.fields) do
    if type(data[k]) ~= "string" or data[k] == "" then
      raise("AuthError", string_format("credentials file %s (%s, %s) has no '%s'", path, origin, kind, k))
    end
  end
  if data.token_uri ~= nil and type(data.token_uri) ~= "string" then
    raise("AuthError", string_format("credentials file %s (%s) has a token_uri that is not a string", path, origin))
  end
  local universe = data.universe_domain
  if universe ~= nil and (type(universe) ~= "string" or universe == "") then
    raise("AuthError", string_format("credentials file %s (%s) has a universe_domain that is not a non-empty string",
      path, origin))
  end
  -- what a type checks beyond its fields (nested objects, URLs), before any I/O
  if typ.check then typ.check(data, string_format("credentials file %s (%s, %s)", path, origin, kind)) end
  -- inside nginx: a digest of the file's content for the shared_dict key (auth/shared.lua)
  local ngx = rawget(_G, "ngx")
  local hash = ngx and (ngx.sha1_bin or ngx.md5_bin)
  local digest = hash and hash(text):gsub(".", function(c) return string_format("%02x", c:byte()) end) or nil
  return {
    kind = kind, path = path, origin = origin, data = data, digest = digest,
    quota_project = type(data.quota_project_id) == "string" and data.quota_project_id or nil,
    -- the universe its credentials belong to (google-auth: googleapis.com when the file names none)
    universe_domain = universe or common.DEFAULT_UNIVERSE,
    describe = kind .. " file " .. path,
  }
end

--- The identity of a file's credential in the shared_dict key: its principal (client_email, else
--- client_id) and the digest of the file's content; never a secret.
function _M.identity(src)
  local d = src.data
  return d.client_email or d.client_id or "", src.digest or ""
end

return _M
