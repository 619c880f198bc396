-- vertexops.fleet: operations by the many, as Client methods (like wait.lua). Both bulk calls run
-- their requests as client:start() coroutines (request.lua), at most so many at a time, in one
-- Window. cancel_many cancels a list of names. cancel_all streams the pages of a listing into the
-- window (never more than one page plus the window in memory), then, with wait = true, waits for
-- what it cancelled with the fewest requests: re-listing the parent (a page of operations per
-- request) or one GET per operation, whichever costs less this round.
local core = require "vertexops.core"
local options = require "vertexops.options"
local host = require "vertexops.host"
local operation = require "vertexops.operation"
local job = require "vertexops.job"
local Client = require "vertexops.client"
local Request = require "vertexops.request" -- also Client:_start, _perform, _multi
local deadlines = require "vertexops.deadline"
local rate = require "vertexops.rate"
local observe = require("vertexops.hooks").observe

local error, getmetatable, next, pcall, rawget, setmetatable, tostring, type =
  error, getmetatable, next, pcall, rawget, setmetatable, tostring, type
local math_min = math.min
local coroutine_yield = coroutine.yield
local string_find, string_format = string.find, string.format
local is = core.is
local raw_copy = options.raw_copy

local errors = require "vertexops.errors"
local raise, rethrow = errors.raise, errors.rethrow

local DEFAULTS = options.CANCEL_ALL
local OWN = { progress = true, wait = true, wait_by = true, max_in_flight = true, dry_run = true }

-- Why a listed entry is skipped (summary.skipped[i].reason), never a failure of the sweep.
local SKIP = {
  outside_parent = "outside_parent",           -- another project's or location's name: never sent
  no_cancel_method = "no_cancel_method",       -- its shape has no :cancel: never sent
  failed_precondition = "failed_precondition", -- the cancel answered 400 FAILED_PRECONDITION
}

-- A window: the requests of one bulk call in flight, at most `size` of them, each with a tag (what
-- it is for). step() moves them all and hands each finished one to on_done(r, tag): r.ok, and
-- r.error when not ok (r.results too for a request coroutine's).
-- A request is either a request coroutine, run by Client:_start (start(fn, tag): the whole policy,
-- Client:_run, in a coroutine of its own), or a direct send (send(req, tag)): when nothing before
-- the exchange could wait (Client:_direct), the first attempt is started on a handle of the
-- window's own, without a coroutine, and multi:finished() says which ended; an answer that is not
-- a success goes to a request coroutine running Client:_run from that attempt on (its retries, a
-- token refreshed after a 401, its errors), so a bulk call decides as a single call does.
local Window = {}
Window.__index = Window

local SENT = { done = true, ok = true } -- what on_done gets for a direct send that succeeded

-- o, ctx: the options and context of the bulk call's requests (Client:_run's)
local function window(client, size, on_done, o, ctx)
  client.sends = client.sends or {} -- the windows' direct sends in flight: slot -> window
  return setmetatable({ client = client, size = size, on_done = on_done, o = o, ctx = ctx,
    n = 0,                          -- requests in flight: nr + nd
    nr = 0, reqs = {}, tags = {},   -- request coroutines, 1 .. nr
    nd = 0, direct = {}, spare = {}, fin = {}, -- direct sends by slot; spare records; multi:finished's list
    later = {}, -- slots of direct sends finished that another window's harvest took
  }, Window)
end

function Window:full() return self.n >= self.size end

function Window:start(fn, tag)
  local r = self.client:_start(fn)
  if r.done then return self.on_done(r, tag) end
  local n = self.nr + 1
  self.nr, self.reqs[n], self.tags[n], self.n = n, r, tag, self.n + 1
end

