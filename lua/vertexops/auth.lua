-- vertexops.auth: Google Application Default Credentials, as Google's own libraries find them.
--
--   local auth = require "vertexops.auth"
--   local provider = auth.provider { scopes = {...}, credentials = "/path/key.json" }
--   provider:token()        -- a cached access token, fetched or refreshed as needed
--
-- The chain, first match wins (unless opts.credentials names a file):
--   1. GOOGLE_OAUTH_ACCESS_TOKEN        a raw token (never refreshed)
--   2. GOOGLE_APPLICATION_CREDENTIALS   a service_account or authorized_user JSON file
--   3. the gcloud file                  $CLOUDSDK_CONFIG or ~/.config/gcloud, application_default_credentials.json
--   4. the metadata server              GCE, GKE, Cloud Run ($GCE_METADATA_HOST overrides the host)
-- Secrets (private keys, refresh tokens, client secrets, access tokens) never appear in an error,
-- a log line or tostring().
local core = require "vertexops.core"
local hostmod = require "vertexops.host"
local host_pcall = hostmod.pcall -- yields through on PUC 5.1 too
-- cjson.safe's contract (nil, reason) for key files and token answers, except that a memory error
-- stays the memory error it is: cjson.safe would turn it into a plain string ("Memory allocation
-- error in CJSON protected call", make torture: fuzz/torture/key.lua).
local cjson = {}
do
  local raw = require("cjson").new()
  for _, f in ipairs { "decode", "encode" } do
    local fn = raw[f]
    cjson[f] = function(v)
      local ok, res = pcall(fn, v)
      if ok then return res end
      if res == "not enough memory" then error(res, 0) end
      return nil, res
    end
  end
end

local error, getmetatable, ipairs, pcall, rawget, setmetatable, tonumber, tostring, type =
  error, getmetatable, ipairs, pcall, rawget, setmetatable, tonumber, tostring, type
local _G = _G

-- ngx.shared[name] (nil when there is no such dict).
local function ngx_shared(name)
  local shared = rawget(_G, "ngx").shared
  return shared and shared[name]
end
local os_getenv, os_time, io_open = os.getenv, os.time, io.open
local string_format, table_concat = string.format, table.concat

local _M = {}

local CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
local DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
local METADATA_HOST = "metadata.google.internal"
local METADATA_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
local METADATA_DETECT_TIMEOUT = 3 -- seconds: off Google Cloud the lookup gives up this fast
local REFRESH_EARLY = 300         -- seconds before expiry a token is replaced
local JWT_LIFETIME = 3600
local TOKEN_TIMEOUT = 60          -- seconds for one token fetch, retries included

_M.CLOUD_PLATFORM, _M.REFRESH_EARLY = CLOUD_PLATFORM, REFRESH_EARLY

-- What the metadata server answered, per host, for this Lua state: false (absent, with a reason).
local metadata_absent = {}

-- A warning: nginx's error log (WARN) inside nginx, Lua 5.4's warn() elsewhere (shown when the
-- host turned warnings on), nothing on older interpreters.
local function warning(message)
  local ngx = rawget(_G, "ngx")
  if ngx and ngx.log and ngx.WARN then
    ngx.log(ngx.WARN, message)
  elseif rawget(_G, "warn") then
    rawget(_G, "warn")(message)
  end
end

local function auth_error(message, fields)
  return core.error({ "AuthError" }, message, fields)
end
local function fail(message, fields) error(auth_error(message, fields), 0) end

local function form(t)
  local parts = {}
  for _, kv in ipairs(t) do
    parts[#parts + 1] = kv[1] .. "=" .. tostring(kv[2]):gsub("[^%w%-%._~]", function(c)
      return string_format("%%%02X", c:byte())
    end)
  end
  return table_concat(parts, "&")
end

local function scope_string(opts)
  local s = opts.scopes
  if s == nil then return CLOUD_PLATFORM end
  if type(s) == "string" then return s end
  for i = 1, #s do
    if type(s[i]) ~= "string" then
      error(core.error({ "TypeError" }, "option 'scopes' must be a string or a list of strings"), 0)
    end
  end
  return table_concat(s, " ")
end

-- Credential files --------------------------------------------------------------------------

local FIELDS = {
  service_account = { "client_email", "private_key" },
  authorized_user = { "client_id", "client_secret", "refresh_token" },
}

-- Reads and checks a credentials file; raises AuthError naming the file and the reason.
local function load_file(path, origin)
  local f, err = io_open(path, "rb")
  if not f then fail(string_format("credentials file %s (%s) cannot be opened: %s", path, origin, tostring(err))) end
  local text, rerr = f:read("*a")
  f:close()
  if not text then fail(string_format("credentials file %s (%s) cannot be read: %s", path, origin, tostring(rerr))) end
  local data, jerr = cjson.decode(text)
  if type(data) ~= "table" then
    fail(string_format("credentials file %s (%s) is not valid JSON: %s", path, origin,
      tostring(jerr or "not an object")))
  end
  local kind = data.type
  local needed = FIELDS[kind]
  if not needed then
    fail(string_format("credentials file %s (%s) has type %s; supported: service_account, authorized_user",
      path, origin, type(kind) == "string" and ("'" .. kind .. "'") or "missing"))
  end
  for _, k in ipairs(needed) do
    if type(data[k]) ~= "string" or data[k] == "" then
      fail(string_format("credentials file %s (%s, %s) has no '%s'", path, origin, kind, k))
    end
  end
  if data.token_uri ~= nil and type(data.token_uri) ~= "string" then
    fail(string_format("credentials file %s (%s) has a token_uri that is not a string", path, origin))
  end
  -- inside nginx: a digest of the file's content for the shared_dict key (dict_key)
  local ngx = rawget(_G, "ngx")
  local hash = ngx and (ngx.sha1_bin or ngx.md5_bin)
  local digest = hash and hash(text):gsub(".", function(c) return string_format("%02x", c:byte()) end) or nil
  return {
    kind = kind, path = path, origin = origin, data = data, digest = digest,
    quota_project = type(data.quota_project_id) == "string" and data.quota_project_id or nil,
  }
end

-- Provider ------------------------------------------------------------------------------------

---@class vertexops.auth.Provider a token provider: finds credentials once, caches the token
---@field opts vertexops.Options its own options (a checked copy)
---@field client? vertexops.Client the client that sends its token requests
---@field fetches integer token requests made so far
---@field fetching? {until: number, clock: function} a token request in flight, and its own deadline
local Provider = {}
Provider.__index = Provider
_M.Provider = Provider

-- A caller's options are copied with raw reads and checked (vertexops.options.copy).
local copy_options = require("vertexops.options").copy

local raw_copy = require("vertexops.options").raw_copy
local function type_error(message) require("vertexops.errors").raise("TypeError", message) end

--- auth.provider(opts [, client]) -> a token provider that caches per client.
--- opts: credentials (file path), scopes, self_signed_jwt, clock, and the HTTP options
--- (ca_file, timeouts) used for token requests. client: the vertexops client that sends them.
---@param opts? vertexops.Options credentials must be a path here, not a provider
---@param client? vertexops.Client
---@return vertexops.auth.Provider
function _M.provider(opts, client)
  opts = copy_options(opts) or {}
  if opts.credentials ~= nil and type(opts.credentials) ~= "string" then
    type_error("option 'credentials' of auth.provider must be a key file path")
  end
  scope_string(opts)
  return setmetatable({ opts = opts, client = client, fetches = 0 }, Provider)
end

function Provider:__tostring()
  local src = self.src
  return "vertexops token provider (" .. (src and src.describe or "not resolved yet") .. ")"
end

-- Finds the source of credentials (no network: the metadata server is only named, not asked).
---@return table source {kind = "env"|"service_account"|"authorized_user"|"metadata", describe = string, ...}
function Provider:source()
  if self.src then return self.src end
  local tried = {}
  local src
  local explicit = self.opts.credentials
  if type(explicit) == "string" then
    src = load_file(explicit, "the credentials option")
  else
    local env = os_getenv("GOOGLE_OAUTH_ACCESS_TOKEN")
    if env and env ~= "" then
      src = { kind = "env", describe = "GOOGLE_OAUTH_ACCESS_TOKEN" }
    else
      tried[#tried + 1] = "GOOGLE_OAUTH_ACCESS_TOKEN is not set"
      local gac = os_getenv("GOOGLE_APPLICATION_CREDENTIALS")
      if gac and gac ~= "" then
        src = load_file(gac, "GOOGLE_APPLICATION_CREDENTIALS")
      else
        tried[#tried + 1] = "GOOGLE_APPLICATION_CREDENTIALS is not set"
        local dir = os_getenv("CLOUDSDK_CONFIG")
        if not dir or dir == "" then
          local home = os_getenv("HOME")
          dir = home and home ~= "" and home .. "/.config/gcloud" or nil
        end
        local path = dir and dir .. "/application_default_credentials.json"
        local f = path and io_open(path, "rb")
        if f then
          f:close()
          src = load_file(path, "the gcloud credentials file")
        else
          tried[#tried + 1] = "no gcloud file " .. (path or "(neither CLOUDSDK_CONFIG nor HOME is set)")
          local host = os_getenv("GCE_METADATA_HOST")
          src = { kind = "metadata", host = host and host ~= "" and host or METADATA_HOST }
        end
      end
    end
  end
  if src.kind ~= "env" and src.kind ~= "metadata" then
    src.describe = src.kind .. " file " .. src.path
  elseif src.kind == "metadata" then
    src.describe = "metadata server " .. src.host
  end
  src.tried = tried
  self.src = src
  return src
end

--- The quota project the credentials name (quota_project_id of a file), or nil.
---@return string?
function Provider:quota_project()
  return self:source().quota_project
end

--- true when a refused token can be replaced by a fresh one (not for a raw token).
---@return boolean
function Provider:refreshable()
  return self:source().kind ~= "env"
end

--- Forgets the cached token (after the service refused it).
function Provider:invalidate()
  local dict, key, refused = self.shared_dict, self.shared_key, self.cached
  self.cached, self.expires_at = nil, nil
  if dict and refused then -- the shared token too, unless another worker already replaced it
    local v = dict:get(key)
    if type(v) == "string" and v:sub(-#refused - 1) == " " .. refused then dict:delete(key) end
  end
end

local function clock_of(opts)
  return opts.clock or core.clock
end

-- A token request in flight is recorded as provider.fetching = {until, clock}: until is the
-- fetch's own deadline (TOKEN_TIMEOUT, or the call's deadline when sooner) on clock. Requests that
-- run side by side (client:start, cancel_many, nginx request handlers) wait for it instead of
-- fetching again (Client:_token), but never past that deadline: nginx does not unwind a light
-- thread it kills (its nginx request ended), so the code that ends the fetch may never run; past
-- its deadline the fetch is no longer in flight and a waiter fetches on its own. A started
-- request that leads a fetch gives it up when closed (req:close()).
function Provider:_lead(o, deadline)
  local clock = clock_of(o)
  local limit = clock() + TOKEN_TIMEOUT
  if deadline and deadline < limit then limit = deadline end
  -- request: the started request that leads the fetch (a waiter under client:start() steps it
  -- when its host stopped doing so: the token answer may have come with nobody to read it)
  local fetch = { ["until"] = limit, clock = clock, request = hostmod.request() }
  local function release()
    if self.fetching == fetch then self.fetching = nil end
  end
  fetch.release, fetch.holder = release, hostmod.hold(release)
  self.fetching = fetch
  return fetch
end

local function end_fetch(fetch)
  hostmod.unhold(fetch.holder)
  fetch.release()
end

-- expires_in is stored only when it is a finite number of seconds in 1..MAX_LIFETIME; otherwise
-- the token serves the call that fetched it and is not kept (with a warning).
local MAX_LIFETIME = 86400
function Provider:_storable(lifetime)
  if type(lifetime) == "number" and lifetime >= 1 and lifetime <= MAX_LIFETIME then return true end
  local shown = type(lifetime) == "number" and string_format("%.17g", lifetime) or tostring(lifetime):sub(1, 40)
  warning(string_format("vertexops: the token of %s came with expires_in %s, not a number of seconds in "
    .. "1..%d: it serves this call only and is not cached", self.src and self.src.describe or "?",
    shown, MAX_LIFETIME))
  return false
end

--- A valid access token: cached until REFRESH_EARLY seconds before it expires.
--- o (optional): the options of the call that needs it, for the token request's transport
--- (ca_file, timeouts, retry, clock, sleep); the provider's own options otherwise.
---@param o? vertexops.Options
---@return string token
function Provider:token(o)
  if getmetatable(self) ~= Provider then
    type_error("provider:token() needs a provider as its receiver (called with '.' instead of ':'?)")
  end
  return self:_token(copy_options(o))
end

-- Provider:token for options already checked (o), within deadline (absolute, on o's clock; nil:
-- only the token request's own limit): the token request gets what is left of the call's time.
---@param o? vertexops.Options
---@param deadline? number
---@return string token
function Provider:_token(o, deadline)
  o = o or self.opts
  local src = self:source()
  if src.kind == "env" then
    local t = os_getenv("GOOGLE_OAUTH_ACCESS_TOKEN")
    if not t or t == "" then fail("GOOGLE_OAUTH_ACCESS_TOKEN is no longer set") end
    return t
  end
  local clock = clock_of(o)
  if self.cached and clock() < self.expires_at - REFRESH_EARLY then return self.cached end
  local dict_name = o.shared_dict or self.opts.shared_dict
  if dict_name then
    local token = self:_shared_token(src, o, deadline, dict_name)
    if token then return token end
  end
  local fetch = self:_lead(o, deadline)
  -- (a pcall the fetch may yield through under client:start(), PUC Lua 5.1 included)
  local ok, token, lifetime = host_pcall(self._fetch, self, src, o, deadline)
  end_fetch(fetch)
  if not ok then error(token, 0) end
  self.fetches = self.fetches + 1
  if self:_storable(lifetime) then self.cached, self.expires_at = token, clock() + lifetime end
  return token
end

-- Tokens shared by nginx workers (option shared_dict, a lua_shared_dict): one token fetch per
-- expiry for all of them. The dict holds, per credential (dict_key: its type, identity, a digest
-- of the key file's content, scopes and self_signed_jwt mode; no secret in a key), the token with
-- its expiry (seconds since the epoch, ngx.now()'s clock) as "expiry token" and a lock. The worker
-- that adds the lock (add: one wins) fetches and stores; the others poll the dict until the token
-- is there, the lock is gone (the fetch ended without a token: they try to take it) or LOCK_WAIT
-- passed (they fetch on their own). The lock lives as long as its fetch may (the fetch's own
-- deadline): a fetch cut short (its worker died, or nginx killed its light thread) frees it by
-- then. Tokens never go to a log. Returns nil outside nginx phases that can wait.
local LOCK_WAIT = 10         -- seconds a worker waits for another's fetch before fetching itself
_M.LOCK_WAIT = LOCK_WAIT

-- length-prefixed parts: no two different lists of parts make the same key
local function lp(s) return #s .. ":" .. s end

local function dict_key(src, scope, self_signed)
  local identity, digest
  if src.kind == "metadata" then
    identity, digest = src.host, ""
  else
    local d = src.data
    identity = d.client_email or d.client_id or ""
    digest = src.digest or ""
  end
  return "vertexops token " .. lp(src.kind) .. " " .. lp(identity) .. " " .. lp(scope) .. " "
    .. lp(self_signed and "self_signed_jwt" or "exchange") .. " " .. lp(digest)
end

--- The shared_dict key of a provider's token (its lock: the key .. " lock"); for specs.
function _M.shared_key(provider)
  return dict_key(provider:source(), scope_string(provider.opts), provider.opts.self_signed_jwt)
end

local lock_serial = 0

function Provider:_shared_token(src, o, deadline, dict_name)
  local ngx = hostmod.nginx_phase()
  local dict = rawget(_G, "ngx") and ngx_shared(dict_name)
  if not dict then
    if rawget(_G, "ngx") then
      fail(string_format("option shared_dict names '%s', which is no lua_shared_dict of this nginx", dict_name))
    end
    return nil -- not in nginx: the provider's own cache only
  end
  local key = dict_key(src, scope_string(self.opts), self.opts.self_signed_jwt)
  local now = rawget(_G, "ngx").now
  -- a dict operation that fails (raising a plain string, or returning an error: "no memory", "key
  -- too long") is an AuthError naming the dict; add's "exists" is an answer, not a failure
  local function dict_call(what, ...)
    local ok, a, b = pcall(dict[what], dict, ...)
    if ok and (a or (what == "get" and b == nil) or (what == "add" and b == "exists")) then return a, b end
    fail(string_format("shared_dict '%s' failed to %s: %s", dict_name, what, tostring(ok and b or a)))
  end
  local function cached()
    local v = dict_call("get", key)
    if type(v) ~= "string" then return nil end
    local exp, token = v:match("^(%d+%.?%d*) (.+)$")
    exp = tonumber(exp)
    if not exp or now() >= exp - REFRESH_EARLY then return nil end
    return token, exp
  end
  local function take(token, exp)
    self.cached, self.expires_at = token, clock_of(o)() + (exp - now())
    self.shared_key, self.shared_dict = key, dict
    return token
  end
  local token, exp = cached()
  if token then return take(token, exp) end
  if not ngx then return nil end -- a phase that cannot wait (init_worker, log, ...): fetch here
  local lock = key .. " lock"
  local clock = clock_of(o)
  local waited_until = now() + _M.LOCK_WAIT
  if deadline then waited_until = math.min(waited_until, now() + (deadline - clock())) end
  -- the lock's value names its holder; it lives as long as the fetch may
  lock_serial = lock_serial + 1
  local mine = string_format("%s %d", tostring(ngx.worker and ngx.worker.pid and ngx.worker.pid() or 0), lock_serial)
  local delay = 0.002
  while true do
    local bound = TOKEN_TIMEOUT
    if deadline then bound = math.min(bound, deadline - clock()) end
    if bound <= 0 then return nil end -- the call's time is up: the fetch raises TimeoutError
    -- (at least 1 ms: the dict counts whole milliseconds, and 0 would mean "never expires")
    if dict_call("add", lock, mine, math.max(bound, 0.001)) then break end -- this worker fetches
    token, exp = cached()
    if token then return take(token, exp) end
    if now() >= waited_until then return nil end -- waited long enough: fetch on our own
    ngx.sleep(delay)
    ngx.update_time()
    delay = math.min(delay * 2, 0.05)
  end
  local function unlock()
    local ok, v = pcall(dict.get, dict, lock)
    if ok and v == mine then pcall(dict.delete, dict, lock) end
  end
  local holder = hostmod.hold(unlock)
  -- the lock is ours: another worker may have stored a token between our look and our add
  local ok, t, e = pcall(cached)
  if not ok or t then
    hostmod.unhold(holder)
    unlock()
    if not ok then error(t, 0) end
    return take(t, e)
  end
  local fetch = self:_lead(o, deadline)
  local fetched, lifetime
  ok, fetched, lifetime = host_pcall(self._fetch, self, src, o, deadline)
  end_fetch(fetch)
  if not ok then
    hostmod.unhold(holder)
    unlock()
    error(fetched, 0)
  end
  self.fetches = self.fetches + 1
  if not self:_storable(lifetime) then
    hostmod.unhold(holder)
    unlock()
    return fetched -- this call only
  end
  exp = now() + lifetime
  -- kept in the dict until it expires (nginx drops it then, or earlier when the dict is full)
  local stored, serr = pcall(dict_call, "set", key, string_format("%.3f %s", exp, fetched), lifetime)
  hostmod.unhold(holder)
  unlock()
  if not stored then error(serr, 0) end
  return take(fetched, exp)
end

-- The vertexops client that sends token requests (made on first use for a stand-alone provider).
function Provider:_client()
  if not self.client then self.client = require("vertexops").client() end
  return self.client
end

-- One HTTP exchange to a token endpoint, retried like an idempotent call (429 and 5xx), within
-- TOKEN_TIMEOUT and the deadline of the call that needs the token (when given). When that
-- deadline is what ended it, the call's TimeoutError is raised (cause: the token request's failure).
function Provider:_request(req, where, call_opts, detect, deadline)
  local o = raw_copy(call_opts)
  o.credentials, o.scopes, o.self_signed_jwt, o.token = nil, nil, nil, nil
  if detect then o.connect_timeout, o.request_timeout, o.retry = detect, detect, false end
  local clock = clock_of(o)
  local limit = clock() + math.min(o.timeout or TOKEN_TIMEOUT, TOKEN_TIMEOUT)
  local bound = deadline ~= nil and deadline <= limit
  if bound then limit = deadline end
  local ok, res, headers = self:_client():_run(o, req, { rules = "TOKEN", no_auth = true, deadline = limit })
  if ok then return res, headers end
  if bound and core.is(res, "TimeoutError") then
    error(core.error({ "TimeoutError" }, string_format("%s did not give a token within the call's timeout (%s)",
      where, tostring(res)), { cause = res }), 0)
  end
  if core.is(res, "HttpError") and type(res.body) == "table" and type(res.body.error) == "string" then
    fail(string_format("%s refused the credentials (%s): %s%s", where, self.src.describe, res.body.error,
      type(res.body.error_description) == "string" and ": " .. res.body.error_description or ""),
      { code = res.code, error = res.body.error, error_description = res.body.error_description })
  end
  return nil, res
end

local function check_url(url, what)
  local ok, err = pcall(core.check_url, url)
  if not ok then fail(string_format("%s %s is not usable: %s", what, url, tostring(err.message or err))) end
end

-- The token and its lifetime: expires_in (a number, or a numeric string), JWT_LIFETIME when the
-- answer has none; anything else comes back as it is, for Provider:_storable to refuse.
local function lifetime_of(body, where)
  if type(body.access_token) ~= "string" or body.access_token == "" then
    fail(where .. " answered without an access_token")
  end
  local e = body.expires_in
  if e == nil or e == cjson.null then return body.access_token, JWT_LIFETIME end
  local expires = tonumber(e)
  if expires == nil or expires ~= expires then expires = e end -- NaN, or not a number: refused
  return body.access_token, expires
end

function Provider:_jwt(sa, claims)
  local header = { alg = "RS256", typ = "JWT", kid = type(sa.private_key_id) == "string" and sa.private_key_id or nil }
  local input = core.b64url(cjson.encode(header)) .. "." .. core.b64url(cjson.encode(claims))
  local sig, why = core.rs256(sa.private_key, input)
  if not sig then fail(string_format("credentials file %s: %s", self.src.path, why)) end
  return input .. "." .. core.b64url(sig)
end

function Provider:_fetch(src, o, deadline)
  local scope = scope_string(self.opts)
  if src.kind == "service_account" then
    local sa = src.data
    local iat = os_time()
    if self.opts.self_signed_jwt then
      -- Sent as the bearer token itself: no token exchange.
      return self:_jwt(sa, { iss = sa.client_email, sub = sa.client_email, scope = scope, iat = iat,
                              exp = iat + JWT_LIFETIME }), JWT_LIFETIME
    end
    local uri = sa.token_uri or DEFAULT_TOKEN_URI
    check_url(uri, "token_uri")
    local jwt = self:_jwt(sa, { iss = sa.client_email, scope = scope, aud = uri, iat = iat, exp = iat + JWT_LIFETIME })
    local body, err = self:_request({ call = "token", method = "POST", url = uri, body = form {
      { "grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer" }, { "assertion", jwt } },
      headers = { "Content-Type: application/x-www-form-urlencoded", "Accept: application/json" } },
      "token endpoint " .. uri, o, nil, deadline)
    if not body then fail("token endpoint " .. uri .. " failed: " .. tostring(err), { cause = err }) end
    return lifetime_of(body, "token endpoint " .. uri)
  elseif src.kind == "authorized_user" then
    local u = src.data
    local uri = u.token_uri or DEFAULT_TOKEN_URI
    check_url(uri, "token_uri")
    local body, err = self:_request({ call = "token", method = "POST", url = uri, body = form {
      { "grant_type", "refresh_token" }, { "client_id", u.client_id }, { "client_secret", u.client_secret },
      { "refresh_token", u.refresh_token } },
      headers = { "Content-Type: application/x-www-form-urlencoded", "Accept: application/json" } },
      "token endpoint " .. uri, o, nil, deadline)
    if not body then fail("token endpoint " .. uri .. " failed: " .. tostring(err), { cause = err }) end
    return lifetime_of(body, "token endpoint " .. uri)
  end
  -- the metadata server
  local host = src.host
  if metadata_absent[host] then
    fail(self:_nothing_found(metadata_absent[host]))
  end
  local url = "http://" .. host .. METADATA_PATH
  if self.opts.scopes then url = url .. "?scopes=" .. form({ { "", scope } }):sub(2) end
  local detect = not src.detected and METADATA_DETECT_TIMEOUT or nil
  local body, headers_or_err = self:_request({ call = "metadata", method = "GET", url = url, want_headers = true,
    headers = { "Metadata-Flavor: Google", "Accept: application/json" } }, "metadata server " .. host, o, detect,
    deadline)
  if not body or headers_or_err["metadata-flavor"] ~= "Google" then
    local why = not body and tostring(headers_or_err) or "the answer did not come from a metadata server"
    if detect then
      metadata_absent[host] = why -- remembered: the next lookup fails at once
      fail(self:_nothing_found(why))
    end
    fail("metadata server " .. host .. " failed: " .. why, { cause = not body and headers_or_err or nil })
  end
  src.detected = true
  return lifetime_of(body, "metadata server " .. host)
end

function Provider:_nothing_found(why)
  local tried = {}
  for i, t in ipairs(self.src.tried or {}) do tried[i] = t end
  tried[#tried + 1] = "metadata server " .. self.src.host .. ": " .. why
  return "no Google credentials found: " .. table_concat(tried, "; ")
end

--- Forgets what was learned about metadata servers (for tests and long-lived hosts that move).
function _M.reset_metadata_cache()
  metadata_absent = {}
end

return _M
