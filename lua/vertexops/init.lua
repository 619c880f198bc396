-- vertexops: Vertex AI long-running operations from Lua, with the semantics of the Google Cloud
-- Workflows connector googleapis.aiplatform.v1beta1.projects.locations.operations.
--
-- The public surface: module functions on a default client, vertexops.client(opts), the error
-- helpers. Where things live (ARCHITECTURE.md has the whole map):
--   client.lua    a client and the life of one call (options -> token -> request -> exchange -> retry)
--   wait.lua      waiting for an operation: :wait long-polls, polling, cancel_and_wait
--   request.lua   the non-blocking API (client:start, poll) and cancel_many
--   fleet.lua     cancel_all: a listing streamed into a window of cancels, then the wait for them
--   options.lua   defaults, the environment, option copies     retry.lua   what is retried, backoff
--   host.lua      nginx / coroutine hosts, sleeping            auth/       the credentials chain
--   transport/    one exchange: cosocket, worker thread, libcurl (init.lua chooses)
--   operation.lua Operation checks, OperationError             errors.lua  raise, is_error
--   vertexops.core (csrc/)  the wire: requests, exchanges, classification, error objects
-- The contract users rely on: docs/contract.md.

-- Types (LuaCATS) shared by the modules of vertexops ------------------------------------------

---@class vertexops.RetryPolicy retry option: any subset; `false` instead of a table disables retries
---@field max_retries? integer retries after the first attempt, 0-1000 (default 5)
---@field initial_delay? number seconds before the first retry, >= 0 (default 1)
---@field multiplier? number growth of the delay per retry, 1-1000 (default 1.25)
---@field max_delay? number cap of one delay in seconds (default 60)

---@class vertexops.PollingPolicy polling option of wait: any subset
---@field initial_delay? number seconds before the second poll, > 0 (default 1)
---@field multiplier? number growth of the delay per poll, 1-1000 (default 1.25)
---@field max_delay? number cap of one delay in seconds (default 60)

---@class vertexops.Rate rate option: at most `requests` requests in any `per` seconds per project and location
---@field requests? integer requests at most in any `per` seconds, 1-1e6 (required)
---@field per? number the window in seconds, > 0, at most a day (default 60)
---@field shared_dict? string inside nginx: the lua_shared_dict where workers share the window
---@field redis? vertexops.RateRedis the Redis server where processes on many hosts share the window

---@class vertexops.RateRedis rate.redis: the Redis server sharing the window (docs/contract.md, "Pacing")
---@field host? string the Redis server's host name or address (default 127.0.0.1)
---@field port? integer its port, 1-65535 (default 6379)
---@field password? string sent with AUTH when given
---@field db? integer the database, SELECTed when not 0 (default 0)
---@field prefix? string the start of every key (default vertexops:rate:)
---@field timeout? number seconds for a connect or an exchange, > 0, at most 60 (default 0.5)
---@field participants? integer sharers expected before Redis counted them (default 1; in nginx its workers)

---@class vertexops.Hooks hooks option: functions called at points of a call (docs/contract.md, "Hooks"); a
---call's hooks run after its client's, both; a hook's error is caught and counted (client:stats().hook_errors)
---@field on_call? fun(info: table) at the start and end of a logical call
---@field on_attempt? fun(info: table) before and after each HTTP exchange (may add request headers at its start)
---@field on_retry? fun(info: table) before each retry's delay: why and how long
---@field on_token? fun(info: table) at the start and end of a token fetch (never the token)
---@field on_poll? fun(info: table) after each round of a wait

