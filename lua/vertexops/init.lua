-- vertexops: Vertex AI long-running operations from Lua, with the semantics of the Google Cloud
-- Workflows connector googleapis.aiplatform.v1beta1.projects.locations.operations.
--
-- vertexops.core (C) validates requests and performs one HTTP exchange at a time; this module
-- adds the policy: options, retries and deadlines, clients and their connection reuse.
local core = require "vertexops.core"
local auth = require "vertexops.auth"

local error, getmetatable, ipairs, next, pairs, pcall, rawget, setmetatable, type, tonumber, tostring =
  error, getmetatable, ipairs, next, pairs, pcall, rawget, setmetatable, type, tonumber, tostring
local _G = _G
local math_min, math_max, math_floor = math.min, math.max, math.floor
local coroutine_create, coroutine_resume, coroutine_running, coroutine_status, coroutine_yield =
  coroutine.create, coroutine.resume, coroutine.running, coroutine.status, coroutine.yield
local coroutine_isyieldable = coroutine.isyieldable
local select, unpack = select, table.unpack or unpack -- luacheck: ignore 143
local os_getenv, os_time = os.getenv, os.time
local string_format = string.format

local _M = { _VERSION = core.version, core = core, auth = auth }

-- Defaults of the contract (../shared/reference/api-contract.md).
local DEFAULTS = { timeout = 1800, request_timeout = 60, connect_timeout = 10 }
local RETRY = { max_retries = 5, initial_delay = 1, multiplier = 1.25, max_delay = 60 }
local POLLING = { initial_delay = 1, multiplier = 1.25, max_delay = 60 }
_M.DEFAULTS, _M.RETRY, _M.POLLING = DEFAULTS, RETRY, POLLING

-- What each kind of call retries (Workflows: GET idempotent, everything else not).
local RETRY_ON = {
  GET = { codes = { [429] = true, [502] = true, [503] = true, [504] = true },
          tags = { "ConnectionError", "ConnectionFailedError", "TimeoutError" } },
  POST = { codes = { [429] = true, [503] = true }, tags = { "ConnectionFailedError" } },
}
RETRY_ON.DELETE = RETRY_ON.POST
-- Token endpoints: like GET, and every 5xx.
RETRY_ON.TOKEN = { codes = RETRY_ON.GET.codes, tags = RETRY_ON.GET.tags, all5xx = true }

local is = core.is
_M.is = is
_M.error_mt = core.error_mt

local function raise(tag, message, fields)
  error(core.error(type(tag) == "table" and tag or { tag }, message, fields), 0)
end
_M.raise = raise

-- Options ------------------------------------------------------------------------------------

-- A caller's options are copied with raw reads and checked (vertexops.auth.copy_options): what is
-- validated is what is used, whatever metatable the caller's table has.
local copy_options = auth.copy_options

-- A client's options merged with a call's (the call's win); retry and polling tables merge by key.
local function merge(base, over)
  if over == nil then return base end
  over = copy_options(over)
  local o = {}
  for k, v in next, base do o[k] = v end
  for k, v in next, over do
    if (k == "retry" or k == "polling") and type(v) == "table" and type(base[k]) == "table" then
      local m = {}
      for kk, vv in next, base[k] do m[kk] = vv end
      for kk, vv in next, v do m[kk] = vv end
      o[k] = m
    else
      o[k] = v
    end
  end
  return o
end

-- The retry or polling policy of options o, with the defaults filled in (computed once per table).
local policies = setmetatable({}, { __mode = "k" })
local function policy(o, key, defaults)
  local p = o[key]
  if p == false then return false end
  p = p or defaults
  local memo = policies[p]
  if not memo then
    memo = {
      max_retries = p.max_retries or defaults.max_retries,
      initial_delay = p.initial_delay or defaults.initial_delay,
      multiplier = p.multiplier or defaults.multiplier,
      max_delay = p.max_delay or defaults.max_delay,
    }
    policies[p] = memo
  end
  return memo
end

-- The delay before attempt n + 1 (n >= 1): initial * multiplier^(n-1), capped.
local function backoff(p, n)
  return math_min(p.initial_delay * p.multiplier ^ (n - 1), p.max_delay)
end
_M.backoff = backoff

-- Retry-After: delta seconds or an HTTP date. Returns seconds, or nil when absent or unreadable.
local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6,
                 Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12 }
