-- What make fidelity's credentials part (bench/fidelity_auth.lua) and its spec
-- (spec/07_credentials_google_auth_spec.lua) share: the credential files of each case, pointing at a
-- fake server; vertexops' side of a case (a fresh client, one get); and the shape of the requests
-- the fake logged (method, path, content type, form or JSON fields, a JWT's header and claims
-- without iat, exp and signature, the headers that matter), flattened to "request.field" = value,
-- with what differs per run (ports, directories, dates, signatures, issued tokens) replaced by
-- placeholders. google-auth's shapes are recorded in spec/data/google_auth_requests.json
-- (make fidelity-record); EXPLAINED lists the fields where vertexops differs on purpose, and why.
local cjson = require "cjson"
local testing = require "vertexops.testing"
local vertexops = require "vertexops"

local M = {}

local JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
local AWS_TYPE = "urn:ietf:params:aws:token-type:aws4_request"
local AUD = "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/providers/prov"
local WORKFORCE = "//iam.googleapis.com/locations/global/workforcePools/wf-pool/providers/wf-prov"
local TARGET = "target@test-project.iam.gserviceaccount.com"
M.NAME = "projects/test-project/locations/us-central1/operations/1001"

-- The cases, in order: name, the file's fields (f(server, dir) -> table, or a key file), vertexops'
-- extra options, google-auth's mode (bench/fidelity_auth.js).
M.CASES = {
  { "service_account (jwt-bearer grant)", key = "service_account_grant", vx = { self_signed_jwt = false } },
  { "service_account (self-signed JWT)", key = "service_account_self_signed", vx = { self_signed_jwt = true },
    node = "self_signed" },
  { "authorized_user (refresh)", key = "authorized_user" },
  { "external_account, file source", key = "external_account_file" },
  { "external_account, url source", key = "external_account_url" },
  { "external_account, executable source", key = "external_account_executable" },
  { "external_account, aws1 (IMDSv2)", key = "external_account_aws1" },
  { "external_account + impersonation", key = "external_account_impersonated" },
  { "impersonated_service_account (delegates)", key = "impersonated_service_account" },
  { "external_account_authorized_user (refresh)", key = "external_account_authorized_user" },
}

local function user(server)
  return { type = "authorized_user", client_id = "test-client", client_secret = "test-secret",
           refresh_token = "test-refresh", token_uri = server.endpoint .. "/token", quota_project_id = "user-quota" }
end

local function ea(server, dir, extra)
  local d = { type = "external_account", audience = AUD, subject_token_type = JWT_TYPE,
              token_url = server.endpoint .. "/v1/token", credential_source = { file = dir .. "/subject.txt" } }
  for k, v in pairs(extra or {}) do d[k] = v end
  return d
end

local IMPERSONATE = "/v1/projects/-/serviceAccounts/" .. TARGET .. ":generateAccessToken"

local FILES = {
  authorized_user = user,
  external_account_file = function(server, dir) return ea(server, dir) end,
  external_account_url = function(server, dir)
    return ea(server, dir, { credential_source = { url = server.endpoint .. "/subject_token",
      headers = { ["X-Token-Request"] = "header-value" } } })
  end,
  external_account_executable = function(server, dir)
    return ea(server, dir, { credential_source = { executable = { command = dir .. "/subject.sh",
      timeout_millis = 5000 } } })
  end,
  external_account_aws1 = function(server)
    local m = server.http_endpoint
    return { type = "external_account", audience = AUD, subject_token_type = AWS_TYPE,
      token_url = server.endpoint .. "/v1/token", credential_source = { environment_id = "aws1",
        regional_cred_verification_url = "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
        region_url = m .. "/latest/meta-data/placement/availability-zone",
        url = m .. "/latest/meta-data/iam/security-credentials",
        imdsv2_session_token_url = m .. "/latest/api/token" } }
  end,
  external_account_impersonated = function(server, dir)
    return ea(server, dir, { service_account_impersonation_url = server.endpoint .. IMPERSONATE })
  end,
  impersonated_service_account = function(server)
    return { type = "impersonated_service_account", source_credentials = user(server),
      delegates = { "delegate@test-project.iam.gserviceaccount.com" },
      service_account_impersonation_url = server.endpoint .. IMPERSONATE }
  end,
  external_account_authorized_user = function(server)
    return { type = "external_account_authorized_user", audience = WORKFORCE, client_id = "test-workforce-client",
      client_secret = "test-workforce-secret", refresh_token = "test-workforce-refresh",
      token_url = server.endpoint .. "/v1/oauthtoken", quota_project_id = "quota-proj" }
  end,
}