---@class vertexops.Options options of a client or of one call (docs/contract.md, "Options"); an
---unknown key raises ValueError. The fields are the schema's (csrc/options.c, core.OPTIONS:
---spec/03_options_schema_spec.lua checks)
---@field endpoint? string URL template with {region} (env VERTEXOPS_ENDPOINT)
---@field universe_domain? string domain of Google's hosts, the credentials' universe (env GOOGLE_CLOUD_UNIVERSE_DOMAIN)
---@field api_key? string express mode: sent as x-goog-api-key, no OAuth token (not with token or credentials)
---@field token? string|fun():string access token, or a function returning one
---@field credentials? string|vertexops.auth.Provider key-file path, or a provider from vertexops.auth.provider
---@field scopes? string|string[] OAuth scopes (default cloud-platform)
---@field self_signed_jwt? boolean service account: send a self-signed JWT, no token exchange
---@field metadata_server? boolean false: the credential search skips the metadata server (so does env NO_GCE_CHECK=True)
---@field impersonate_service_account? string the credentials found impersonate this service account (generateAccessToken)
---@field iam_endpoint? string IAM Credentials' origin for impersonate_service_account
---@field timeout? number end-to-end seconds of the call, > 0, at most a year (default 1800)
---@field request_timeout? number seconds of one HTTP exchange (default 60)
---@field connect_timeout? number seconds to connect (default 10)
---@field retry? vertexops.RetryPolicy|false any subset of the policy, or false: no retry
---@field polling? vertexops.PollingPolicy any subset of the policy
---@field strategy? "auto"|"server"|"poll" how wait polls (default "auto")
---@field progress? fun(op: vertexops.Operation, info: vertexops.WaitInfo) called after every answer while waiting
---@field ca_file? string PEM bundle to trust instead of the system store (env VERTEXOPS_CA_FILE)
---@field user_project? string sent as x-goog-user-project (env GOOGLE_CLOUD_QUOTA_PROJECT)
---@field sleep? fun(seconds: number) how to wait (default: nanosleep, or ngx.sleep inside nginx)
---@field clock? fun():number a monotonic clock in seconds
---@field filter? string list: a filter such as "done=false"
---@field page_size? integer list: operations per page, 1-1e9
---@field page_token? string list: the page to start from
---@field concurrency? integer cancel_many: cancels in flight at once (default 100)
---@field max_in_flight? integer cancel_all: requests in flight at once, cancels and the page fetch (default 100)
---@field wait? boolean cancel_all: then wait for the cancelled operations (default false)
---@field wait_by? "auto"|"list"|"get" cancel_all with wait: how it waits (default "auto")
---@field dry_run? boolean cancel_all: list what would be cancelled, send no cancel (default false)
---@field kind? string list, operations, cancel_all: what to list, "operations" or a collection of jobs such as "customJobs"
---@field api_version? "v1beta1"|"v1" REST version of every URL (default "v1beta1")
---@field thread_pool? string nginx thread pool of transport "thread" (default "vertexops")
---@field thread_pool_size? integer transport "thread": exchanges at once per nginx worker (default 100; the rest queue)
---@field shared_dict? string inside nginx: the lua_shared_dict where workers share access tokens
---@field transport? "curl"|"cosocket"|"thread" how exchanges go (default "cosocket" in nginx phases with cosockets, else "curl")
---@field pool_size? integer cosocket: idle connections kept per pool (default 30)
---@field pool_backlog? integer cosocket: connects queued past pool_size (default none)
---@field keepalive_timeout? number cosocket: idle seconds of a pooled connection (default 60)
---@field proxy? string HTTPS proxy http://[user:password@]host:port, CONNECT ("": none; env https_proxy, HTTPS_PROXY)
---@field no_proxy? string hosts reached without the proxy: exact, .suffix, *, comma-separated (env no_proxy, NO_PROXY)
---@field client_cert? string PEM file of the client certificate (mTLS); read once per client
---@field client_key? string PEM file of the client certificate's private key (default: the client_cert file)
---@field mtls_endpoint? "auto"|"never"|"always" Google's mTLS hosts (env GOOGLE_API_USE_MTLS_ENDPOINT)
---@field rate? vertexops.Rate|false at most rate.requests requests in any rate.per seconds per project and location
---@field hooks? vertexops.Hooks functions called at points of a call; a call's run after its client's
---@field traceparent? string W3C trace context: sent as traceparent on every attempt
---@field tracestate? string W3C trace context: sent as tracestate on every attempt (with traceparent)
---@field log? fun(level: string, line: string) gets the log lines (env VERTEXOPS_LOG: a level, logging to stderr)

