-- vertexops.auth.aws: the subject token of an external_account file whose credential_source has
-- environment_id "aws1", as google-auth makes it: the region (AWS_REGION, AWS_DEFAULT_REGION, or
-- the instance metadata service's availability zone at region_url less its letter) and the role's
-- credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, or the role named at
-- url and its credentials at url/ROLE), the metadata requests carrying an IMDSv2 session token
-- (PUT imdsv2_session_token_url) when credential_source names one and the environment does not
-- give both; then a GetCallerIdentity request to regional_cred_verification_url ({region} filled)
-- signed with AWS Signature Version 4 (core.sigv4, csrc/sigv4.c), serialized as the URL-encoded
-- JSON {headers = [{key, value}], method, url} with x-goog-cloud-target-resource = the audience.
-- Every failure names its step (AWS metadata session token, region, credentials, signing); no
-- message holds a secret access key, a session token or a metadata token.
local common = require "vertexops.auth.common"
local core = require "vertexops.core"
local raise = require("vertexops.errors").raise

local ipairs, os_date, os_time, pairs, pcall, table_concat, table_sort, tonumber, tostring, type =
  ipairs, os.date, os.time, pairs, pcall, table.concat, table.sort, tonumber, tostring, type
local string_format = string.format

local _M = {}

_M.TOKEN_TYPE = "urn:ietf:params:aws:token-type:aws4_request"
_M.SESSION_TTL = "300" -- seconds of the IMDSv2 session token, as google-auth asks
_M.now = os_time       -- the signing time (specs fix it)

-- the environment (an empty variable counts as unset); sources.getenv, which specs replace
local function env(name)
  return require("vertexops.auth.sources").getenv(name)
end

--- Checks credential_source cs of an aws environment_id (where: the file, for messages): the
--- version (1), regional_cred_verification_url (https, a host, {region} at most), and the metadata
--- URLs (region_url, url, imdsv2_session_token_url) by the endpoint rules of credential_source URLs.
function _M.check(cs, where)
  local id = cs.environment_id
  local version = type(id) == "string" and id:match("^aws(%d+)$")
  if not version then
    raise("AuthError", string_format("%s: credential_source environment_id %s is not supported (supported: aws1)", where,
      type(id) == "string" and ("'" .. id:sub(1, 40):gsub("[^!-~]", "?") .. "'") or "(not a string)"))
  end
  if tonumber(version) ~= 1 then
    raise("AuthError", string_format("%s: credential_source environment_id 'aws%s' is not supported (supported: aws1)",
      where, version:sub(1, 10)))
  end
  local v = cs.regional_cred_verification_url
  if type(v) ~= "string" or not v:match("^https://[%w%.%-{}]+[/?]?[!-~]*$") or #v > 2048 then
    raise("AuthError", where .. ": credential_source regional_cred_verification_url must be an https URL (AWS STS "
      .. "GetCallerIdentity, {region} for the region)")
  end
  for _, k in ipairs { "region_url", "url", "imdsv2_session_token_url" } do
    if cs[k] ~= nil then
      if type(cs[k]) ~= "string" or cs[k] == "" then
        raise("AuthError", string_format("%s credential_source has a '%s' that is not a non-empty string", where, k))
      end
      common.check_source_url(cs[k], string_format("%s: credential_source %s", where, k))
    end
  end
end

-- A text answer of the metadata service at req (what: the step, for messages): the body.
local function text(provider, req, what, o, deadline)
  local body, err = provider:_request(req, what, o, nil, deadline)
  if body then raise("AuthError", what .. " answered a JSON object, not text") end
  local size = err and err.code and err.code >= 200 and err.code <= 299 and type(err.body) == "string"
    and tostring(err.message):match("%((%d+) bytes%)")
  if not size then
    raise("AuthError", string_format("%s failed: %s", what, err and err.code and ("HTTP " .. err.code)
      or tostring(err and err.message or err)), { cause = err, code = err and err.code })
  end
  if #err.body ~= tonumber(size) then raise("AuthError", what .. " answered more than 4 KiB") end
  if err.body == "" then raise("AuthError", what .. " answered nothing") end
  return err.body
end