--- Writes every case's credentials file into dir; returns {key = path}.
function M.write_files(server, dir)
  testing.write(dir .. "/subject.txt", "test-subject-token")
  testing.write(dir .. "/subject.sh", "#!/bin/sh\nprintf '%s' '" .. cjson.encode { version = 1, success = true,
    token_type = JWT_TYPE, id_token = "test-subject-token", expiration_time = 4102444800 } .. "'\n")
  os.execute("chmod 700 '" .. dir .. "/subject.sh'")
  local paths = { service_account_grant = testing.make_key_file(dir .. "/sa.json", server) }
  paths.service_account_self_signed = paths.service_account_grant
  for key, f in pairs(FILES) do
    paths[key] = dir .. "/" .. key .. ".json"
    testing.write(paths[key], cjson.encode(f(server, dir)))
  end
  return paths
end

-- text with the run's endpoints and directory replaced by placeholders
local function placeheld(server, dir, s)
  if type(s) ~= "string" then return s end
  local function lit(x) return (x:gsub("%p", "%%%0")) end
  s = s:gsub(lit(server.endpoint), "{endpoint}"):gsub(lit(server.http_endpoint), "{http}"):gsub(lit(dir), "{dir}")
  local port = server.endpoint:match(":(%d+)$")
  s = s:gsub("https://localhost:" .. port, "{endpoint}")
  return s
end

