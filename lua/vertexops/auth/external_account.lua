-- vertexops.auth.external_account: workload identity federation (a credentials file of type
-- external_account, as `gcloud iam workload-identity-pools create-cred-config` writes it). Its
-- token: the subject token from credential_source (a file: text, or JSON with
-- format.subject_token_field_name; a URL: GET with its headers, text or JSON; or a program the
-- file names, auth/executable.lua), exchanged at
-- token_url by the RFC 8693 token exchange (auth/sts.lua), then, when
-- service_account_impersonation_url is set, exchanged again there (generateAccessToken).
-- environment_id aws1: a signed AWS GetCallerIdentity request (auth/aws.lua).
-- Each failure names the file and the step: subject token, STS, impersonation. Subject tokens,
-- header values and client secrets never go into a message.
local common = require "vertexops.auth.common"
local sts = require "vertexops.auth.sts"
local executable = require "vertexops.auth.executable"
local aws = require "vertexops.auth.aws"
local cjson = common.json

local io_open, ipairs, pairs, tonumber, tostring, type = io.open, ipairs, pairs, tonumber, tostring, type
local math_floor, string_format = math.floor, string.format
local raise = require("vertexops.errors").raise

local _M = {
  kind = "external_account",
  fields = { "audience", "subject_token_type" }, -- what the file must have (non-empty strings)
  refreshable = true,
}

-- A workforce pool's audience (google-auth's WORKFORCE_AUDIENCE_PATTERN): the only one that may
-- name a workforce_pool_user_project.
local function workforce(audience)
  return audience:match("^//iam%.googleapis%.com/locations/[^/]+/workforcePools/[^/]+/providers/.+$") ~= nil
end

local function optional_string(d, k, where)
  if d[k] ~= nil and (type(d[k]) ~= "string" or d[k] == "") then
    raise("AuthError", string_format("%s has a '%s' that is not a non-empty string", where, k))
  end
end

--- Checks what the file d must hold beyond its fields (where: the file, for messages), before any
--- I/O; raises AuthError naming what is wrong (a source not supported yet: by its type).
function _M.check(d, where)
  for _, k in ipairs { "token_url", "service_account_impersonation_url", "workforce_pool_user_project",
                      "client_id", "client_secret" } do
    optional_string(d, k, where)
  end
  local cs = d.credential_source
  if type(cs) ~= "table" then raise("AuthError", where .. " has no 'credential_source' object") end
  local aws_source = cs.environment_id ~= nil
  if aws_source then
    aws.check(cs, where)
    if cs.executable ~= nil or cs.file ~= nil then
      raise("AuthError", where .. ": credential_source with an environment_id takes no 'file' or 'executable'")
    end
  elseif (cs.file ~= nil and 1 or 0) + (cs.url ~= nil and 1 or 0) + (cs.executable ~= nil and 1 or 0) ~= 1 then
    raise("AuthError", where .. ": credential_source must name exactly one of 'file', 'url' and 'executable' "
      .. "(supported: file, url, executable, environment_id aws1)")
  end
  if cs.executable ~= nil then executable.check(cs.executable, where) end
  optional_string(cs, "file", where .. " credential_source")
  optional_string(cs, "url", where .. " credential_source")
  local fmt = cs.format
  if fmt ~= nil then
    if type(fmt) ~= "table" then raise("AuthError", where .. ": credential_source format is not an object") end
    if fmt.type ~= nil and fmt.type ~= "text" and fmt.type ~= "json" then
      raise("AuthError", where .. ": credential_source format type must be \"text\" or \"json\"")
    end
    if fmt.type == "json" and (type(fmt.subject_token_field_name) ~= "string" or fmt.subject_token_field_name == "") then
      raise("AuthError", where .. ": credential_source format json needs a subject_token_field_name")
    end
  end
  if cs.headers ~= nil then
    if type(cs.headers) ~= "table" or cs.file then raise("AuthError", where .. ": credential_source headers must be an object "
      .. "of a url source") end
    for name, value in pairs(cs.headers) do
      -- a header line of visible ASCII name and printable value; the value is never shown (it may be a secret)
      if type(name) ~= "string" or not name:match("^[!-9;-~]+$") or type(value) ~= "string"
        or value:find("[%z\1-\8\10-\31\127]") then
        raise("AuthError", string_format("%s: credential_source header %s is not a header name with a printable string value",
          where, type(name) == "string" and ("'" .. name:sub(1, 40):gsub("[^!-~]", "?") .. "'") or "(not a string)"))
      end
    end
  end
  if d.workforce_pool_user_project and not workforce(d.audience) then
    raise("AuthError", where .. " has a workforce_pool_user_project but its audience is not a workforce pool's")
  end
  local sai = d.service_account_impersonation
  if sai ~= nil then
    local life = type(sai) == "table" and sai.token_lifetime_seconds
    if type(sai) ~= "table" or life ~= nil and (type(life) ~= "number" or life ~= math_floor(life) or life < 1
      or life > 43200) then
      raise("AuthError", where .. ": service_account_impersonation.token_lifetime_seconds must be a whole number of seconds "
        .. "from 1 to 43200")
    end
  end
  -- the URLs go through the endpoint rules (https, or http to loopback) before anything is sent
  common.check_url(d.token_url or sts.token_url(d.universe_domain), where .. ": token_url")
  if cs.url then common.check_source_url(cs.url, where .. ": credential_source url") end
  if d.service_account_impersonation_url then
    sts.check_impersonation_url(d.service_account_impersonation_url, where .. ": service_account_impersonation_url")
  end