local function metadata_headers(session, extra)
  local h = { extra }
  if session then h[#h + 1] = "X-aws-ec2-metadata-token: " .. session end
  return h
end

-- The region, from the environment or the metadata service's availability zone.
local function region(provider, cs, describe, session, o, deadline)
  local r = env("AWS_REGION") or env("AWS_DEFAULT_REGION")
  if r then
    -- it goes into regional_cred_verification_url's host: a region name, nothing that could move it
    if not r:match("^[a-z][a-z0-9%-]*%d$") or #r > 64 then
      raise("AuthError", string_format("%s: AWS region: %s is not a region name (like us-east-2)", describe,
        env("AWS_REGION") and "AWS_REGION" or "AWS_DEFAULT_REGION"))
    end
    return r
  end
  if not cs.region_url then
    raise("AuthError", describe .. ": AWS region: neither AWS_REGION nor AWS_DEFAULT_REGION is set and "
      .. "credential_source has no region_url")
  end
  local what = string_format("%s: AWS region from %s", describe, cs.region_url)
  local zone = text(provider, { call = "aws_metadata", method = "GET", url = cs.region_url,
    headers = metadata_headers(session, "Accept: text/plain") }, what, o, deadline)
  -- an availability zone is its region and a letter (us-east-2b); google-auth drops the last character
  r = zone:match("^([a-z][a-z0-9%-]*%d)[a-z]$")
  if not r then raise("AuthError", what .. " answered something that is not an availability zone") end
  return r
end

-- The credentials, from the environment or the role attached to the instance.
local function credentials(provider, cs, describe, session, o, deadline)
  local id, secret = env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")
  if id and secret then return id, secret, env("AWS_SESSION_TOKEN") end
  if not cs.url then
    raise("AuthError", describe .. ": AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not both set "
      .. "and credential_source has no url")
  end
  local what = string_format("%s: AWS credentials: role name from %s", describe, cs.url)
  local role = text(provider, { call = "aws_metadata", method = "GET", url = cs.url,
    headers = metadata_headers(session, "Accept: text/plain") }, what, o, deadline)
  if not role:match("^[%w+=,.@_%-]+$") or #role > 128 then
    raise("AuthError", what .. " answered something that is not a role name")
  end
  local url = cs.url:gsub("/+$", "") .. "/" .. role
  what = string_format("%s: AWS credentials from %s", describe, url)
  local body, err = provider:_request({ call = "aws_metadata", method = "GET", url = url,
    headers = metadata_headers(session, "Content-Type: application/json") }, what, o, nil, deadline)
  if not body then
    -- the message of a 2xx that is not JSON could quote it: it would hold the secret; only the status
    raise("AuthError", string_format("%s failed: %s", what, err and err.code and err.code >= 200 and err.code <= 299
      and "the answer is not a JSON object" or err and err.code and ("HTTP " .. err.code)
      or tostring(err and err.message or err)), { code = err and err.code })
  end
  for _, k in ipairs { "AccessKeyId", "SecretAccessKey" } do
    if type(body[k]) ~= "string" or body[k] == "" then
      raise("AuthError", string_format("%s answered no string '%s'", what, k))
    end
  end
  local token = body.Token
  if token ~= nil and (type(token) ~= "string" or token == "") then token = nil end
  return body.AccessKeyId, body.SecretAccessKey, token
end

-- JSON string, as Python's json.dumps writes it (ASCII only, "/" not escaped)
local function json_string(s)
  return '"' .. s:gsub('[%c"\\\128-\255]', function(c)
    local map = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
    return map[c] or string_format("\\u%04x", c:byte())
  end) .. '"'
end

-- URL-encoding as Python's urllib.parse.quote (safe: letters, digits, "_.-~" and "/")
local function quote(s)
  return (s:gsub("[^%w_%.%-~/]", function(c) return string_format("%%%02X", c:byte()) end))
end

--- The signed GetCallerIdentity request of cs for audience, serialized (google-auth's form), with
--- credentials (id, secret, session token or nil) in region at time t (seconds since the epoch).
function _M.serialize(cs, audience, region_name, id, secret, token, t, describe)
  local url = cs.regional_cred_verification_url:gsub("{region}", region_name)
  local host, rest = url:match("^https://([^/?]+)(.*)$")
  if not host or host:find("[{}]") then
    raise("AuthError", describe .. ": AWS signing: regional_cred_verification_url has no host")
  end
  local path, query = rest:match("^([^?]*)%??(.*)$")
  if path == "" then path = "/" end
  local date = os_date("!%Y%m%dT%H%M%SZ", t)
  local signed = { host = host, ["x-amz-date"] = date, ["x-amz-security-token"] = token }
  local ok, r = pcall(core.sigv4, { method = "POST", path = path, query = query, headers = signed,
    region = region_name, service = host:match("^[^.]+"), access_key = id, secret_key = secret, date = date })
  if not ok then
    -- core.sigv4's messages never hold the secret key; the session token's value is not named either
    raise("AuthError", string_format("%s: AWS signing failed: %s", describe, tostring(r and r.message or r)), { cause = r })
  end
  local headers = { Authorization = r.authorization, host = host, ["x-amz-date"] = date,
    ["x-amz-security-token"] = token, ["x-goog-cloud-target-resource"] = audience }
  local keys = {}
  for k in pairs(headers) do keys[#keys + 1] = k end
  table_sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    parts[#parts + 1] = string_format('{"key":%s,"value":%s}', json_string(k), json_string(headers[k]))
  end
  return quote(string_format('{"headers":[%s],"method":"POST","url":%s}', table_concat(parts, ","), json_string(url)))
end

--- The subject token of the external_account file d (describe: the file, for messages).
function _M.subject_token(provider, d, describe, o, deadline)
  local cs = d.credential_source
  local session
  local from_env = (env("AWS_REGION") or env("AWS_DEFAULT_REGION")) and env("AWS_ACCESS_KEY_ID")
    and env("AWS_SECRET_ACCESS_KEY")
  if cs.imdsv2_session_token_url and not from_env then
    local what = string_format("%s: AWS metadata session token from %s", describe, cs.imdsv2_session_token_url)
    session = text(provider, { call = "aws_metadata", method = "PUT", url = cs.imdsv2_session_token_url, body = "",
      headers = { "X-aws-ec2-metadata-token-ttl-seconds: " .. _M.SESSION_TTL } }, what, o, deadline)
    if not session:match("^[!-~]+$") then raise("AuthError", what .. " answered something that is not a token") end
  end
  local r = region(provider, cs, describe, session, o, deadline)
  local id, secret, token = credentials(provider, cs, describe, session, o, deadline)
  return _M.serialize(cs, d.audience, r, id, secret, token, _M.now(), describe)
end

return _M