local function b64url_decode(s)
  local mime = require "mime"
  s = s:gsub("-", "+"):gsub("_", "/")
  return (mime.unb64(s .. string.rep("=", (4 - #s % 4) % 4)))
end

local function unescape(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- out[prefix .. k] = v for a JSON value, flattened (arrays as .1, .2, ...)
local function flatten(out, prefix, v, ph)
  if type(v) == "table" then
    for k, x in pairs(v) do flatten(out, prefix .. "." .. tostring(k), x, ph) end
  else
    out[prefix] = ph(v == cjson.null and "null" or tostring(v))
  end
end

-- a JWT's header and claims (iat, exp, signature left out)
local function jwt_fields(out, prefix, token, ph)
  local h, c = token:match("^([%w_-]+)%.([%w_-]+)%.[%w_-]+$")
  local header, claims = cjson.decode(b64url_decode(h)), cjson.decode(b64url_decode(c))
  claims.iat, claims.exp = nil, nil
  flatten(out, prefix .. ".header", header, ph)
  flatten(out, prefix .. ".claims", claims, ph)
end

-- AWS's signed GetCallerIdentity request (a subject token): its url, method and headers, with the
-- date and the signature placeheld
local function aws_fields(out, prefix, token, ph)
  local req = cjson.decode(token)
  out[prefix .. ".url"], out[prefix .. ".method"] = ph(req.url), req.method
  for _, kv in ipairs(req.headers or {}) do
    local v = kv.value:gsub("%d%d%d%d%d%d%d%dT%d%d%d%d%d%dZ", "{amzdate}"):gsub("/%d%d%d%d%d%d%d%d/", "/{date}/")
      :gsub("Signature=%x+", "Signature={sig}")
    out[prefix .. ".header." .. kv.key:lower()] = v
  end
end

local HEADERS = { "content-type", "x-goog-user-project", "metadata-flavor", "x-aws-ec2-metadata-token",
                  "x-aws-ec2-metadata-token-ttl-seconds", "x-token-request", "accept" }

-- the fields of one logged request e, under prefix
local function entry_fields(out, prefix, e, ph)
  out[prefix .. ".method"], out[prefix .. ".path"] = e.method, ph(e.path)
  for _, h in ipairs(HEADERS) do
    local v = e.headers[h]
    if h == "x-aws-ec2-metadata-token" and v then v = "{imds-token}" end
    if v then out[prefix .. ".header." .. h] = ph(type(v) == "table" and table.concat(v, ", ") or v) end
  end
  local a = e.headers.authorization
  if a then
    local basic = a:match("^Basic (.+)$")
    local bearer = a:match("^Bearer (.+)$")
    if basic then
      out[prefix .. ".authorization"] = "Basic " .. ((require "mime").unb64(basic) or "?")
    elseif bearer and bearer:match("^[%w_-]+%.[%w_-]+%.[%w_-]+$") then
      out[prefix .. ".authorization"] = "Bearer {self-signed JWT}"
      jwt_fields(out, prefix .. ".bearer", bearer, ph)
    elseif bearer then
      out[prefix .. ".authorization"] = "Bearer {token issued by the fake}"
    else
      out[prefix .. ".authorization"] = a:match("^%S+") .. " ..."
    end
  end
  local body, ct = e.body or "", (e.headers["content-type"] or ""):lower()
  if body == "" then return end
  if ct:find("x-www-form-urlencoded", 1, true) then
    for pair in body:gmatch("[^&]+") do
      local k, v = pair:match("^([^=]*)=(.*)$")
      k, v = unescape(k), unescape(v)
      if k == "assertion" then
        jwt_fields(out, prefix .. ".form.assertion", v, ph)
      elseif k == "subject_token" and v:match("^%%7[Bb]") then -- AWS's: URL-encoded JSON, in the form
        aws_fields(out, prefix .. ".form.subject_token", unescape(v), ph)
      elseif k == "options" then
        flatten(out, prefix .. ".form.options", cjson.decode(v), ph)
      else
        out[prefix .. ".form." .. k] = ph(v)
      end
    end
  elseif ct:find("json", 1, true) then
    flatten(out, prefix .. ".json", cjson.decode(body), ph)
  else
    out[prefix .. ".body"] = ph(body)
  end
end

--- The shape of the requests in the server's log (control requests are not in it): {field = value},
--- requests named call#n in order (token#1, sts#1, iam#1, get#1, ...).
function M.shape(server, dir, log)
  local out, seen = {}, {}
  local ph = function(s) return placeheld(server, dir, s) end
  for _, e in ipairs(log) do
    local call = e.call or "other"
    if call == "get" or call == "other" then call = "vertex" end
    seen[call] = (seen[call] or 0) + 1
    entry_fields(out, call .. "#" .. seen[call], e, ph)
  end
  return out
end

--- vertexops' side of case c: a fresh client reads the case's file and makes one get. Returns the
--- shape of what the fake logged.
function M.vertexops(server, dir, paths, c)
  server:reset()
  local op = server:create {}
  assert(op.name == M.NAME, "the fake numbered the operation " .. op.name)
  local executable = require "vertexops.auth.executable"
  local getenv = executable.getenv
  executable.getenv = function(k)
    if k == executable.ALLOW then return "1" end
    return os.getenv(k)
  end
  local o = { endpoint = server.endpoint, ca_file = server.ca_file, credentials = paths[c.key], retry = false }
  for k, v in pairs(c.vx or {}) do o[k] = v end
  local client = vertexops.client(o)
  local ok, err = pcall(client.get, client, op.name)
  client:close()
  executable.getenv = getenv
  assert(ok, tostring(err))
  return M.shape(server, dir, server:log())
end

--- Where vertexops differs from google-auth-library on purpose: "case field" (a Lua pattern over
--- both, anchored) -> why it does not matter. Every other field must match.
M.EXPLAINED = {
  { "service_account_grant token#1%.form%.assertion%.claims%.aud",
    "vertexops signs the file's token_uri as the audience and posts there (google-auth-python does the same); "
      .. "google-auth-library-nodejs always uses https://oauth2.googleapis.com/token, which is every real key file's token_uri" },
  { "service_account_grant token#1%.form%.assertion%.header%.typ",
    "vertexops' JWT header has typ JWT (as google-auth-python's); Node's has none: RFC 7519 makes typ optional" },
  { "service_account_grant token#1%.form%.assertion%.header%.kid",
    "vertexops names the key (private_key_id), as google-auth-python does; Node's token-grant JWT names none" },
  { "[%w_]+ [%w_]+#%d%.header%.accept",
    "the media types accepted: gaxios sends Accept: */* (application/json for IMDS' credentials), vertexops names "
      .. "what it reads (application/json from Google, text/plain from IMDS' region and role); no server of these "
      .. "varies its answer on Accept" },
  { "[%w_]+ [%w_]+#%d%.header%.content%-type",
    "gaxios adds ;charset=UTF-8 to the form's media type (the form is ASCII either way); on AWS IMDS "
      .. "requests (no body) vertexops sends a Content-Type that IMDS ignores" },
  { "external_account_aws1 aws_token#2%.[%w%.-]+",
    "vertexops asks IMDSv2 for one session token and uses it for the region and the role credentials; "
      .. "google-auth-library-nodejs asks once for each: one round trip fewer, the same token" },
  { "[%w_]+ vertex#1%.path",
    "the Vertex request itself is google-auth's generic GET of the URL vs vertexops' get: only its auth headers are compared" },
}

--- The reason a field differs on purpose, or nil.
function M.explained(case_key, field)
  local s = case_key .. " " .. field
  for _, e in ipairs(M.EXPLAINED) do
    if s:match("^" .. e[1] .. "$") then return e[2] end
  end
end

--- The rows comparing google-auth's shape g with vertexops' v for a case: a sorted list of
--- {field, google, vertexops, "MATCH" | "DIFFERS", reason?}.
function M.compare(case_key, g, v)
  local keys, rows = {}, {}
  for k in pairs(g) do keys[k] = true end
  for k in pairs(v) do keys[k] = true end
  local list = {}
  for k in pairs(keys) do list[#list + 1] = k end
  table.sort(list)
  for _, k in ipairs(list) do
    local same = g[k] == v[k]
    rows[#rows + 1] = { k, g[k], v[k], same and "MATCH" or "DIFFERS", not same and M.explained(case_key, k) or nil }
  end
  return rows
end

return M