-- What a window request runs: req with the retry policy (Client:_run), its failure raised; first:
-- the outcome of an attempt made already (a direct send's).
local function runner(client, o, req, ctx, first)
  return function()
    local ok, res = client:_run(o, req, ctx, first)
    if not ok then error(res, 0) end
    return res
  end
end

-- Before a burst of send(): whether its first attempts may go direct, and with which token; what
-- each attempt is filled with (Client:_run's: request and connect timeouts, the adaptive pacing).
function Window:begin()
  local o, ctx = self.o, self.ctx
  self.go, self.token = self.client:_direct(o)
  self.request_timeout = ctx.request_timeout or o.request_timeout or options.DEFAULTS.request_timeout
  self.connect_timeout = o.connect_timeout or options.DEFAULTS.connect_timeout
  self.adapt = o.rate == nil and ctx.adapt -- rate = false: no pacing at all
  local deadline = ctx.deadline -- the call's, when one bounds every request (cancel_all)
  self.at, self.clock = deadline and deadline:at(), deadline and deadline:clock()
end

-- req's first attempt, direct when begin() allowed it and it can go now (the deadline not passed,
-- the adaptive pacing's permit at once), else as a request coroutine.
function Window:send(req, tag)
  local o, ctx, client = self.o, self.ctx, self.client
  if not self.go then return self:start(runner(client, o, req, ctx), tag) end
  local deadline, at, clock = ctx.deadline, self.at, self.clock -- the clock read once a send
  if not deadline then -- cancel_many: each cancel's own
    deadline = deadlines.for_call(o)
    at, clock = deadline:at(), deadline:clock()
  end
  local now = clock()
  local remaining = at - now
  local adapt = self.adapt
  local may, sent = true, nil
  if remaining > 0 and adapt then may, sent = rate.admit_now(adapt, req, now) end
  if remaining <= 0 or not may then return self:start(runner(client, o, req, ctx), tag) end
  client:_fill(o, req, math_min(self.request_timeout, remaining), self.connect_timeout)
  ctx.requests = (ctx.requests or 0) + 1
  local h = client:_borrow()
  local slot = (client.slot or 0) + 1
  client.slot = slot
  local started, err = pcall(h.start, h, req, client.multi or client:_multi(), self.token, slot)
  if not started then -- as a request whose transfer could not start: that error ends it
    client:_give_back(h)
    return self.on_done({ done = true, ok = false, error = err }, tag)
  end
  local spare = self.spare
  local ns = #spare
  local d = spare[ns]
  if d then spare[ns] = nil else d = {} end
  d.h, d.req, d.tag, d.sent, d.deadline = h, req, tag, sent, deadline
  self.direct[slot], client.sends[slot] = d, self
  self.nd, self.n = self.nd + 1, self.n + 1
end

-- A direct send that finished (slot d): handed over, or on to Client:_run when not a success.
local function landed(self, slot, d)
  local client, o, ctx = self.client, self.o, self.ctx
  self.direct[slot] = nil
  self.nd, self.n = self.nd - 1, self.n - 1
  local h, req, tag, sent, deadline = d.h, d.req, d.tag, d.sent, d.deadline
  d.h, d.req, d.tag, d.deadline = nil, nil, nil, nil
  local spare = self.spare
  spare[#spare + 1] = d
  local done, ok, res, headers = pcall(h.finish, h)
  client:_give_back(h)
  if not done then return self.on_done({ done = true, ok = false, error = ok }, tag) end
  if sent then rate.answered(self.adapt, o, req, sent, ok, res) end
  if ok then return self.on_done(SENT, tag) end
  self:start(runner(client, o, req, ctx, { ok, res, headers, deadline = deadline }), tag)
end

-- The direct sends that finished (after a perform): each handed over; returns how many. The
-- client's multi handle says which slots finished, for every window of the client (bulk calls
-- side by side under client:start()): another window's go to its `later`, its own harvest's.
function Window:harvest()
  local fin, later, direct, sends = self.fin, self.later, self.direct, self.client.sends
  local finished = 0
  for i = 1, self.client.multi:finished(fin) do
    local slot = fin[i]
    fin[i] = nil
    local owner = sends[slot]
    if owner then
      sends[slot] = nil
      if owner == self then
        finished = finished + 1
        landed(self, slot, direct[slot])
      else
        owner.later[#owner.later + 1] = slot
      end
    end
  end
  for i = 1, #later do -- (in the order they finished, as the multi handle gives them)
    local slot = later[i]
    later[i] = nil
    finished = finished + 1
    landed(self, slot, direct[slot])
  end
  return finished
end

-- One perform for every transfer, then each finished request handed over; returns how many.
function Window:step()
  self.client:_perform(true)
  local finished = self.nd > 0 and self:harvest() or 0
  local reqs, tags = self.reqs, self.tags
  local k = self.nr
  while k >= 1 do
    local r = reqs[k]
    if r:_advance() then
      local tag, n = tags[k], self.nr
      reqs[k], tags[k] = reqs[n], tags[n]
      reqs[n], tags[n] = nil, nil
      self.nr, self.n = n - 1, self.n - 1
      finished = finished + 1
      self.on_done(r, tag)
    end
    k = k - 1
  end
  return finished
end

-- true when one of the requests can move on (a transfer finished, a retry's sleep ended).
function Window:ready()
  if self.nd > 0 and (#self.later > 0 or self.client.multi:finished() > 0) then return true end
  local reqs = self.reqs
  for k = 1, self.nr do
    local r = reqs[k]
    if r.done or (r.transfer and r.transfer:done()) or (r.wake and r.clock() >= r.wake) then return true end
  end
  return false
end
Window.done = Window.ready -- the window stands for a transfer of the request running cancel_all

-- Waits until one of the requests can move on. Under client:start() control goes back to the
-- caller of poll() (the window stands in for the transfer it waits on); elsewhere it blocks.
function Window:block()
  local me = host.driver()
  if me then
    me.transfer = self
    coroutine_yield("io")
    me.transfer = nil
    return
  end
  Request.block(self.client, self.reqs, self.nr, self.nd > 0)
end

-- Abandons every request in flight (the bulk call raised, or the request running it was
-- closed): the direct sends' handles are closed, as a closed request's transfer is
-- (Client:_retire), and the request coroutines closed (req:close(): a retry sleeping in one would
-- otherwise send again when the host polls the client).
function Window:retire()
  local client = self.client
  for slot, d in next, self.direct do
    self.direct[slot], client.sends[slot] = nil, nil
    client:_retire(d.h)
  end
  local reqs, tags = self.reqs, self.tags
  for k = self.nr, 1, -1 do
    local r = reqs[k]
    reqs[k], tags[k] = nil, nil
    r:close()
  end
  self.nd, self.nr, self.n, self.later = 0, 0, 0, {}
end

-- Runs fn(...) (a bulk call's loop over the window); a failure retires the window first.
function Window:guard(fn, ...)
  local ok, err = host.pcall(fn, ...)
  if not ok then
    self:retire()
    error(err, 0)
  end
end

-- Runs start(i) for i = 1 .. n, keeping the window full, until every request has finished;
-- after a step that finished some, stepped() (when given).
function Window:run(n, start, stepped)
  local i = 0
  while true do
    if i < n and not self:full() then self:begin() end
    while i < n and not self:full() do
      i = i + 1
      start(i)
    end
    if self.n == 0 then return end
    if self:step() == 0 then
      self:block()
    elseif stepped then
      stepped()
    end
  end
end

-- cancel_many --------------------------------------------------------------------------------------

-- names read raw, like options: what is checked is what is sent
local function read_names(names)
  if type(names) ~= "table" then raise("TypeError", "names must be a list of strings, got " .. type(names)) end
  local list = {}
  while rawget(names, #list + 1) ~= nil do list[#list + 1] = rawget(names, #list + 1) end
  return list
end

-- Whether an entry of core.build_many's list is a request (a plain table), not an error.
local function built(r)
  return type(r) == "table" and getmetatable(r) == nil
end

-- For each name, the request core.build(call, name, region, o) returns or the error it raises:
-- core.build_many (the options checked once), or where that raises (a bad option, which core.build
-- raises for each name) each name built on its own: the same list either way.
local function build_each(call, names, region, o)
  local ok, reqs = pcall(core.build_many, call, names, region, o)
  if ok then return reqs end
  reqs = {}
  for i = 1, #names do
    local _, r = pcall(core.build, call, names[i], region, o)
    reqs[i] = r
  end
  return reqs
end

-- Every name checked before any I/O, each request built once (the options checked once).
local function build_cancels(names, region, o)
  local reqs = build_each("cancel", names, region, o)
  for i = 1, #names do
    local req = reqs[i]
    if not built(req) then
      if type(req) == "table" then req.message = string_format("names[%d]: %s", i, tostring(req.message)) end
      error(req, 0)
    end
  end
  return reqs
end

--- cancel_many(names, region, opts) -> results, one per name in order: {ok = true} or {err = e}.
--- Cancels concurrently (opts.concurrency at a time, default 100) over HTTP/2 multiplexing.
---@param names string[] every name is checked before any I/O
---@param region? string
---@param opts? vertexops.Options
---@return vertexops.CancelResult[] results in the order of names
function Client:cancel_many(names, region, opts)
  names = read_names(names)
  local o = self:_options(opts)
  local reqs = build_cancels(names, region, o)
  local ob = observe(self, o)
  if ob then -- hooks: on_call around the whole call (each cancel's attempts fire on_attempt)
    local st = ob:call_start("cancel_many", nil, region)
    local ok, res, ctx = host.pcall(self._cancel_many, self, reqs, o)
    ob:call_end(st, ok, not ok and res or nil, nil, ok and ctx.requests or 0)
    if not ok then error(res, 0) end
    return res
  end
  return (self:_cancel_many(reqs, o))
end

function Client:_cancel_many(reqs, o)
  local results = {}
  local ctx = { adapt = rate.adaptive() } -- without option rate: paced by what 429s teach (rate.lua)
  local win = window(self, o.concurrency or options.DEFAULTS.concurrency, function(r, i)
    results[i] = r.ok and { ok = true } or { err = r.error }
  end, o, ctx)
  win:guard(win.run, win, #reqs, function(i) win:send(reqs[i], i) end)
  return results, ctx
end

-- cancel_all: the run ------------------------------------------------------------------------------
-- One table f holds a cancel_all call's state, shared by its steps: its options (ro, for each
-- request), clock and deadline, the summary, the listing's cursor and, with wait, the pending set.

-- cancel_all of jobs (opts.kind: a collection of jobs): the default filter lists the jobs that
-- have not ended and are not being cancelled already, in the collection's states.
local function jobs_filter(kind)
  local p = (kind == "trainingPipelines" or kind == "pipelineJobs") and "PIPELINE_STATE_" or "JOB_STATE_"
  return string_format('state="%sQUEUED" OR state="%sPENDING" OR state="%sRUNNING" OR state="%sPAUSED"', p, p, p, p)
end

local function new_run(client, o, parent, region)
  local ro = {} -- the options of each request: the caller's, less cancel_all's own
  for k, v in next, o do
    if not OWN[k] then ro[k] = v end
  end
  core.build("list", parent, region, ro) -- the parent and region are checked before any I/O
  local deadline = deadlines.for_call(o)
  local clock, start = deadline:clock(), deadline:start()
  local timeout = o.timeout or options.DEFAULTS.timeout
  local wait = o.wait
  if wait == nil then wait = DEFAULTS.wait end
  local dry_run = o.dry_run == true
  if dry_run and wait then
    raise("ValueError", "option 'wait' cannot go with option 'dry_run' (a dry run cancels nothing to wait for)")
  end
  -- projects/P/locations/L and what follows (a nested parent: /customJobs/42); nil for a parent
  -- without a project (reasoningEngines/R/sessions/S), whose names start with it
  local project, location, under = parent:match("^projects/([^/]+)/locations/([^/]+)(.*)$")
  local jobs = o.kind ~= nil and o.kind ~= "operations"
  local filter = ro.filter
  if filter == nil then filter = jobs and jobs_filter(o.kind) or DEFAULTS.filter end
  return {
    shape = jobs and job or operation.shape, -- what is listed and waited for
    client = client, ro = ro, parent = parent, region = region, progress = o.progress,
    clock = clock, start = start, timeout = timeout, deadline = deadline,
    ctx = { deadline = deadline, requests = 0, adapt = rate.adaptive() }, -- adapt: rate.lua
    size = o.max_in_flight or DEFAULTS.max_in_flight, page_size = o.page_size or DEFAULTS.page_size,
    filter = filter, wait = wait, wait_by = o.wait_by or DEFAULTS.wait_by,
    api_version = ro.api_version or options.DEFAULTS.api_version, dry_run = dry_run,
    summary = { listed = 0, cancelled = 0, failed = {}, skipped = {}, duplicates = 0, pages = 0, requests = 0,
                elapsed = 0, dry_run = dry_run or nil, would_cancel = dry_run and {} or nil },
    -- the parent's identity, the project number the service names operations with (sort_page)
    project = project, location = location, under = under, number = project and project:match("^%d+$"),
    prefix = parent .. "/", -- what the parent's own names start with (place)
    seen = {}, -- the names listed so far, by name_key
    rate_keys = {}, -- project -> "project/location", the key of the parent's requests (rate.lua)
    pending = wait and {} or nil, npending = 0, -- with wait: the names cancelled, not yet seen ended
  }
end

-- cancel_all: sorting a page -----------------------------------------------------------------------

-- The names seen so far are kept as small keys (100,000 of them in a few MiB): a name of the
-- parent by what follows its location -- the operation's id as an integer when that is exact, else
-- the rest of the name from its '/' -- and any other name whole (it starts with "projects/").
-- key_of(s, from): the key of s by the rest from position from on, read in place (csrc/request.c):
-- no string is made for a name by its id.
local key_of = core.name_key

-- Whether name is the parent's own (its project by ID, by number, or the first number seen: see
-- sort_page; its location; under the parent's resource when the parent is one), its key in
-- f.seen, and its project. Under a parent outside any project: the names that start with it.
local function place(f, name)
  local prefix = f.prefix -- the parent and a '/'
  if string_find(name, prefix, 1, true) == 1 then -- the common case: the parent's own name (its project as given)
    return true, key_of(name, #prefix), f.project
  end
  if not f.project then return false, name, nil end -- a parent without a project: its names start with it
  local project, location, rest = name:match("^projects/([^/]+)/locations/([^/]+)(/.*)$")
  local under = f.under
  local mine = location == f.location and rest:sub(1, #under + 1) == under .. "/"
    and (project == f.project or project == f.number or (not f.number and project:match("^%d+$") ~= nil))
  return mine, mine and key_of(rest, #under + 1) or name, project
end

local function skip(f, name, reason, err)
  local skipped = f.summary.skipped
  skipped[#skipped + 1] = { name = name, reason = reason, error = err }
end

-- Whether the shape of name has a :cancel: core.shape(name, api_version) -> shape, calls (the
-- calls Google's definition of the API gives the shape; all of them for a shape it does not know).
-- A core without core.shape knows no shapes: every name has every call.
local function cancellable(f, name)
  local shape_of = core.shape
  if not shape_of then return true end
  local ok, _, calls = pcall(shape_of, name, f.api_version)
  return not (ok and type(calls) == "table" and not calls.cancel)
end

-- Entry i of page pageno, a name listed for the first time (mine, project: place's; req: its
-- cancel as core.build_many built it, or why not): its cancel, or why it fails, or why it is skipped
-- (outside the parent; a shape without :cancel). A dry run notes it in would_cancel instead.
-- Returns the request when it is to be sent.
local function take(f, name, i, pageno, mine, project, req)
  local summary = f.summary
  summary.listed = summary.listed + 1
  -- built with the name's own location: inside the parent that is the parent's (and region's).
  -- core.build refuses a shape without :cancel, so a name it builds is cancellable: the shape is
  -- looked up (core.shape, a scan of Google's table) only for a name it refuses
  local ok = built(req)
  if not ok and not cancellable(f, name) then
    return skip(f, name, mine and SKIP.no_cancel_method or SKIP.outside_parent)
  end
  if not ok then
    summary.failed[#summary.failed + 1] = { name = name, error = errors.new("ResponseTypeError", string_format(
      "list response page %d operations[%d]: %s", pageno, i, type(req) == "table" and req.message
      or tostring(req)), { cause = req }) }
  elseif mine then
    -- Vertex names operations by project number while callers pass the ID: the number is the
    -- parent's own when given by number, else the first one the listing shows in its location
    if project ~= f.project and not f.number then f.number = project end
    if not f.dry_run then return req end
    summary.would_cancel[#summary.would_cancel + 1] = name
  else
    skip(f, name, SKIP.outside_parent)
  end
end

-- What a page lists, sorted before anything is sent: each name once (a repeat counts in
-- duplicates), names outside the parent skipped, entries the service should never have sent (no
-- name, a name the grammar refuses) failed with a ResponseTypeError. Returns what to cancel: the
-- names and their built requests.
local function sort_page(f, ops, pageno)
  local summary, seen = f.summary, f.seen
  -- every name of the page built in one call first (a name seen before is built for nothing: a
  -- duplicate is rare), then each entry in order (place reads what take learned of earlier ones)
  local list, m = {}, 0
  for i = 1, #ops do
    local name = ops[i].name
    if name ~= nil then
      m = m + 1
      list[m] = name
    end
  end
  local built_reqs = build_each("cancel", list, nil, f.ro)
  local names, reqs, k, n = {}, {}, 0, 0
  for i = 1, #ops do
    local name = ops[i].name
    if name == nil then
      summary.listed = summary.listed + 1
      summary.failed[#summary.failed + 1] = { name = nil, error = errors.new("ResponseTypeError",
        string_format("list response page %d operations[%d] has no name", pageno, i)) }
    else
      k = k + 1
      local mine, key, project = place(f, name)
      if seen[key] then
        summary.duplicates = summary.duplicates + 1
      else
        seen[key] = true
        local req = take(f, name, i, pageno, mine, project, built_reqs[k])
        if req then
          n = n + 1
          names[n], reqs[n] = name, req
          -- its quota's key (rate.lua: the project and location its URL names, none under a
          -- parent without a project), known here
          local rate_key = project and f.rate_keys[project]
          if project and not rate_key then
            rate_key = project .. "/" .. f.location
            f.rate_keys[project] = rate_key
          end
          req.rate_key = rate_key or false
        end
      end
    end
  end
  return names, reqs
end

-- cancel_all: the cancel phase ---------------------------------------------------------------------

local LISTER = {} -- the window's tag of the request fetching the next page

local function report_cancel(f)
  local summary = f.summary
  if f.progress then
    local wc = summary.would_cancel
    f.progress { phase = wc and "list" or "cancel", listed = summary.listed, cancelled = summary.cancelled,
                 would_cancel = wc and #wc, failed = #summary.failed, skipped = #summary.skipped,
                 in_flight = f.win.n, listing = f.more, requests = f.ctx.requests, elapsed = f.clock() - f.start }
  end
end

-- A page fetched (its names become the ones to send) or the listing failed.
local function on_page(f, r)
  f.lister = false
  if not r.ok then
    f.list_err, f.more = r.error, false
    return
  end
  local pg = r.results[2]
  f.page, f.reqs, f.pi = nil, nil, 0
  f.more = pg ~= nil and pg.next_page_token ~= nil
  if pg then
    f.summary.pages = f.summary.pages + 1
    f.page, f.reqs = sort_page(f, pg.operations, f.summary.pages)
  end
end

-- Whether a cancel's failure says the operation cannot be cancelled (already done, or not
-- cancellable): Google's 400 FAILED_PRECONDITION.
local function not_cancellable(err)
  return is(err, "HttpError") and err.code == 400 and err.status == "FAILED_PRECONDITION"
end

-- A cancel ended: accepted (and, with wait, pending), refused as not cancellable (skipped, not
-- waited for), or failed.
local function on_cancel(f, r, name)
  local summary = f.summary
  if r.ok then
    summary.cancelled = summary.cancelled + 1
    if f.pending then
      f.pending[name] = true
      f.npending = f.npending + 1
    end
  elseif not_cancellable(r.error) then
    skip(f, name, SKIP.failed_precondition, r.error)
  else
    summary.failed[#summary.failed + 1] = { name = name, error = r.error }
    if is(r.error, "TimeoutError") and f.deadline:expired() then f.timed_out = true end
  end
end

-- Fills the window: the next page once this one is all dispatched (one page in memory, besides
-- the window), then the page's cancels.
local function dispatch(f, pages)
  local win = f.win
  if f.more and not f.lister and (not f.page or f.pi >= #f.page) and not win:full() then
    f.page, f.reqs, f.lister = nil, nil, true
    win:start(pages, LISTER)
  end
  if f.page and f.pi < #f.page and not win:full() then win:begin() end
  while f.page and f.pi < #f.page and not win:full() do
    local i = f.pi + 1
    f.pi = i
    win:send(f.reqs[i], f.page[i])
  end
end

-- Lists the parent page by page and cancels what each page gives, until the listing ends and
-- every cancel has; raises the listing's failure, or a TimeoutError when the deadline cut cancels.
local function cancel_phase(f)
  local lo = raw_copy(f.ro) -- the listing: the filter, the page size asked
  lo.filter, lo.page_size = f.filter, f.page_size
  -- its pages read for the names only, in C: the operations listed are {name = s} (csrc/json.c,
  -- vx_pushpagenames; a page it cannot read exactly as the decoder would is decoded and checked whole)
  f.ctx.names_only = true
  local pages = f.client:_pages(f.parent, f.region, lo, f.ctx)
  f.page, f.reqs, f.pi = nil, nil, 0 -- the names of the page being dispatched, their requests, the last one sent
  f.lister, f.more = false, true
  local win = window(f.client, f.size, function(r, tag)
    if tag == LISTER then on_page(f, r) else on_cancel(f, r, tag) end
  end, f.ro, f.ctx)
  f.win = win
  win:guard(function()
    while true do
      dispatch(f, pages)
      if win.n == 0 and not f.more and not (f.page and f.pi < #f.page) then break end
      if win:step() > 0 then report_cancel(f) elseif win.n > 0 then win:block() end
    end
  end)
  f.ctx.names_only = nil -- the wait's listings read each operation whole
  local summary = f.summary
  summary.requests, summary.elapsed = f.ctx.requests, f.clock() - f.start
  report_cancel(f)
  if f.list_err then rethrow(f.list_err, { summary = summary }) end
  if f.timed_out then
    raise("TimeoutError", string_format("cancel_all: the %g s timeout passed before every "
      .. "listed operation was cancelled (%d listed, %d cancelled, %d failed, %d skipped)", f.timeout,
      summary.listed, summary.cancelled, #summary.failed, #summary.skipped), { summary = summary })
  end
end

-- cancel_all: the wait -----------------------------------------------------------------------------
-- Rounds until every operation in f.pending (name -> true, or the round that last listed it) has
-- ended or the deadline passes. Each round either lists the parent (every page, or until nothing
-- is pending) or GETs each pending operation (window-bounded), whichever costs fewer requests: a
-- listing costs its page count (known after one full listing; before, at least the cancel
-- phase's), a GET round one request per operation.

local function report_wait(f)
  local w = f.w
  if f.progress then
    f.progress { phase = "wait", pending = f.npending, cancelled = #w.cancelled, completed = #w.completed,
                 failed = #w.failed, rounds = w.rounds, requests = f.ctx.requests, elapsed = f.clock() - f.start }
  end
end

-- name is no longer pending: entry goes into list (wait.cancelled, .completed or .failed).
local function settle(f, name, list, entry)
  f.pending[name] = nil
  f.npending = f.npending - 1
  list[#list + 1] = entry
end

-- A pending operation seen done, by how it ended.
local function ended(f, op)
  local name, w, shape = op.name, f.w, f.shape
  local err = not shape.cancelled(op) and shape.error(op)
  if shape.cancelled(op) then
    settle(f, name, w.cancelled, name)
  elseif err then
    settle(f, name, w.failed, { name = name, error = err })
  else
    settle(f, name, w.completed, name)
  end
end

-- A GET ended: the operation done (settled), still running, or why its outcome cannot be read
-- (failed). Past the deadline a TimeoutError leaves it running.
local function on_get(f, r, name)
  if r.ok then
    local ok, op = pcall(f.shape.check, r.results[2], f.shape.what(name))
    if not ok then
      settle(f, name, f.w.failed, { name = name, error = op })
    elseif f.shape.done(op) then
      op.name = name
      ended(f, op)
    end
  elseif not (is(r.error, "TimeoutError") and f.deadline:expired()) then
    settle(f, name, f.w.failed, { name = name, error = r.error })
  end
end

-- How this round asks: "auto" GETs when that costs no more than a listing's pages, or when the
-- last complete listing left some pending names out.
local function round_by(f)
  local by = f.wait_by
  if by == "auto" then by = (f.force_get or f.npending <= (f.est or f.summary.pages)) and "get" or "list" end
  f.force_get = false
  return by
end

-- The pending names a page shows: each marked listed this round (a name the listing repeats
-- counts once a round), settled when done. Returns how many were marked.
local function mark_listed(f, ops)
  local pending, round, marked = f.pending, f.w.rounds, 0
  for i = 1, #ops do
    local op = ops[i]
    local mark = pending[op.name]
    if mark then
      if mark ~= round then
        pending[op.name] = round
        marked = marked + 1
      end
      if f.shape.done(op) then ended(f, op) end
    end
  end
  return marked
end

-- A round by listing: every page, or until nothing is pending. A complete listing gives the page
-- count the next rounds weigh against, and sends the next round to GETs when some pending names
-- were not listed at all (deleted?). The deadline ends the round; another failure raises.
local function list_round(f)
  local w, ctx = f.w, f.ctx
  local before = ctx.requests
  local pages = f.client:_pages(f.parent, f.region, f.wait_lo, ctx)
  local at_start, marked, n, complete = f.npending, 0, 0, false
  while true do
    local ok, page = host.pcall(pages)
    if not ok then
      if is(page, "TimeoutError") and f.deadline:expired() then break end
      w.list_requests = w.list_requests + ctx.requests - before
      rethrow(page, { summary = f.summary })
    end
    if not page then
      complete = true
      break
    end
    n = n + 1
    marked = marked + mark_listed(f, page.operations)
    report_wait(f)
    if f.npending == 0 then break end
    if not page.next_page_token then
      complete = true
      break
    end
  end
  if complete then f.est, f.force_get = n, marked < at_start end
  w.list_requests = w.list_requests + ctx.requests - before
end

-- A round by GETs: one per pending operation, through the window.
local function get_round(f, win)
  local before = f.ctx.requests
  local names = {}
  for name in next, f.pending do names[#names + 1] = name end
  win:run(#names, function(i)
    local name = names[i]
    local ok, req = pcall(core.build, "get", name, f.region, f.ro)
    if ok then
      win:start(runner(f.client, f.ro, req, f.ctx), name)
    else
      settle(f, name, f.w.failed, { name = name, error = req })
    end
  end, function() report_wait(f) end)
  f.w.get_requests = f.w.get_requests + f.ctx.requests - before
end

local function raise_running(f)
  local running = {}
  for name in next, f.pending do running[#running + 1] = name end
  f.w.running = running
  local summary, elapsed = f.summary, f.clock() - f.start
  summary.requests, summary.elapsed = f.ctx.requests, elapsed
  raise("TimeoutError", string_format("cancel_all: %d of the cancelled operations were "
    .. "still running after %.1f s (%d requests)", #running, elapsed, f.ctx.requests), { summary = summary })
end

local function wait_all(f)
  local w = { cancelled = {}, completed = {}, failed = {}, rounds = 0, list_requests = 0, get_requests = 0 }
  f.summary.wait, f.w = w, w
  local lo = raw_copy(f.ro) -- the listing: every operation of the parent, the largest pages
  lo.filter, lo.page_token, lo.page_size = nil, nil, f.page_size
  f.wait_lo, f.est, f.force_get = lo, nil, false
  local poll = options.policy(f.ro, "polling", options.POLLING)
  local delay = poll.initial_delay
  local start_requests = f.ctx.requests
  local win = window(f.client, f.size, function(r, name) on_get(f, r, name) end, f.ro, f.ctx)
  while f.npending > 0 do
    if f.deadline:expired() then break end
    w.rounds = w.rounds + 1
    if round_by(f) == "list" then list_round(f) else get_round(f, win) end
    report_wait(f)
    if f.npending > 0 then
      local remaining = f.deadline:left()
      if remaining <= 0 then break end
      host.sleep_for(f.ro, math_min(delay, remaining))
      delay = math_min(delay * poll.multiplier, poll.max_delay)
    end
  end
  w.requests = f.ctx.requests - start_requests
  if f.npending > 0 then raise_running(f) end
end

--- cancel_all(parent, region, opts) -> summary. Cancels every operation the listing of parent
--- gives (opts.filter, default "done=false"), at most opts.max_in_flight requests at a time; with
--- opts.wait = true, then waits until each has ended. The summary: listed (distinct names listed;
--- an entry without a name counts once each), cancelled (cancels the service accepted), failed
--- ({name = , error = } per cancel that failed, and per listed entry without a name or with a name
--- the grammar refuses: ResponseTypeError), skipped ({name = , reason = [, error = ]} per name
--- not cancelled and not a failure: "outside_parent", another project's or location's name, and
--- "no_cancel_method", a shape without :cancel, both never sent; "failed_precondition", a cancel
--- answered 400 FAILED_PRECONDITION, with its error), duplicates (entries repeating a name already
--- listed: not cancelled again), pages, requests, elapsed; listed == cancelled + #failed + #skipped.
--- opts.dry_run = true lists and sends no cancel: cancelled is 0, would_cancel the names a sweep
--- would cancel, dry_run = true, and listed == #would_cancel + #failed + #skipped (with wait: ValueError).
--- With wait: wait = {cancelled = names that ended CANCELLED, completed = names that
--- completed anyway, failed = {name, error} (OperationError: ended with another error; or why its
--- outcome could not be read), rounds, requests, list_requests, get_requests}.
--- A failed listing raises its error, the deadline (opts.timeout, for the whole call) a
--- TimeoutError; either carries the summary so far as err.summary (with wait.running: the names
--- still running). opts.progress(counts) is called as it goes: {phase = "cancel" ("list" on a dry
--- run), listed, cancelled, failed, skipped, would_cancel (dry run), in_flight, listing, requests,
--- elapsed}, then with wait {phase = "wait", pending, cancelled, completed, failed, rounds, ...}.
function Client:cancel_all(parent, region, opts)
  local o = self:_options(opts)
  local ob = observe(self, o)
  if ob then -- hooks: on_call around the whole call (each request's attempts fire on_attempt)
    local st = ob:call_start("cancel_all", parent, region)
    local ok, res = host.pcall(self._cancel_all, self, o, parent, region)
    local summary = ok and res or type(res) == "table" and res.summary or nil
    ob:call_end(st, ok, not ok and res or nil, nil, summary and summary.requests or 0)
    if not ok then error(res, 0) end
    return res
  end
  return self:_cancel_all(o, parent, region)
end

function Client:_cancel_all(o, parent, region)
  local f = new_run(self, o, parent, region)
  cancel_phase(f)
  if f.wait then wait_all(f) end
  local summary = f.summary
  summary.requests, summary.elapsed = f.ctx.requests, f.clock() - f.start
  return summary
end

return Client