end

--- The identity of the credential in the shared_dict key: audience, subject-token source and
--- impersonated account (no secret); and the digest of the file's content.
function _M.identity(src)
  local d = src.data
  local cs = d.credential_source
  local source = cs.environment_id and "aws:" .. tostring(cs.url) or cs.file and "file:" .. cs.file
    or cs.url and "url:" .. cs.url
    or "executable:" .. cs.executable.command .. " " .. tostring(cs.executable.output_file)
  return string_format("%s %s %s", d.audience, source,
    d.service_account_impersonation_url or ""), src.digest or ""
end

-- The subject token in the JSON object data, read from where: its field fmt.subject_token_field_name,
-- a non-empty string (says: what where did, "has" for a file, "answered" for a URL).
local function token_field(data, fmt, where, says)
  local token = data[fmt.subject_token_field_name]
  if type(token) ~= "string" or token == "" then
    raise("AuthError", string_format("%s %s no string '%s'", where, says, fmt.subject_token_field_name))
  end
  return token
end

-- The subject token from the file path, in the format fmt.
local function from_file(path, fmt, describe)
  local where = string_format("%s: subject token file %s", describe, path)
  local f, err = io_open(path, "rb")
  if not f then raise("AuthError", where .. " cannot be opened: " .. tostring(err)) end
  local text, rerr = f:read("*a")
  f:close()
  if not text then raise("AuthError", where .. " cannot be read: " .. tostring(rerr)) end
  if fmt.type ~= "json" then
    if text == "" then raise("AuthError", where .. " is empty") end
    return text
  end
  local data = cjson.decode(text)
  if type(data) ~= "table" then raise("AuthError", where .. " is not a JSON object") end
  return token_field(data, fmt, where, "has")
end

-- The subject token from the URL of cs (GET with its headers), in the format fmt, within deadline.
local function from_url(provider, cs, fmt, describe, o, deadline)
  local where = string_format("%s: subject token URL %s", describe, cs.url)
  local headers = {}
  for name, value in pairs(cs.headers or {}) do headers[#headers + 1] = name .. ": " .. value end
  local body, err = provider:_request({ call = "subject_token", method = "GET", url = cs.url, headers = headers },
    where, o, nil, deadline)
  if fmt.type == "json" then
    if not body then raise("AuthError", where .. " failed: " .. tostring(err), { cause = err, code = err and err.code }) end
    return token_field(body, fmt, where, "answered")
  end
  -- text: the whole body. The client's reader takes a 2xx that is not a JSON object for a
  -- ResponseTypeError holding the body (its first 4 KiB, and its size in the message)
  if body then raise("AuthError", where .. " answered a JSON object; its format is text") end
  local size = err and err.code and err.code >= 200 and err.code <= 299 and type(err.body) == "string"
    and tostring(err.message):match("%((%d+) bytes%)")
  if not size then raise("AuthError", where .. " failed: " .. tostring(err), { cause = err, code = err and err.code }) end
  if #err.body ~= tonumber(size) then raise("AuthError", where .. " answered a subject token longer than 4 KiB") end
  if err.body == "" then raise("AuthError", where .. " answered an empty subject token") end
  return err.body
end

--- The token and its lifetime, for scope.
function _M.fetch(provider, src, o, deadline, scope)
  local d = src.data
  local cs, describe = d.credential_source, src.describe
  local fmt = cs.format or {}
  local subject
  if cs.environment_id ~= nil then
    subject = aws.subject_token(provider, d, describe, o, deadline)
  elseif cs.file then
    subject = from_file(cs.file, fmt, describe)
  elseif cs.executable then
    subject = executable.subject_token(d, describe, deadline)
  else
    subject = from_url(provider, cs, fmt, describe, o, deadline)
  end
  local impersonate = d.service_account_impersonation_url
  local token, lifetime = sts.exchange(provider, {
    token_url = d.token_url or sts.token_url(src.universe_domain), audience = d.audience, subject_token = subject,
    subject_token_type = d.subject_token_type, client_id = d.client_id, client_secret = d.client_secret,
    user_project = d.workforce_pool_user_project, describe = describe,
    -- impersonating: the STS token only serves the impersonation (google-auth asks cloud-platform)
    scope = impersonate and common.CLOUD_PLATFORM or scope,
  }, o, deadline)
  if not impersonate then return token, lifetime end
  local sai = d.service_account_impersonation
  return sts.generate_access_token(provider, { url = impersonate, bearer = token, scope = scope,
    lifetime = type(sai) == "table" and sai.token_lifetime_seconds or sts.DEFAULT_LIFETIME, describe = describe },
    o, deadline)
end

return _M