---@class vertexops.Error an error object: raised with error(err, 0), or returned as `false, err` /
---`nil, err`; tostring(err) is "Tag: message"
---@field tags string[] most specific first, e.g. {"ConnectionFailedError", "ConnectionError"}
---@field message string never contains a token or a credential
---@field code? integer HTTP status (HttpError; ResponseTypeError when one was received; AuthError from a token endpoint)
---@field status? string Google's status name, e.g. "NOT_FOUND" (HttpError)
---@field body? table|string decoded JSON or the raw body (HttpError); the first 4 KiB (ResponseTypeError)
---@field headers? table<string, string> response headers, lower-case names (HttpError)
---@field details? table[] the body's error.details, decoded (HttpError)
---@field reason? string google.rpc.ErrorInfo reason (HttpError)
---@field domain? string google.rpc.ErrorInfo domain (HttpError)
---@field metadata? table<string, string> google.rpc.ErrorInfo metadata (HttpError)
---@field operation? vertexops.Operation the final Operation (OperationError), the last one seen (TimeoutError of wait)
---@field elapsed? number seconds waited (TimeoutError of wait)
---@field requests? integer requests made (TimeoutError of wait)
---@field cause? vertexops.Error the earlier failure (TimeoutError, AuthError)
---@field error? string OAuth error of a token endpoint (AuthError)
---@field error_description? string its description (AuthError)

---@class vertexops.Status google.rpc.Status of a finished operation
---@field code? integer google.rpc.Code (1: CANCELLED)
---@field message? string
---@field details? table[]

---@class vertexops.Operation google.longrunning.Operation as decoded and checked (null fields absent)
---@field name? string
---@field done? boolean
---@field error? vertexops.Status
---@field metadata? table
---@field response? table

---@class vertexops.Page one page of list
---@field operations vertexops.Operation[]
---@field next_page_token? string nil on the last page

---@class vertexops.WaitInfo what progress receives besides the operation
---@field elapsed number
---@field requests integer
---@field strategy string

---@class vertexops.CancelResult one result of cancel_many: {ok = true} or {err = e}
---@field ok? true
---@field err? vertexops.Error
local core = require "vertexops.core"
local errors = require "vertexops.errors"
local auth = require "vertexops.auth"
local options = require "vertexops.options"
local retry = require "vertexops.retry"
local host = require "vertexops.host"
local Client = require "vertexops.client"
require "vertexops.wait"
require "vertexops.fleet"
local Request = require "vertexops.request"

local error, getmetatable, ipairs, pcall = error, getmetatable, ipairs, pcall

---@class vertexops
---@field _VERSION string
---@field core table the C module vertexops.core
---@field auth table vertexops.auth
---@field Client vertexops.Client the client class
---@field Request vertexops.Request the class of started requests
---@field DEFAULTS table<string, number|string|boolean> every option's plain default (timeout, request_timeout, ...)
---@field RETRY vertexops.RetryPolicy the default retry policy
---@field POLLING vertexops.PollingPolicy the default polling policy
---@field backoff fun(policy: vertexops.RetryPolicy, n: integer): number delay before attempt n + 1
---@field retry_after fun(err: vertexops.Error, now?: number): number? seconds a Retry-After header asks
---@field sleep fun(seconds: number)
---@field clock fun(): number
---@field is fun(err: any, tag: string): boolean true when err carries tag
---@field error_mt table the metatable of every error object
---@field cancel fun(name: string, region?: string, opts?: vertexops.Options): true
---@field get fun(name: string, region?: string, opts?: vertexops.Options): vertexops.Operation
---@field delete fun(name: string, region?: string, opts?: vertexops.Options): true
---@field list fun(parent: string, region?: string, opts?: vertexops.Options): vertexops.Page
---@field operations fun(parent: string, region?: string, opts?: vertexops.Options): fun(): vertexops.Operation?
---@field wait_once fun(name: string, region?: string, seconds?: number, opts?: vertexops.Options): vertexops.Operation
---@field wait fun(name: string, region?: string, opts?: vertexops.Options): vertexops.Operation
---@field cancel_and_wait fun(name: string, region?: string, opts?: vertexops.Options): vertexops.Operation, boolean
---@field start fun(method: string, ...): vertexops.Request
---@field cancel_many fun(names: string[], region?: string, opts?: vertexops.Options): vertexops.CancelResult[]
local _M = { _VERSION = core.version, core = core, auth = auth, Client = Client, Request = Request }

