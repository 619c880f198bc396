-- vertexops.auth: Google Application Default Credentials, as Google's own libraries find them.
--
--   local auth = require "vertexops.auth"
--   local provider = auth.provider { scopes = {...}, credentials = "/path/key.json" }
--   provider:token()        -- a cached access token, fetched or refreshed as needed
--
-- The chain, first match wins (auth/sources.lua, CHAIN; only that file when opts.credentials names one):
--   1. GOOGLE_OAUTH_ACCESS_TOKEN        a raw token (never refreshed)
--   2. GOOGLE_APPLICATION_CREDENTIALS   a credentials JSON file (sources.lua, FILE_TYPES)
--   3. the gcloud file                  $CLOUDSDK_CONFIG or ~/.config/gcloud, application_default_credentials.json
--   4. the metadata server              GCE, GKE, Cloud Run ($GCE_METADATA_HOST overrides the host)
-- With opts.impersonate_service_account, what was found is the source of an impersonation (impersonate.lua).
-- Here: the provider (the chain walked once, the token cached, fetches single-flight, token
-- requests). Beside it: sources.lua (the chain and the credential types), one module per type
-- (token.lua, service_account.lua, authorized_user.lua, external_account.lua, impersonated.lua,
-- external_account_authorized_user.lua, impersonate.lua, metadata.lua), sts.lua (STS and IAM
-- Credentials), file.lua (key files),
-- shared.lua (the nginx shared_dict cache and lock), common.lua (what they share).
-- Secrets (private keys, refresh tokens, client secrets, access tokens) never appear in an error,
-- a log line or tostring().
local core = require "vertexops.core"
local hostmod = require "vertexops.host"
local common = require "vertexops.auth.common"
local metadata = require "vertexops.auth.metadata"
local shared = require "vertexops.auth.shared"
local sources = require "vertexops.auth.sources"
local impersonate = require "vertexops.auth.impersonate"
local deadlines = require "vertexops.deadline"

local error, getmetatable, rawget, setmetatable, tostring, type =
  error, getmetatable, rawget, setmetatable, tostring, type
local math_min, string_format = math.min, string.format
local _G = _G
local host_pcall = hostmod.pcall -- yields through on PUC 5.1 too
local scope_string = common.scope_string
local raise = require("vertexops.errors").raise
local REFRESH_EARLY, TOKEN_TIMEOUT, MAX_LIFETIME = common.REFRESH_EARLY, common.TOKEN_TIMEOUT, common.MAX_LIFETIME
local KINDS = sources.KINDS

local _M = {}

_M.CLOUD_PLATFORM, _M.REFRESH_EARLY = common.CLOUD_PLATFORM, REFRESH_EARLY
_M.LOCK_WAIT = shared.LOCK_WAIT -- seconds a worker waits for another's token fetch (shared_dict)

-- Provider ------------------------------------------------------------------------------------

---@class vertexops.auth.Provider a token provider: finds credentials once, caches the token
---@field opts vertexops.Options its own options (a checked copy)
---@field client? vertexops.Client the client that sends its token requests
---@field fetches integer token requests made so far
---@field fetching? {deadline: vertexops.Deadline} a token request in flight, and its own deadline
local Provider = {}
Provider.__index = Provider
_M.Provider = Provider

-- A caller's options are copied with raw reads and checked (vertexops.options.copy).
local options = require "vertexops.options"
local copy_options = options.copy

local raw_copy = require("vertexops.options").raw_copy

--- auth.provider(opts [, client]) -> a token provider that caches per client.
--- opts: credentials (file path), scopes, self_signed_jwt, clock, and the HTTP options
--- (ca_file, timeouts) used for token requests. client: the vertexops client that sends them.
---@param opts? vertexops.Options credentials must be a path here, not a provider
---@param client? vertexops.Client
---@return vertexops.auth.Provider
function _M.provider(opts, client)
  opts = copy_options(opts) or {}
  if opts.credentials ~= nil and type(opts.credentials) ~= "string" then
    raise("TypeError", "option 'credentials' of auth.provider must be a key file path")
  end
  scope_string(opts)
  return setmetatable({ opts = opts, client = client, fetches = 0 }, Provider)
end

function Provider:__tostring()
  local src = self.src
  return "vertexops token provider (" .. (src and src.describe or "not resolved yet") .. ")"
end