local function days_from_civil(y, m, d) -- Howard Hinnant's algorithm, proleptic Gregorian
  y = m <= 2 and y - 1 or y
  local era = math_floor(y / 400)
  local yoe = y - era * 400
  local doy = math_floor((153 * (m + (m > 2 and -3 or 9)) + 2) / 5) + d - 1
  local doe = yoe * 365 + math_floor(yoe / 4) - math_floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end
local function retry_after(err, now)
  local h = err.headers and err.headers["retry-after"]
  if type(h) ~= "string" then return nil end
  local secs = h:match("^%s*(%d+)%s*$")
  if secs then return tonumber(secs) end
  local d, mon, y, hh, mm, ss = h:match("^%a+, (%d+) (%a+) (%d+) (%d+):(%d+):(%d+) GMT$")
  if not (d and MONTHS[mon]) then return nil end
  local t = days_from_civil(tonumber(y), MONTHS[mon], tonumber(d)) * 86400
    + tonumber(hh) * 3600 + tonumber(mm) * 60 + tonumber(ss)
  return math_max(0, t - (now or os_time()))
end
_M.retry_after = retry_after

local function retryable(method, err)
  local rule = RETRY_ON[method]
  if err.code and is(err, "HttpError") then
    return rule.codes[err.code] == true or (rule.all5xx == true and err.code >= 500 and err.code <= 599)
  end
  for i = 1, #rule.tags do
    if is(err, rule.tags[i]) then return true end
  end
  return false
end

-- Hosts --------------------------------------------------------------------------------------
-- Sleeping without owning the host: inside OpenResty's yieldable phases ngx.sleep, else nanosleep.
-- HTTP exchanges: inside those phases on an nginx worker thread (ngx.run_worker_thread), so the
-- event loop never blocks; under client:start() on the client's libcurl multi handle; else blocking.
local YIELDABLE = { rewrite = true, access = true, content = true, timer = true }

local function nginx_phase()
  local ngx = rawget(_G, "ngx")
  return ngx and ngx.get_phase and YIELDABLE[ngx.get_phase()] and ngx or nil
end

local function default_sleep(s)
  local ngx = nginx_phase()
  if ngx then return ngx.sleep(s) end
  return core.sleep(s)
end
_M.sleep, _M.clock = default_sleep, core.clock

-- One exchange on a worker thread of the thread pool opts.thread_pool (default "vertexops").
-- The thread's Lua state keeps its own handle (lua/vertexops/thread.lua), so connections are reused.
local function thread_exchange(ngx, o, req, token)
  local ok, a, b, c = ngx.run_worker_thread(o.thread_pool or "vertexops", "vertexops.thread", "exchange", req, token)
  if not ok then
    return false, core.error({ "ConnectionError" }, "nginx worker thread failed: " .. tostring(a)
      .. " (is there a 'thread_pool " .. (o.thread_pool or "vertexops") .. "' directive?)")
  end
  if not a and type(b) == "table" then setmetatable(b, core.error_mt) end -- tables cross without metatables
  return a, b, c
end

-- Coroutines run by client:start(), and their requests.
local drivers = setmetatable({}, { __mode = "k" })

-- Waits s seconds: under client:start() by handing control back to the caller of poll().
local function sleep_for(o, s)
  local co = coroutine_running()
  if co and drivers[co] then return coroutine_yield("sleep", s, o.clock or core.clock, o.sleep or default_sleep) end
  return (o.sleep or default_sleep)(s)
end

-- Tokens -------------------------------------------------------------------------------------
-- opts.token (a string, or a function for hosts with their own token source) wins; otherwise a
-- vertexops.auth provider walks the Application Default Credentials chain and caches the token.

local AUTH_KEYS = { "credentials", "scopes", "self_signed_jwt" }

-- Clients ------------------------------------------------------------------------------------

local Client = {}
Client.__index = Client
_M.Client = Client

--- vertexops.client(opts) -> a client that keeps its connections alive between calls.
function _M.client(opts)
  local o = copy_options(opts) or {}
  -- one connection cache for the client's blocking and non-blocking handles alike
  local share, handle = core.share(), core.handle()
  handle:share(share)
  return setmetatable({ opts = o, handle = handle, share = share }, Client)