_M.DEFAULTS, _M.RETRY, _M.POLLING = options.DEFAULTS, options.RETRY, options.POLLING
_M.backoff, _M.retry_after = retry.backoff, retry.retry_after
_M.sleep, _M.clock = host.sleep, core.clock
_M.is, _M.error_mt = core.is, core.error_mt

local raise = errors.raise
_M.raise = raise

--- vertexops.client(opts) -> a client that keeps its connections alive between calls.
---@param opts? table options (docs/contract.md)
---@return vertexops.Client
function _M.client(opts) return Client.new(opts) end

-- The public methods check their receiver: client.get(name) (a dot for a colon) or a closed client
-- raise a tagged error rather than whatever Lua says about indexing a string.
for _, m in ipairs { "cancel", "get", "delete", "list", "operations", "wait_once", "wait", "cancel_and_wait",
                     "start", "cancel_many", "cancel_all", "poll", "stats" } do
  local f = Client[m]
  Client[m] = function(self, ...)
    if getmetatable(self) ~= Client then
      raise("TypeError", "client:" .. m .. "() needs a client as its receiver (called with '.' instead of ':'?)")
    end
    if self.closed and m ~= "stats" then raise("ValueError", "client:" .. m .. "() on a closed client") end
    return f(self, ...)
  end
end
for _, m in ipairs { "poll", "result", "wait" } do
  local f = Request[m]
  Request[m] = function(self, ...)
    if getmetatable(self) ~= Request then
      raise("TypeError", "request:" .. m .. "() needs a request as its receiver (called with '.' instead of ':'?)")
    end
    return f(self, ...)
  end
end

-- Module-level functions use one default client, created on first use. -----------------------

local default
--- The client behind the module functions, made on first use (no options: the environment and
--- the credentials chain decide).
---@return vertexops.Client
local function default_client()
  if not default then default = _M.client() end
  return default
end
_M.default_client = default_client

for _, m in ipairs { "cancel", "get", "delete", "list", "operations", "wait_once", "wait", "cancel_and_wait",
                     "start", "cancel_many", "cancel_all" } do
  _M[m] = function(...) return Client[m](default_client(), ...) end
end

--- vertexops.is_error(v): true when v is a vertexops error object.
_M.is_error = errors.is_error

-- vertexops.core.cancel / get / delete / list come here (csrc/module.c): one validated attempt --
-- no retries -- through a client of their own, so the C module's own calls take the same path as
-- everyone's. cancel and delete return true, get the Operation, list the decoded page as sent.
---@param call "cancel"|"get"|"delete"|"list"
---@param name string
---@param region? string
---@param opts? vertexops.Options
---@return true|vertexops.Operation|table
function _M._core_call(call, name, region, opts)
  local o = options.copy(opts) or {}
  o.retry = false
  local c = Client.new(o)
  local ok, res = pcall(function()
    if call == "get" then return c:get(name, region) end
    local body = c:_call(call, name, region)
    if call == "list" then return body end
    return true
  end)
  c:close()
  if not ok then error(res, 0) end
  return res
end

return _M