-- The principal of a source, by its kind (google-auth's get_cred_info: a service account's email,
-- the impersonated account, else a federated credential's audience); nil when it names none.
local function impersonated_email(url)
  return type(url) == "string" and url:match("([^/]+):generateAccessToken$") or nil
end
local PRINCIPAL = {
  service_account = function(d) return d.client_email end,
  authorized_user = function(d) return type(d.account) == "string" and d.account ~= "" and d.account or nil end,
  external_account = function(d)
    return impersonated_email(d.service_account_impersonation_url) or d.audience
  end,
  impersonated_service_account = function(d) return impersonated_email(d.service_account_impersonation_url) end,
  external_account_authorized_user = function(d) return d.audience end,
}

--- What a 401 or 403 of the service names about the credentials (as google-auth's get_cred_info and
--- google-api-core do): {credential_type, credential_source, principal?} of the source found; nil
--- before the chain was walked. Never a secret: a file's type and path, an email or an audience.
---@return {credential_type: string, credential_source: string, principal?: string}?
function Provider:credential_info()
  local src = self.src
  if not src then return nil end
  local principal
  if src.impersonate then
    principal = src.impersonate
  elseif src.data and PRINCIPAL[src.kind] then
    principal = PRINCIPAL[src.kind](src.data)
  elseif src.kind == "metadata" then
    principal = "default"
  end
  return { credential_type = src.kind, credential_source = src.describe,
           principal = type(principal) == "string" and principal or nil }
end

-- Finds the source of credentials (no network: the metadata server is only named, not asked).
---@return table source {kind = "env"|"service_account"|"authorized_user"|"metadata", describe = string, ...}
function Provider:source()
  if not self.src then
    local src = sources.find(self.opts)
    local email = self.opts.impersonate_service_account
    -- impersonate_service_account: the credentials found are the source of an impersonation
    if email then src = impersonate.source(src, email, self.opts.iam_endpoint) end
    self.src = src
  end
  return self.src
end

--- The quota project the credentials name (quota_project_id of a file), or nil.
---@return string?
function Provider:quota_project()
  return self:source().quota_project
end

--- true when a refused token can be replaced by a fresh one (not for a raw token).
---@return boolean
function Provider:refreshable()
  return KINDS[self:source().kind].refreshable
end

--- Forgets the cached token (after the service refused it).
function Provider:invalidate()
  local dict, key, refused = self.shared_dict, self.shared_key, self.cached
  self.cached, self.expires_at = nil, nil
  if dict and refused then shared.forget(dict, key, refused) end -- the shared token too
end

local clock_of = deadlines.clock_of

-- A token request in flight is recorded as provider.fetching = {deadline}: the fetch's own
-- deadline (TOKEN_TIMEOUT, or the call's deadline when sooner: a child of it). Requests that
-- run side by side (client:start, cancel_many, nginx request handlers) wait for it instead of
-- fetching again (Client:_token), but never past that deadline: nginx does not unwind a light
-- thread it kills (its nginx request ended), so the code that ends the fetch may never run; past
-- its deadline the fetch is no longer in flight and a waiter fetches on its own. A started
-- request that leads a fetch gives it up when closed (req:close()).
function Provider:_lead(deadline)
  -- request: the started request that leads the fetch (a waiter under client:start() steps it
  -- when its host stopped doing so: the token answer may have come with nobody to read it)
  local fetch = { deadline = deadline:sub(TOKEN_TIMEOUT), request = hostmod.request() }
  local function release()
    if self.fetching == fetch then self.fetching = nil end
  end
  fetch.release, fetch.holder = release, hostmod.hold(release)
  self.fetching = fetch
  return fetch
end

-- One token fetch of src, led by this request (Provider:_lead) and counted in fetches:
-- true, token, lifetime, or false, the error (never raises).
function Provider:_fetch_led(src, o, deadline)
  -- hooks of the call that needs the token: on_token (its source type, never the token)
  local ob = self.client and o and require("vertexops.hooks").observe(self.client, o)
  local fetch = self:_lead(deadline)
  local tst = ob and ob:token_start(src.kind == "env" and "env_token" or src.kind)
  -- (a pcall the fetch may yield through under client:start(), PUC Lua 5.1 included)
  local ok, token, lifetime = host_pcall(self._fetch, self, src, o, deadline)
  if tst then ob:token_end(tst, ok, token) end
  hostmod.unhold(fetch.holder)
  fetch.release()
  if ok then self.fetches = self.fetches + 1 end
  return ok, token, lifetime
end

-- expires_in is stored only when it is a finite number of seconds in 1..MAX_LIFETIME; otherwise
-- the token serves the call that fetched it and is not kept (with a warning).
function Provider:_storable(lifetime)
  if type(lifetime) == "number" and lifetime >= 1 and lifetime <= MAX_LIFETIME then return true end
  local shown = type(lifetime) == "number" and string_format("%.17g", lifetime) or tostring(lifetime):sub(1, 40)
  common.warning(string_format("vertexops: the token of %s came with expires_in %s, not a number of seconds in "
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
    raise("TypeError", "provider:token() needs a provider as its receiver (called with '.' instead of ':'?)")
  end
  return self:_token(copy_options(o))
end

-- Provider:token for options already checked (o), within deadline (on o's clock; nil: only the
-- token request's own limit): the token request gets what is left of the call's time.
---@param o? vertexops.Options
---@param deadline? vertexops.Deadline
---@return string token
function Provider:_token(o, deadline)
  o = o or self.opts
  deadline = deadline or deadlines.new(nil, clock_of(o))
  local src = self:source()
  self:_check_universe(o)
  local kind = KINDS[src.kind]
  if kind.cached == false then return kind.fetch(self, src, o, deadline) end
  local clock = clock_of(o)
  local cached, mode = self:_cached(src, o, clock)
  if cached then return cached end
  local dict_name = o.shared_dict or self.opts.shared_dict
  if dict_name then
    local token = self:_shared_token(src, o, deadline, dict_name)
    if token then return token end
  end
  local ok, token, lifetime = self:_fetch_led(src, o, deadline)
  if not ok then error(token, 0) end
  if self:_storable(lifetime) then self.cached, self.expires_at, self.cached_mode = token, clock() + lifetime, mode end
  return token
end

-- The cached token a call with options o may use (nil when there is none, or it is about to
-- expire), and the self_signed_jwt mode it was kept in: a service account's token kept in one
-- mode serves only calls of that mode.
function Provider:_cached(src, o, clock)
  local mode = src.kind == "service_account" and self:_self_signed(src, o)
  if self.cached and self.cached_mode == mode and clock() < self.expires_at - REFRESH_EARLY then
    return self.cached, mode
  end
  return nil, mode
end

-- The token Provider:_token(o) would give at once, from the cache (nil when it would fetch one,
-- or when another request is fetching: lua/vertexops/client.lua, Client:_direct). Raises as
-- _token does for credentials that cannot serve o.
function Provider:_cached_token(o)
  if self.fetching then return nil end
  local src = self:source()
  self:_check_universe(o)
  if KINDS[src.kind].cached == false then return nil end
  return (self:_cached(src, o, clock_of(o)))
end

-- The client's universe (o's universe_domain, else the provider's, else GOOGLE_CLOUD_UNIVERSE_DOMAIN,
-- else googleapis.com) must be the one the credentials belong to (a key file's universe_domain):
-- AuthError naming both otherwise, before any token request, in the words of Google's clients. A
-- token (option, GOOGLE_OAUTH_ACCESS_TOKEN) and the metadata server name no universe: not checked.
function Provider:_check_universe(o)
  local theirs = self.src.universe_domain
  if not theirs then return end
  local ours = self:_universe(o)
  if ours ~= theirs then
    raise("AuthError", string_format("the configured universe domain (%s) does not match the universe domain found in the "
      .. "credentials (%s, %s); the universe domain is the universe_domain option, else "
      .. "GOOGLE_CLOUD_UNIVERSE_DOMAIN, else %s", ours, theirs, self.src.describe, options.DEFAULTS.universe_domain),
      { universe_domain = ours, credentials_universe_domain = theirs })
  end
end

-- The universe a call with options o works in: o's universe_domain, else the provider's, else
-- GOOGLE_CLOUD_UNIVERSE_DOMAIN, else googleapis.com.
function Provider:_universe(o)
  return o and o.universe_domain or self.opts.universe_domain or options.env("universe_domain")
    or options.DEFAULTS.universe_domain
end

-- Whether a service account's JWT is its own token for a call with options o (no exchange; the
-- provider's options when o is nil): the option self_signed_jwt when given; else true when the call
-- goes to Google's own hosts (no endpoint: neither the option nor VERTEXOPS_ENDPOINT), as Google's
-- generated clients do; always when the key file belongs to another universe than googleapis.com,
-- as google-auth does. An endpoint (a proxy, a private endpoint, a test server) gets the exchange:
-- vertexops cannot know that what answers there takes a self-signed JWT.
function Provider:_self_signed(src, o)
  if src and src.universe_domain ~= nil and src.universe_domain ~= options.DEFAULTS.universe_domain then
    return true
  end
  local mode = self.opts.self_signed_jwt
  if mode ~= nil then return mode end
  local endpoint = o and o.endpoint
  if endpoint == nil then endpoint = self.opts.endpoint or options.env("endpoint") end
  return endpoint == nil
end

-- The shared_dict key of src's token for this provider's scopes, self_signed_jwt mode and the
-- universe of a call with options o (every credential's: a token, the metadata server's too).
function Provider:_shared_key(src, o)
  local identity, digest = KINDS[src.kind].identity(src)
  return shared.key(src.kind, identity, digest, scope_string(self.opts),
    src.kind == "service_account" and self:_self_signed(src, o) or false, src.universe_domain or self:_universe(o))
end

--- The shared_dict key of a provider's token (its lock: the key .. " lock") for calls with options o
--- (default: the provider's own); for specs.
function _M.shared_key(provider, o)
  return provider:_shared_key(provider:source(), o)
end

-- The token from, or fetched for, the nginx shared_dict dict_name (auth/shared.lua), kept in this
-- provider too; nil where there is none to share (the caller fetches on its own).
function Provider:_shared_token(src, o, deadline, dict_name)
  local key = self:_shared_key(src, o)
  local clock = clock_of(o)
  local token, exp, dict = shared.token(dict_name, key, {
    deadline = deadline, lock_wait = _M.LOCK_WAIT,
    fetch = function() return self:_fetch_led(src, o, deadline) end,
    storable = function(lifetime) return self:_storable(lifetime) end,
  })
  if exp then -- kept here until the dict's expiry, on this call's clock
    self.cached, self.expires_at = token, clock() + (exp - rawget(_G, "ngx").now())
    self.cached_mode = src.kind == "service_account" and self:_self_signed(src, o)
    self.shared_key, self.shared_dict = key, dict
  end
  return token
end

-- The vertexops client that sends token requests (made on first use for a stand-alone provider).
function Provider:_client()
  if not self.client then self.client = require("vertexops").client() end
  return self.client
end

-- One HTTP exchange to a token endpoint, retried like an idempotent call (429 and 5xx), within
-- TOKEN_TIMEOUT and the deadline of the call that needs the token (when given). When that
-- deadline is what ended it, the call's TimeoutError is raised (cause: the token request's failure).
-- detect: seconds for a lookup that is also a detection (one try, connect and request bounded).
-- Returns the decoded answer (and its headers when req.want_headers), or nil and the error; a
-- refusal with an OAuth error body raises AuthError.
function Provider:_request(req, where, call_opts, detect, deadline)
  local o = raw_copy(call_opts)
  o.credentials, o.scopes, o.self_signed_jwt, o.token = nil, nil, nil, nil
  if detect then o.connect_timeout, o.request_timeout, o.retry = detect, detect, false end
  local limit = deadlines.new(math_min(o.timeout or TOKEN_TIMEOUT, TOKEN_TIMEOUT), clock_of(o))
  local bound = deadline ~= nil and deadline:at() <= limit:at()
  if bound then limit = deadline end
  local ok, res, headers = self:_client():_run(o, req, { rules = "TOKEN", no_auth = true, deadline = limit })
  if ok then return res, headers end
  if bound and core.is(res, "TimeoutError") then
    raise("TimeoutError", string_format("%s did not give a token within the call's timeout (%s)",
      where, tostring(res)), { cause = res })
  end
  if core.is(res, "HttpError") and type(res.body) == "table" and type(res.body.error) == "string" then
    raise("AuthError", string_format("%s refused the credentials (%s): %s%s", where, self.src.describe, res.body.error,
      type(res.body.error_description) == "string" and ": " .. res.body.error_description or ""),
      { code = res.code, error = res.body.error, error_description = res.body.error_description })
  end
  return nil, res
end

-- The token of src and its lifetime, by its credential type (auth/sources.lua, KINDS).
function Provider:_fetch(src, o, deadline)
  local scope = scope_string(self.opts)
  return KINDS[src.kind].fetch(self, src, o, deadline, scope)
end

--- Forgets what was learned about metadata servers (for tests and long-lived hosts that move).
function _M.reset_metadata_cache()
  metadata.reset()
end

return _M