end

-- The token provider for options o: the client's own (cached), o.credentials when it is a provider
-- object, or a fresh one when the call names other credentials. nil when o.token is given.
function Client:_provider(o)
  if o.token ~= nil then return nil end
  if type(o.credentials) == "table" then return o.credentials end
  local own = o == self.opts
  if not own then
    own = true
    for i = 1, #AUTH_KEYS do
      if o[AUTH_KEYS[i]] ~= self.opts[AUTH_KEYS[i]] then own = false end
    end
  end
  if not own then return auth.provider(o, self) end
  if not self.auth then self.auth = auth.provider(self.opts, self) end
  return self.auth
end

-- The bearer token for a request made with options o, by deadline (absolute, on o's clock).
function Client:_token(o, deadline)
  local t = o.token
  if type(t) == "function" then
    t = t()
    if type(t) ~= "string" or t == "" then raise("AuthError", "the token function returned no token") end
    return t
  end
  if t then return t end
  local provider = self:_provider(o)
  -- Another request of this client, running side by side, is fetching a token: wait for it (only
  -- possible where waiting yields: under client:start() or in an nginx request handler).
  local co = coroutine_running()
  local clock = o.clock or core.clock
  while provider.fetching and ((co and drivers[co]) or nginx_phase()) do
    local remaining = deadline - clock()
    if remaining <= 0 then
      raise("TimeoutError", "the call's timeout passed while another request was fetching a token")
    end
    sleep_for(o, math_min(0.005, remaining))
  end
  return provider:_token(o, deadline)
end

-- A client's options merged with a call's, plus the quota project of the credentials when
-- neither opts.user_project nor GOOGLE_CLOUD_QUOTA_PROJECT names one.
-- Without call options the result is the same table every time (self.base): requests built from it
-- are cached (Client:_build).
function Client:_options(opts)
  if opts == nil and self.base then return self.base end
  local o = merge(self.opts, opts)
  if o.user_project == nil and o.token == nil then
    local env = os_getenv("GOOGLE_CLOUD_QUOTA_PROJECT")
    if not env or env == "" then
      local q = self:_provider(o):quota_project()
      if q then
        if o == self.opts then o = merge(o, {}) end
        o.user_project = q
      end
    end
  end
  if opts == nil then self.base = o end
  return o
end

-- Requests built with the client's own options (no call options) are kept, up to BUILT_MAX: a wait
-- or a loop of calls on one operation builds its request once. (The environment is read when a
-- request is first built.) They are kept by call, name and region as they are (a nested table,
-- no key made by joining strings), so no two different argument lists can share an entry.
local BUILT_MAX = 256
local NO_REGION = {}
function Client:_build(call, name, region, o, extra)
  if o ~= self.base or extra ~= nil or type(name) ~= "string" or (region ~= nil and type(region) ~= "string") then
    return core.build(call, name, region, o, extra)
  end
  local built = self.built
  local by_name = built and built[call]
  local by_region = by_name and by_name[name]
  local req = by_region and by_region[region == nil and NO_REGION or region]
  if req then return req end
  req = core.build(call, name, region, o)
  if not built or self.nbuilt >= BUILT_MAX then
    built, self.nbuilt = {}, 0
    self.built = built
  end
  by_name = built[call] or {}
  built[call] = by_name
  by_region = by_name[name] or {}
  by_name[name] = by_region
  by_region[region == nil and NO_REGION or region], self.nbuilt = req, self.nbuilt + 1
  return req
end

function Client:close()
  if self.closed then return end
  self.closed = true
  if self.multi then self.multi:close() end
  self.handle:close()
  for _, h in ipairs(self.handles or {}) do h:close() end
  self.share:close()
end
Client.__close = Client.close

--- Counters summed over the client's libcurl handles (blocking and non-blocking): {requests = n, connects = n}.
function Client:stats()
  local st = self.handle:stats()
  for _, h in ipairs(self.handles or {}) do
    local s = h:stats()
    st.requests, st.connects = st.requests + s.requests, st.connects + s.connects
  end
  return st
end

-- One HTTP exchange, by the means the host allows (see Hosts above). The token goes beside the
-- request, never into it: built requests are cached and shared (Client:_build).
function Client:_exchange(o, req, token)
  local co = coroutine_running()
  local driver = co and drivers[co]
  if driver then return driver:_exchange(self, req, token) end
  local ngx = nginx_phase()
  if ngx and ngx.run_worker_thread then return thread_exchange(ngx, o, req, token) end
  return self.handle:call(req, token)
end


-- Runs one request with the retry policy. Returns true, decoded body or false, err (never raises
-- for a failure of the call). ctx (optional): deadline (absolute, on o's clock), rules ("GET" for
-- the idempotent rules whatever the method), request_timeout (override), requests (a counter).
function Client:_run(o, req, ctx)
  local clock = o.clock or core.clock
  local timeout = o.timeout or DEFAULTS.timeout
  local deadline = ctx and ctx.deadline or clock() + timeout
  local rules = ctx and ctx.rules or req.method
  local retry = policy(o, "retry", RETRY)
  local request_timeout = ctx and ctx.request_timeout or o.request_timeout or DEFAULTS.request_timeout
  local connect_timeout = o.connect_timeout or DEFAULTS.connect_timeout
  local attempt, last, refreshed = 0, nil, false
  local no_auth = ctx and ctx.no_auth
  while true do
    -- the token first: getting it may wait (a fetch of its own, or another request's)
    local token = not no_auth and self:_token(o, deadline) or nil
    local remaining = deadline - clock()
    if remaining <= 0 then
      return false, core.error({ "TimeoutError" }, string_format("%s did not finish within the %g s timeout%s",
        req.call, timeout, last and " (last failure: " .. tostring(last) .. ")" or ""), { cause = last })
    end
    -- req may be shared by requests running side by side (Client:_build): fill it just before use
    req.timeout = math_min(request_timeout, remaining)
    req.connect_timeout, req.ca_file = connect_timeout, o.ca_file
    if ctx then ctx.requests = (ctx.requests or 0) + 1 end
    local ok, res, headers = self:_exchange(o, req, token)
    if ok then return true, res, headers end
    local provider = not no_auth and not refreshed and res.code == 401 and self:_provider(o)
    if provider and provider:refreshable() then
      -- The service refused the token: fetch a fresh one and try once more, at once.
      refreshed = true
      provider:invalidate()
    else
      attempt = attempt + 1
      if not retry or attempt > retry.max_retries or not retryable(rules, res) then return false, res end
      last = res
      local delay = retry_after(res) or backoff(retry, attempt)
      if clock() + delay >= deadline then
        return false, core.error({ "TimeoutError" }, string_format("%s did not finish within the %g s timeout: "
          .. "the next retry would start after it (last failure: %s)", req.call, timeout, tostring(res)),
          { cause = res })
      end
      sleep_for(o, delay)
    end
  end
end

-- Operations -----------------------------------------------------------------------------------
-- An Operation as the service sends it (google.longrunning.Operation in proto3 JSON). JSON null is
-- what proto3 JSON writes for a field at its default, so a null field is removed (absent): a null
-- error is no error, a null done is false (not done). Any other value of the wrong type raises
-- ResponseTypeError naming the field, before the library or its caller reads it.
local json_null = require("cjson.safe").null
local OPERATION_FIELDS = { name = "string", done = "boolean", error = "table", metadata = "table",
                           response = "table" }
local JSON_TYPE = { string = "a string", boolean = "a boolean", table = "an object", number = "a number" }

local function bad_field(what, field, v, want)
  raise("ResponseTypeError", string_format("%s has a '%s' field that is not %s (got %s)", what, field,
    JSON_TYPE[want], v == json_null and "null" or type(v)))
end

local function check_operation(op, what)
  if type(op) ~= "table" then
    raise("ResponseTypeError", string_format("%s is not an object (got %s)", what,
      op == json_null and "null" or type(op)))
  end
  for field, want in next, OPERATION_FIELDS do
    local v = rawget(op, field)
    if v == json_null then
      op[field] = nil
    elseif v ~= nil and type(v) ~= want then
      bad_field(what, field, v, want)
    end
  end
  local e = op.error
  if e then -- a google.rpc.Status: code (int32; proto3 JSON may send it as a string), message
    local code = rawget(e, "code")
    if code == json_null then
      code = nil
    elseif type(code) == "string" and code:match("^%-?%d+$") then
      code = tonumber(code)
    end
    if code ~= nil and (type(code) ~= "number" or code ~= math_floor(code)) then
      bad_field(what .. " error", "code", code, "number")
    end
    e.code = code
    local message = rawget(e, "message")
    if message == json_null then
      e.message = nil
    elseif message ~= nil and type(message) ~= "string" then
      bad_field(what .. " error", "message", message, "string")
    end
  end
  return op
end

local function operation_what(name)
  return "operation" .. (type(name) == "string" and " " .. name or "")
end

-- Runs one REST call with the retry policy and the deadline; raises on failure.
-- extra: the :wait timeout in seconds, for call "wait".
function Client:_call(call, name, region, opts, extra)
  local o = self:_options(opts)
  local ok, res = self:_run(o, self:_build(call, name, region, o, extra))
  if not ok then error(res, 0) end
  return res
end

function Client:cancel(name, region, opts)
  self:_call("cancel", name, region, opts)
  return true
end

function Client:get(name, region, opts)
  return check_operation(self:_call("get", name, region, opts), operation_what(name))
end

function Client:delete(name, region, opts)
  self:_call("delete", name, region, opts)
  return true
end

-- One page of a list with options o (and ctx for Client:_run): {operations = {...}, next_page_token = s or nil}.
function Client:_list(parent, region, o, ctx)
  local ok, body = self:_run(o, self:_build("list", parent, region, o), ctx)
  if not ok then error(body, 0) end
  local ops = body.operations
  if ops == json_null then ops = nil end
  if ops ~= nil then
    if type(ops) ~= "table" then
      raise("ResponseTypeError", "list response has an 'operations' field that is not a list")
    end
    local n = #ops
    for k in next, ops do
      if type(k) ~= "number" or k < 1 or k > n or k ~= math_floor(k) then
        raise("ResponseTypeError", "list response has an 'operations' field that is not a list")
      end
    end
    for i = 1, n do check_operation(ops[i], string_format("list response operations[%d]", i)) end
  end
  local token = body.nextPageToken
  if token ~= nil and token ~= json_null and type(token) ~= "string" then
    raise("ResponseTypeError", "list response has a 'nextPageToken' field that is not a string")
  end
  return { operations = ops or {}, next_page_token = (type(token) == "string" and token ~= "") and token or nil }
end

function Client:list(parent, region, opts)
  return self:_list(parent, region, self:_options(opts))
end

--- for op in client:operations(parent, region, opts): every operation, page by page (lazily).
--- One deadline (opts.timeout from the first page on) bounds the whole iteration; a page token the
--- server already gave in this iteration raises ResponseTypeError (the listing would never end).
function Client:operations(parent, region, opts)
  local page_opts = merge({}, opts) -- a table of our own: the page token goes in it
  local seen = {}
  if page_opts.page_token then seen[page_opts.page_token] = true end
  local page, i, done, ctx = nil, 0, false, nil
  return function()
    while true do
      if page and i < #page.operations then
        i = i + 1
        return page.operations[i]
      end
      if done then return nil end
      local o = self:_options(page_opts)
      if not ctx then ctx = { deadline = (o.clock or core.clock)() + (o.timeout or DEFAULTS.timeout) } end
      done = true -- until this page says there is another: a failure ends the iteration
      page, i = nil, 0
      page = self:_list(parent, region, o, ctx)
      local token = page.next_page_token
      if token then
        if seen[token] then
          page = nil
          local shown = token:sub(1, 200):gsub("%c", "?") .. (#token > 200 and "..." or "")
          raise("ResponseTypeError", string_format("list response repeated the page token '%s' of an earlier "
            .. "page: the listing would never end", shown))
        end
        seen[token] = true
        page_opts.page_token = token
        done = false
      end
    end
  end
end

--- One server-side :wait request (best effort: it may return a not-done operation early).
function Client:wait_once(name, region, seconds, opts)
  return check_operation(self:_call("wait", name, region, opts, seconds), operation_what(name))
end

-- Waiting -----------------------------------------------------------------------------------

local SERVER_WAIT_MAX = 50 -- seconds asked of one :wait (the service's own limit is 60)

local function describe_error(e)
  return string_format("code %s: %s", tostring(e.code), tostring(e.message or ""))
end

-- Polls until the operation is done or the deadline passes; returns the final operation, whatever
-- its outcome. start: the clock reading the deadline counts from.
function Client:_wait(o, name, region, start)
  local strategy = o.strategy or "auto"
  local clock = o.clock or core.clock
  local timeout = o.timeout or DEFAULTS.timeout
  local deadline = start + timeout
  local poll = policy(o, "polling", POLLING)
  local get_req = self:_build("get", name, region, o)
  local ctx = { deadline = deadline, rules = "GET", requests = 0 }
  local progress = o.progress
  local use_server = strategy ~= "poll"
  local delay = poll.initial_delay
  local op, last_err
  while true do
    local remaining = deadline - clock()
    local ok, res, asked, t0
    if use_server and remaining > 2 then
      asked = math_min(SERVER_WAIT_MAX, remaining - 1)
      ctx.request_timeout = asked + 10
      t0 = clock()
      ok, res = self:_run(o, core.build("wait", name, region, o, asked), ctx)
      ctx.request_timeout = nil
      if not ok and strategy == "auto" and is(res, "HttpError") and (res.code == 501 or res.code == 404) then
        use_server, asked = false, nil -- no :wait here: poll from now on, starting at once
        ok, res = self:_run(o, get_req, ctx)
      end
    else
      ok, res = self:_run(o, get_req, ctx)
    end
    local now = clock()
    if ok then
      op = check_operation(res, operation_what(name))
      if progress then progress(op, { elapsed = now - start, requests = ctx.requests, strategy = strategy }) end
      if op.done then return op, ctx end
    elseif retryable("GET", res) then -- the GET rules include TimeoutError
      last_err = res -- transient: keep waiting while time remains
    else
      error(res, 0)
    end
    remaining = deadline - now
    if remaining <= 0 then
      raise("TimeoutError", string_format("operation %s was not done after %.1f s (%d requests)%s", name,
        now - start, ctx.requests, last_err and not ok and "; last failure: " .. tostring(last_err) or ""),
        { operation = op, elapsed = now - start, requests = ctx.requests, cause = not ok and last_err or nil })
    end
    -- A :wait that held for (nearly) what was asked goes again at once; anything else -- a poll, a
    -- :wait that answered early, a failure -- pauses for the polling delay, so a server that
    -- answers at once can never cause a request storm.
    if not (ok and asked and now - t0 >= asked * 0.9) then
      sleep_for(o, math_min(delay, remaining))
      delay = math_min(delay * poll.multiplier, poll.max_delay)
    end
  end
end

local function operation_error(op)
  return core.error({ "OperationError" }, string_format("operation %s finished with an error (%s)",
    tostring(op.name), describe_error(op.error)), { operation = op })
end

--- wait(name, region, opts): polls until the operation is done, within opts.timeout. Returns the
--- final operation; raises OperationError when it finished with an error, TimeoutError past the deadline.
function Client:wait(name, region, opts)
  local o = self:_options(opts)
  local op = self:_wait(o, name, region, (o.clock or core.clock)())
  if op.error then error(operation_error(op), 0) end
  return op
end

--- cancel_and_wait(name, region, opts) -> operation, cancelled. cancelled is true when the operation
--- ended CANCELLED (code 1), false when it completed anyway; any other error raises OperationError.
function Client:cancel_and_wait(name, region, opts)
  local o = self:_options(opts)
  local start = (o.clock or core.clock)()
  local ok, res = self:_run(o, self:_build("cancel", name, region, o),
    { deadline = start + (o.timeout or DEFAULTS.timeout) })
  if not ok then error(res, 0) end
  local op = self:_wait(o, name, region, start)
  if op.error then
    if op.error.code == 1 then return op, true end
    error(operation_error(op), 0)
  end
  return op, false
end

-- Non-blocking requests -----------------------------------------------------------------------
-- client:start(method, ...) runs the blocking method in a coroutine whose HTTP exchanges go to the
-- client's libcurl multi handle and whose sleeps return to the caller: one policy code path for
-- retries, deadlines and waiting, stepped by req:poll() without ever blocking.

local STARTABLE = { cancel = true, get = true, delete = true, list = true, wait = true,
                    cancel_and_wait = true, wait_once = true }

local Request = {}
Request.__index = Request
_M.Request = Request

local function pack(...) return { n = select("#", ...), ... } end

function Client:_multi()
  if not self.multi then self.multi = core.multi() end
  return self.multi
end

-- Easy handles for non-blocking transfers: borrowed from a pool, given back when done.
function Client:_borrow()
  local pool = self.pool
  if pool and #pool > 0 then
    local h = pool[#pool]
    pool[#pool] = nil
    return h
  end
  local h = core.handle()
  h:share(self.share)
  self.handles = self.handles or {}
  self.handles[#self.handles + 1] = h
  return h
end

function Client:_give_back(h)
  self.pool = self.pool or {}
  self.pool[#self.pool + 1] = h
end

-- Moves every non-blocking transfer of the client forward, without blocking. A host polling many
-- requests in one frame pays for one perform per millisecond, not one per request (libcurl walks
-- every transfer on each perform); force skips that.
local PERFORM_INTERVAL = 0.001
function Client:_perform(force)
  local multi = self.multi
  if not multi then return end
  local now = core.clock()
  if not force and self.performed_at and now - self.performed_at < PERFORM_INTERVAL then return end
  self.performed_at = now
  multi:perform()
end

--- client:poll() -> how many started requests are still running. Steps every request of the
--- client once (one libcurl perform for all): for hosts with many requests in flight.
function Client:poll()
  self:_perform(true)
  local running = 0
  for r in pairs(self.running or {}) do
    if r:_advance() then self.running[r] = nil else running = running + 1 end
  end
  return running
end

--- client:start(method, ...) -> a request stepped by req:poll() (never blocks) or req:wait().
--- method: "cancel", "get", "delete", "list", "wait", "cancel_and_wait" or "wait_once".
--- Bad arguments raise TypeError or ValueError here, before any I/O.
function Client:start(method, ...)
  if type(method) ~= "string" then raise("TypeError", "method must be a string, got " .. type(method)) end
  if not STARTABLE[method] then raise("ValueError", "method '" .. method .. "' cannot be started") end
  local args = pack(...)
  local r = self:_start(function() return self[method](self, unpack(args, 1, args.n)) end)
  if r.done and not r.ok and (is(r.error, "TypeError") or is(r.error, "ValueError")) then error(r.error, 0) end
  return r
end

-- A request running fn in a coroutine driven by poll().
function Client:_start(fn)
  local r = setmetatable({ client = self }, Request)
  r.co = coroutine_create(fn)
  drivers[r.co] = r
  self.running = self.running or {}
  self.running[r] = true
  r:_step()
  return r
end

-- Inside the request's coroutine: one exchange on the multi handle, yielding until it is done.
-- The borrowed handle goes back to the pool on every path, a transfer that fails to start included.
function Request:_exchange(client, req, token)
  local h = client:_borrow()
  local started, err = pcall(h.start, h, req, client:_multi(), token)
  if not started then
    client:_give_back(h)
    error(err, 0)
  end
  self.transfer = h
  coroutine_yield("io")
  self.transfer = nil
  local finished, ok, res, headers = pcall(h.finish, h)
  client:_give_back(h)
  if not finished then error(ok, 0) end
  return ok, res, headers
end

-- Resumes the coroutine once, and records why it stopped.
function Request:_step()
  local res = pack(coroutine_resume(self.co))
  if coroutine_status(self.co) == "dead" then
    drivers[self.co] = nil
    if self.client.running then self.client.running[self] = nil end
    self.done, self.ok = true, res[1]
    if res[1] then
      self.results = res
    else
      self.error = res[2]
    end
  elseif res[2] == "sleep" then
    self.clock, self.sleep = res[4], res[5]
    self.wake = self.clock() + res[3]
  end
end

-- Steps the request if what it waits for has happened (the multi handle was performed before).
function Request:_advance()
  if self.done then return true end
  if self.transfer then
    if self.transfer:done() then self:_step() end
  elseif self.wake and self.clock() >= self.wake then
    self.wake = nil
    self:_step()
  end
  return self.done
end

-- The outcome of a finished request: its results, or its error.
function Request:_outcome()
  if self.ok then return unpack(self.results, 2, self.results.n) end
  return self.error
end

--- req:result() -> done, result_or_err[, ...] as poll() gives them, without stepping anything
--- (after client:poll() has stepped every request).
function Request:result()
  if self.done then return true, self:_outcome() end
  return false
end

--- req:poll() -> done, result_or_err[, ...]: never blocks. When done, the call's results follow
--- (cancel_and_wait: operation, cancelled), or its error object (req.ok tells which).
function Request:poll()
  if not self.done then
    self.client:_perform()
    self:_advance()
  end
  if self.done then return true, self:_outcome() end
  return false
end

-- Blocks until one of the requests can make progress (a transfer has news, or a sleep ends).
local function block(client, requests)
  local wake, sleeper
  for _, r in ipairs(requests) do
    if r.transfer then
      client:_multi():wait(1)
      return
    end
    if r.wake and (not wake or r.wake < wake) then wake, sleeper = r.wake, r end
  end
  if sleeper then sleeper.sleep(math_max(0, wake - sleeper.clock())) end
end

--- req:wait() -> the call's results, or raises its error. Inside a coroutine it yields between
--- steps (the host resumes it); elsewhere it blocks.
function Request:wait()
  while not self:poll() do
    local co = coroutine_running()
    if co and not drivers[co] and coroutine_isyieldable and coroutine_isyieldable() then
      coroutine_yield()
    else
      block(self.client, { self })
    end
  end
  if self.ok then return self:_outcome() end
  error(self.error, 0)
end

--- cancel_many(names, region, opts) -> results, one per name in order: {ok = true} or {err = e}.
--- Cancels concurrently (opts.concurrency at a time, default 100) over HTTP/2 multiplexing.
function Client:cancel_many(names, region, opts)
  if type(names) ~= "table" then raise("TypeError", "names must be a list of strings, got " .. type(names)) end
  local list = {} -- read raw, like options: what is checked is what is sent
  while rawget(names, #list + 1) ~= nil do list[#list + 1] = rawget(names, #list + 1) end
  names = list
  local o = self:_options(opts)
  local reqs = {}
  for i = 1, #names do -- every name is checked before any I/O; each request is built once
    local ok, req = pcall(core.build, "cancel", names[i], region, o)
    if not ok then
      if type(req) == "table" then req.message = string_format("names[%d]: %s", i, tostring(req.message)) end
      error(req, 0)
    end
    reqs[i] = req
  end
  local concurrency = o.concurrency or 100
  local results, active, next_i, left = {}, {}, 1, #names
  while left > 0 do
    while #active < concurrency and next_i <= #names do
      local req = reqs[next_i]
      active[#active + 1] = { i = next_i, req = self:_start(function()
        local ok, err = self:_run(o, req)
        if not ok then error(err, 0) end
        return true
      end) }
      next_i = next_i + 1
    end
    self:_perform(true)
    local progressed = false
    for k = #active, 1, -1 do
      local a = active[k]
      if a.req:_advance() then
        results[a.i] = a.req.ok and { ok = true } or { err = a.req.error }
        active[k] = active[#active]
        active[#active] = nil
        left = left - 1
        progressed = true
      end
    end
    if not progressed and #active > 0 then
      local waiting = {}
      for k = 1, #active do waiting[k] = active[k].req end
      block(self, waiting)
    end
  end
  return results
end

-- The public methods check their receiver: client.get(name) (a dot for a colon) or a closed client
-- raise a tagged error rather than whatever Lua says about indexing a string.
for _, m in ipairs { "cancel", "get", "delete", "list", "operations", "wait_once", "wait", "cancel_and_wait",
                     "start", "cancel_many", "poll", "stats" } do
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
local function default_client()
  if not default then default = _M.client() end
  return default
end
_M.default_client = default_client

for _, m in pairs { "cancel", "get", "delete", "list", "operations", "wait_once", "wait", "cancel_and_wait",
                    "start", "cancel_many" } do
  _M[m] = function(...) return Client[m](default_client(), ...) end
end

--- vertexops.is_error(v): true when v is a vertexops error object.
function _M.is_error(v)
  return type(v) == "table" and getmetatable(v) == core.error_mt
end

return _M
