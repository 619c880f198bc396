-- vertexops.client: a client -- its options, credentials and connections -- and the life of
-- one call: options (options.lua) -> token (auth/) -> built request (core.build, C) ->
-- exchange (host's means) -> classified answer (C) -> retry decision (retry.lua) -> result.
local core = require "vertexops.core"
local auth = require "vertexops.auth"
local options = require "vertexops.options"
local retry = require "vertexops.retry"
local host = require "vertexops.host"
local transport = require "vertexops.transport"
local operation = require "vertexops.operation"
local job = require "vertexops.job"
local deadlines = require "vertexops.deadline"
local rate = require "vertexops.rate"
local hooks = require "vertexops.hooks"
local proxy = require "vertexops.proxy"
local mtls = require "vertexops.mtls"

local error, getmetatable, ipairs, next, pcall, setmetatable, type, tostring =
  error, getmetatable, ipairs, next, pcall, setmetatable, type, tostring
local math_min, math_floor = math.min, math.floor
local coroutine_running = coroutine.running
local string_format = string.format
local drivers = host.drivers
local observe = hooks.observe
local json_null = operation.null

local errors = require "vertexops.errors"
local raise = errors.raise

-- opts.token (a string, or a function for hosts with their own token source) wins; otherwise a
-- vertexops.auth provider walks the Application Default Credentials chain and caches the token.
local AUTH_KEYS = { "credentials", "scopes", "self_signed_jwt", "metadata_server", "impersonate_service_account",
  "iam_endpoint" }

---@class vertexops.Client a client: its options, credentials and connections. Methods are called with
---':' (a '.' raises TypeError); after close() every call but stats() raises ValueError.
---@field opts vertexops.Options the client's own options (a checked copy)
---@field handle userdata the libcurl easy handle of its blocking calls
---@field share userdata the connection cache its handles share
---@field closed? true once close() ran
---@field auth? vertexops.auth.Provider its token provider, made on first need
---@field base? vertexops.Options its options merged with the environment, made on first call
local Client = {}
Client.__index = Client

--- vertexops.client(opts) -> a client that keeps its connections alive between calls.
---@param opts? vertexops.Options
---@return vertexops.Client
function Client.new(opts)
  local o = options.copy(opts) or {}
  -- one connection cache for the client's blocking and non-blocking handles alike
  local share, handle = core.share(), core.handle()
  handle:share(share)
  return setmetatable({ opts = o, handle = handle, share = share }, Client)
end

-- The token provider for options o: the client's own (cached), o.credentials when it is a provider
-- object, or a fresh one when the call names other credentials. nil when o.token is given, and
-- with o.api_key (express mode: the key is the credential, no OAuth token at all).
---@param o vertexops.Options
---@return vertexops.auth.Provider?
function Client:_provider(o)
  if o.token ~= nil or o.api_key ~= nil then return nil end
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

-- The bearer token for a request made with options o, by deadline (on o's clock); nil with an
-- api_key (its x-goog-api-key header is in the built request: csrc/request.c).
---@param o vertexops.Options
---@param deadline vertexops.Deadline
---@return string?
function Client:_token(o, deadline)
  if o.api_key ~= nil then return nil end
  local t = o.token
  if type(t) == "function" then
    t = t()
    if type(t) ~= "string" or t == "" then raise("AuthError", "the token function returned no token") end
    return t
  end
  if t then return t end
  local provider = self:_provider(o)
  -- Another request of this client, running side by side, is fetching a token: wait for it (only
  -- possible where waiting yields: under client:start() or in an nginx request handler), but not
  -- past that fetch's own deadline (provider.fetching.deadline): a fetch whose request was abandoned
  -- or killed by nginx is no longer in flight then, and this request fetches on its own.
  local co = coroutine_running()
  local fetch = provider.fetching
  while fetch and not fetch.deadline:expired() and ((co and drivers[co]) or host.nginx_phase()) do
    local remaining = deadline:left()
    if remaining <= 0 then
      raise("TimeoutError", "the call's timeout passed while another request was fetching a token")
    end
    host.sleep_for(o, math_min(0.005, remaining))
    -- a started request that leads the fetch and that its host no longer steps (it polls only
    -- the requests it still cares about) is stepped here: its answer may be in
    local leader = fetch.request
    if leader and leader.co and not leader.done and not leader.closed and leader ~= drivers[co] then
      leader:_advance()
    end
    fetch = provider.fetching
  end
  return provider:_token(o, deadline)
end

-- A client's options merged with a call's, then the environment's (options.apply_env), then the
-- quota project of the credentials when none of those names one (with an api_key: none of either).
-- Without call options the result is the same table every time (self.base): requests built from it
-- are cached (Client:_build), and the environment is read once per client.
---@param opts? vertexops.Options
---@return vertexops.Options
function Client:_options(opts)
  if opts == nil and self.base then return self.base end
  local o = options.merge(self.opts, opts)
  if o == self.opts then o = options.merge(o, {}) end -- a table of our own
  if o.rate then rate.check(o.rate) end -- a merged rate names its requests
  local explicit_project = o.user_project
  options.apply_env(o)
  if o.api_key ~= nil then
    -- express mode: a quota project only when the options name one (an API key is billed to its
    -- own project; google-genai sends none with a key); no credentials file is read
    o.user_project = explicit_project
  elseif o.user_project == nil and o.token == nil then
    o.user_project = self:_provider(o):quota_project()
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
---@param call "cancel"|"get"|"delete"|"list"|"wait"
---@param name string
---@param region? string
---@param o vertexops.Options
---@param extra? number the seconds of a :wait
---@return table request {call, method, url, region, headers, body} (core.build)
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

--- Closes the client's handles and connection cache (idempotent; also __close).
function Client:close()
  if self.closed then return end
  self.closed = true
  if self.multi then self.multi:close() end
  self.handle:close()
  for _, h in ipairs(self.handles or {}) do h:close() end
  self.share:close()
end
Client.__close = Client.close

--- Counters summed over the client's libcurl handles (blocking and non-blocking): {requests = n, connects = n},
--- and the errors its hooks raised (hook_errors; last_hook_error: the last one's event and message).
---@return {requests: integer, connects: integer, buffered: integer, held_headers: integer, hook_errors: integer,
---  last_hook_error?: string}
function Client:stats()
  local st = self.handle:stats()
  local retired = self.retired -- the handles of closed requests (req:close())
  if retired then st.requests, st.connects = st.requests + retired.requests, st.connects + retired.connects end
  for _, h in ipairs(self.handles or {}) do
    local s = h:stats()
    st.requests, st.connects = st.requests + s.requests, st.connects + s.connects
  end
  return hooks.stats(self, st)
end

-- One HTTP exchange: requests of client:start() go to the client's multi handle (their driver's
-- Request:_exchange), the others to the transport that option o.transport and the host choose
-- (lua/vertexops/transport/). The token goes beside the request, never into it: built requests are
-- cached and shared (Client:_build).
---@param o vertexops.Options
---@param req table a built request
---@param token? string
---@param meter? table the attempt's timings, sizes and status go there (lua/vertexops/hooks.lua)
---@return boolean ok
---@return table|vertexops.Error result_or_err
---@return table? headers when req.want_headers
function Client:_exchange(o, req, token, meter)
  if host.any_driver then -- (none made yet: no request of client:start() can be running)
    local co = coroutine_running()
    local driver = co and drivers[co]
    if driver then return driver:_exchange(self, req, token, meter) end
  end
  return transport.exchange(self.handle, o, req, token, meter)
end


-- What makes an exchange's connection different, filled into req just before it is sent (req may
-- be shared: Client:_build): the proxy (lua/vertexops/proxy.lua, one decision for every transport;
-- its credentials apart from its URL) and the client certificate (lua/vertexops/mtls.lua, read once
-- per client). libcurl keys its connection cache by all of them itself (7.88: the proxy's host, port
-- and credentials, the client certificate's blob; spec/09_hosts_proxy_spec.lua and
-- spec/09_hosts_mtls_spec.lua witness it), the cosocket transport by its pool names.
---@param o vertexops.Options
---@param req table a built request
function Client:_network(o, req)
  local px
  local url = o.proxy
  if url ~= nil and url ~= "" then
    local scheme, h, port = proxy.target(req.url)
    px = proxy.for_target(o, scheme, h, port)
  end
  if px then
    req.proxy, req.proxy_user, req.proxy_password, req.proxy_target = px.shown, px.user, px.password, px
  else
    req.proxy, req.proxy_user, req.proxy_password, req.proxy_target = nil, nil, nil, nil
  end
  if o.client_cert ~= nil or req.client_cert ~= nil or o.client_key ~= nil then
    req.client_cert, req.client_key = mtls.pems(self, o)
  end
end

-- Fills req for an attempt just before it is sent (req may be shared by requests running side by
-- side: Client:_build): its timeout (what is left of the call, at most request_timeout), connect
-- timeout, CA file, and what makes its connection different (Client:_network).
---@param o vertexops.Options
---@param req table a built request
---@param timeout number
---@param connect_timeout number
function Client:_fill(o, req, timeout, connect_timeout)
  req.timeout, req.connect_timeout, req.ca_file = timeout, connect_timeout, o.ca_file
  if o.proxy ~= nil or o.client_cert ~= nil or o.client_key ~= nil or req.proxy_target ~= nil
    or req.client_cert ~= nil then -- (nothing to fill or clear otherwise: one call less)
    self:_network(o, req)
  end
end

-- Whether a bulk call's first attempts can be sent straight from its window (fleet.lua), without
-- a request coroutine running Client:_run for each: only when nothing before the exchange could
-- wait or be seen -- no hooks, no rate option, not inside nginx (light threads there), a token at
-- hand without a fetch. Returns true and the token (nil with an api_key), or false. What such an
-- attempt does not cover (the deadline, the adaptive pacing's permit) the window checks per
-- request; its failures go to Client:_run(o, req, ctx, first), which goes on from there.
---@param o vertexops.Options
---@return boolean direct
---@return string? token
function Client:_direct(o)
  if o.rate or host.cosocket_phase() or observe(self, o) then return false end
  if o.api_key ~= nil then return true, nil end
  local t = o.token
  if type(t) == "string" then return true, t end
  if t ~= nil then return false end
  local ok, provider = pcall(self._provider, self, o)
  local token
  if ok then ok, token = pcall(provider._cached_token, provider, o) end
  if ok and token then return true, token end
  return false
end

-- A 401 or 403 of the service names the credentials it refused (google-auth's get_cred_info, as
-- google-api-core adds it to such errors): their type, source and principal, never a secret; in
-- the message and as fields credential_type, credential_source, principal. Nothing for a token
-- given as an option (no provider).
local function name_credentials(provider, err)
  -- (a call's own provider, made anew for its options, walks the chain again: no network)
  if provider and provider.credential_info and not provider.src then pcall(provider.source, provider) end
  local info = provider and provider.credential_info and provider:credential_info()
  if not info or type(err) ~= "table" or err.credential_type then return end
  err.credential_type, err.credential_source, err.principal = info.credential_type, info.credential_source, info.principal
  err.message = string_format("%s (credentials: %s%s)", tostring(err.message), info.credential_source,
    info.principal and ", principal " .. info.principal or "")
end

-- Runs one request with the retry policy. Returns true, decoded body or false, err (never raises
-- for a failure of the call). ctx (optional): deadline (on o's clock), rules ("GET" for
-- the idempotent rules whatever the method), request_timeout (override), requests (a counter).
-- ob, st (from Client:_run_call): the options' observer and the call's record, whose requests,
-- status and t_end the attempts update (the number made, the last one's status, the clock reading
-- its end took if any: the call's end when nothing follows it).
---@param o vertexops.Options
---@param req table a built request
---@param ctx? {deadline?: vertexops.Deadline, rules?: string, request_timeout?: number, requests?: integer, no_auth?: boolean}
---@param first? table a bulk call's attempt made already (fleet.lua)
---@param ob? table
---@param st? table
---@return boolean ok
---@return table|vertexops.Error result_or_err
---@return table? headers
function Client:_run(o, req, ctx, first, ob, st)
  local timeout = o.timeout or options.DEFAULTS.timeout
  -- (a deadline made here reads its clock through the Lua API even when the call's record holds a
  -- reading: that C call ends LuaJIT's trace before the loop below, where a trace that began above
  -- it would be thrown away, "inner loop in root trace", and with it the compiled code of the call)
  local deadline = first and first.deadline or ctx and ctx.deadline or deadlines.for_call(o)
  local rules = ctx and ctx.rules or req.rules or req.method -- req.rules: a read sent as POST
  local rp -- the retry policy: looked up at the first failure (options.policy)
  local request_timeout = ctx and ctx.request_timeout or o.request_timeout or options.DEFAULTS.request_timeout
  local connect_timeout = o.connect_timeout or options.DEFAULTS.connect_timeout
  local attempt, last, refreshed, n = 0, nil, false, 0
  local no_auth = ctx and ctx.no_auth
  -- hooks, logs, trace context (lua/vertexops/hooks.lua): nil when the options have none; token
  -- requests (no_auth) show as on_token, not as attempts
  if not st then ob = not no_auth and observe(self, o) or nil end
  local adapt = o.rate == nil and ctx and ctx.adapt -- rate = false: no pacing at all
  while true do
    local ok, res, headers
    if first then -- an attempt made already (a bulk call's direct send: fleet.lua): its outcome
      ok, res, headers, first, n = first[1], first[2], first[3], nil, 1
    else
      if st then st.t_end = false end -- (what follows may wait: the call's end is read anew)
      -- the token first: getting it may wait (a fetch of its own, or another request's)
      local token = not no_auth and self:_token(o, deadline) or nil
      -- option rate, or a bulk call's adaptive pacing (ctx.adapt): may wait; an error past the deadline
      local paced, sent, slot = nil, nil, nil
      if o.rate or adapt then paced, sent, slot = rate.permit(self, o, req, deadline, adapt) end
      if paced then return false, paced end
      local remaining, now = deadline:left_now()
      if remaining <= 0 then
        return errors.result("TimeoutError", string_format("%s did not finish within the %g s timeout%s",
          req.call, timeout, last and " (last failure: " .. tostring(last) .. ")" or ""), { cause = last })
      end
      self:_fill(o, req, math_min(request_timeout, remaining), connect_timeout)
      if ctx then ctx.requests = (ctx.requests or 0) + 1 end
      n = n + 1
      if ob then
        local sendreq, a = ob:attempt_start(req, n, token ~= nil, now)
        ok, res, headers = self:_exchange(o, sendreq, token, a.meter)
        local status
        if ok and st and not sent then -- (the call's last attempt: its end and the call's in one)
          status = ob:last_end(a, ok, res, headers, st, n)
        else
          local t_end
          status, t_end = ob:attempt_end(a, ok, res, headers)
          -- (t_end: the call's end, unless the pacing's bookkeeping below may wait on a store)
          if st then st.requests, st.status, st.t_end = n, status, not sent and t_end or false end
        end
        if ctx then ctx.status = status end
      else
        ok, res, headers = self:_exchange(o, req, token)
      end
      if sent then rate.answered(adapt, o, req, sent, ok, res, slot) end
    end
    if ok then return true, res, headers end
    local provider = not no_auth and not refreshed and res.code == 401 and self:_provider(o)
    if not no_auth and (res.code == 401 or res.code == 403) and not (provider and provider:refreshable()) then
      name_credentials(self:_provider(o), res)
    end
    if provider and provider:refreshable() then
      -- The service refused the token: fetch a fresh one and try once more, at once.
      refreshed = true
      provider:invalidate()
      if ob then ob:retry(req.call, n, 0, res) end
    else
      attempt = attempt + 1
      if rp == nil then rp = options.policy(o, "retry", options.RETRY) end
      if not rp or attempt > rp.max_retries or not retry.retryable(rules, res) then return false, res end
      last = res
      local delay = retry.retry_after(res) or retry.backoff(rp, attempt)
      if deadline:within(delay) then
        return errors.result("TimeoutError", string_format("%s did not finish within the %g s timeout: "
          .. "the next retry would start after it (last failure: %s)", req.call, timeout, tostring(res)),
          { cause = res })
      end
      if ob then ob:retry(req.call, n, delay, res) end
      host.sleep_for(o, delay)
    end
  end
end

-- A C function called through the Lua API, its result unused: the last thing a call with an
-- observer does (Client:_run_call). Under LuaJIT the trace recorded from an exchange's last C call
-- (the cosocket's setkeepalive inside nginx) on through the returns, the attempt's end, the
-- recorder and the call's end stops here, compiled (a stitch); without it, it would go on into the
-- returns to the caller's pcall, which LuaJIT cannot compile ("NYI: return to lower frame"), and
-- the whole of the call's end would run in the interpreter. A call without an observer has no use
-- for it: its end is a few returns, cheaper interpreted than a stitch (about 110 instructions a
-- request inside nginx under callgrind; issue 19 §4).
local trace_end = core.clock

-- Runs one REST call with the retry policy and the deadline; raises on failure.
-- extra: the :wait timeout in seconds, for call "wait".
---@param call "cancel"|"get"|"delete"|"list"|"wait"
---@param name string
---@param region? string
---@param opts? vertexops.Options
---@param extra? number
---@return table decoded the answer's JSON object
function Client:_call(call, name, region, opts, extra)
  local o = self:_options(opts)
  local ok, res = self:_run_call(o, self:_build(call, name, region, o, extra), nil, call, name, region)
  if not ok then error(res, 0) end
  return res
end

-- Client:_run for one logical call (cancel, get, delete, a list page, ...): with hooks, on_call at
-- its start and end (attempts, the last status). ctx as Client:_run's.
function Client:_run_call(o, req, ctx, call, name, region)
  local ob = observe(self, o)
  if not ob then return self:_run(o, req, ctx) end
  -- (the call's record: _run counts its attempts and keeps the last one's status there)
  local st = ob:call_start(call, name, region)
  local ok, res, headers = self:_run(o, req, ctx, nil, ob, st)
  if not st.ended then ob:call_end(st, ok, res, st, st.requests) end -- (ended: Observer:last_end)
  trace_end()
  return ok, res, headers
end

--- POST {name}:cancel (best effort: the operation may still complete).
---@param name string [projects/{project}/locations/{location}/][{collection}/{id}/...]operations/{id}
---@param region? string defaults to the name's location
---@param opts? vertexops.Options
---@return true
function Client:cancel(name, region, opts)
  self:_call("cancel", name, region, opts)
  return true
end

--- GET {name}: the Operation; for a job's name, the job (checked by job.lua); for an operation of
--- a publisher model, the Operation read with POST {model}:fetchPredictOperation (csrc/jobs.c).
---@param name string
---@param region? string
---@param opts? vertexops.Options
---@return vertexops.Operation|table
function Client:get(name, region, opts)
  local o = self:_options(opts)
  local req = self:_build("get", name, region, o)
  local ok, res = self:_run_call(o, req, nil, "get", name, region)
  if not ok then error(res, 0) end
  if req.kind == "job" then return job.check(res, job.what(name)) end
  return operation.check(res, operation.what(name))
end

--- DELETE {name}.
---@param name string
---@param region? string
---@param opts? vertexops.Options
---@return true
function Client:delete(name, region, opts)
  self:_call("delete", name, region, opts)
  return true
end

-- A page of jobs (opts.kind: a collection of jobs): {operations = jobs, jobs = jobs (the same list),
-- next_page_token}, each job checked (job.lua); the answer holds them under the collection's name.
local function jobs_page(body, collection)
  local jobs = body[collection]
  if jobs == json_null then jobs = nil end
  local what = string_format("list response '%s'", collection)
  if jobs ~= nil and (type(jobs) ~= "table" or next(jobs) ~= nil and #jobs == 0) then
    raise("ResponseTypeError", what .. " is not a list")
  end
  jobs = jobs or {}
  local n = #jobs
  for k in next, jobs do
    if type(k) ~= "number" or k < 1 or k > n or k ~= math_floor(k) then raise("ResponseTypeError", what .. " is not a list") end
  end
  for i = 1, n do job.check(jobs[i], string_format("%s[%d]", what, i)) end
  local token = body.nextPageToken
  if token ~= nil and token ~= json_null and type(token) ~= "string" then
    raise("ResponseTypeError", "list response has a 'nextPageToken' field that is not a string")
  end
  return { operations = jobs, jobs = jobs,
           next_page_token = (type(token) == "string" and token ~= "") and token or nil }
end

-- One page of a list with options o (and ctx for Client:_run): {operations = {...}, next_page_token = s or nil}.
---@param parent string
---@param region? string
---@param o vertexops.Options
---@param ctx? table
---@return vertexops.Page
function Client:_list(parent, region, o, ctx)
  local req = self:_build("list", parent, region, o)
  req.names_only = ctx and ctx.names_only and req.kind ~= "jobs" or nil -- cancel_all: names only (csrc/json.c)
  local ok, body = self:_run_call(o, req, ctx, "list", parent, region)
  if not ok then error(body, 0) end
  if req.kind == "jobs" then return jobs_page(body, req.collection) end
  local ops = body.operations
  if ops == json_null then ops = nil end
  -- a page read for names only (core.NAMES_PAGE: csrc/json.c) holds what the checks below pass
  if ops ~= nil and getmetatable(body) ~= core.NAMES_PAGE then
    if type(ops) ~= "table" then
      raise("ResponseTypeError", "list response has an 'operations' field that is not a list")
    end
    local n = #ops
    for k in next, ops do
      if type(k) ~= "number" or k < 1 or k > n or k ~= math_floor(k) then
        raise("ResponseTypeError", "list response has an 'operations' field that is not a list")
      end
    end
    for i = 1, n do operation.check(ops[i], string_format("list response operations[%d]", i)) end
  end
  local token = body.nextPageToken
  if token ~= nil and token ~= json_null and type(token) ~= "string" then
    raise("ResponseTypeError", "list response has a 'nextPageToken' field that is not a string")
  end
  return { operations = ops or {}, next_page_token = (type(token) == "string" and token ~= "") and token or nil }
end

--- GET {parent}/operations: one page (opts.filter, opts.page_size, opts.page_token).
---@param parent string projects/{project}/locations/{location}[/{collection}/{id}...], or without a project
---@param region? string
---@param opts? vertexops.Options
---@return vertexops.Page
function Client:list(parent, region, opts)
  return self:_list(parent, region, self:_options(opts))
end

-- The pages of a listing, one per call of the function returned (nil after the last; a failure
-- ends the listing). ctx (optional, for Client:_run): its deadline bounds every page; without one,
-- the deadline is opts.timeout from the first page on. A page token the server already gave in
-- this listing raises ResponseTypeError (the listing would never end).
function Client:_pages(parent, region, opts, ctx)
  local page_opts = options.merge({}, opts) -- a table of our own: the page token goes in it
  local seen = {}
  if page_opts.page_token then seen[page_opts.page_token] = true end
  local done = false
  return function()
    if done then return nil end
    local o = self:_options(page_opts)
    if not ctx then ctx = { deadline = deadlines.for_call(o) } end
    done = true -- until this page says there is another: a failure ends the listing
    local page = self:_list(parent, region, o, ctx)
    local token = page.next_page_token
    if token then
      if seen[token] then
        local shown = token:sub(1, 200):gsub("%c", "?") .. (#token > 200 and "..." or "")
        raise("ResponseTypeError", string_format("list response repeated the page token '%s' of an earlier "
          .. "page: the listing would never end", shown))
      end
      seen[token] = true
      page_opts.page_token = token
      done = false
    end
    return page
  end
end

--- for op in client:operations(parent, region, opts): every operation, page by page (lazily).
--- One deadline (opts.timeout from the first page on) bounds the whole iteration; a page token the
--- server already gave in this iteration raises ResponseTypeError (the listing would never end).
---@param parent string
---@param region? string
---@param opts? vertexops.Options
---@return fun(): vertexops.Operation? iterator
function Client:operations(parent, region, opts)
  local pages = self:_pages(parent, region, opts)
  local page, i = nil, 0
  return function()
    while true do
      if page and i < #page.operations then
        i = i + 1
        return page.operations[i]
      end
      page, i = nil, 0
      page = pages()
      if not page then return nil end
    end
  end
end

--- One server-side :wait request (best effort: it may return a not-done operation early).
---@param name string
---@param region? string
---@param seconds? number nil (the server's default) or 0 to 31536000, sent rounded up to the nanosecond
---@param opts? vertexops.Options
---@return vertexops.Operation
function Client:wait_once(name, region, seconds, opts)
  return operation.check(self:_call("wait", name, region, opts, seconds), operation.what(name))
end

return Client
