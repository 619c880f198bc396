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
local Client = require "vertexops.client"
local Request = require "vertexops.request" -- also Client:_start, _perform, _multi

local error, next, pcall, rawget, setmetatable, tonumber, tostring, type =
  error, next, pcall, rawget, setmetatable, tonumber, tostring, type
local math_min = math.min
local math_type = math.type -- Lua 5.3+ (nil on LuaJIT)
local coroutine_yield = coroutine.yield
local string_format = string.format
local is = core.is

local raise = require("vertexops.errors").raise

local DEFAULTS = options.CANCEL_ALL
local OWN = { progress = true, wait = true, wait_by = true, max_in_flight = true }

-- A window: the requests of one bulk call in flight, at most `size` of them. Each is a request
-- run by Client:_start with a tag (what it is for); step() moves them all and hands each finished
-- one to on_done(request, tag).
local Window = {}
Window.__index = Window

local function window(client, size, on_done)
  return setmetatable({ client = client, size = size, n = 0, reqs = {}, tags = {}, on_done = on_done }, Window)
end

function Window:full() return self.n >= self.size end

function Window:start(fn, tag)
  local r = self.client:_start(fn)
  if r.done then return self.on_done(r, tag) end
  local n = self.n + 1
  self.n, self.reqs[n], self.tags[n] = n, r, tag
end

-- One perform for every transfer, then each finished request handed over; returns how many.
function Window:step()
  self.client:_perform(true)
  local reqs, tags, finished = self.reqs, self.tags, 0
  local k = self.n
  while k >= 1 do
    local r = reqs[k]
    if r:_advance() then
      local tag, n = tags[k], self.n
      reqs[k], tags[k] = reqs[n], tags[n]
      reqs[n], tags[n] = nil, nil
      self.n = n - 1
      finished = finished + 1
      self.on_done(r, tag)
    end
    k = k - 1
  end
  return finished
end

-- true when one of the requests can move on (a transfer finished, a retry's sleep ended).
function Window:ready()
  local reqs = self.reqs
  for k = 1, self.n do
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
  Request.block(self.client, self.reqs, self.n)
end

-- Runs start(i) for i = 1 .. n, keeping the window full, until every request has finished;
-- after a step that finished some, stepped() (when given).
function Window:run(n, start, stepped)
  local i = 0
  while true do
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

-- What a window request runs: req with the retry policy (Client:_run), its failure raised.
local function runner(client, o, req, ctx)
  return function()
    local ok, res = client:_run(o, req, ctx)
    if not ok then error(res, 0) end
    return res
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

-- Every name checked before any I/O, each request built once.
local function build_cancels(names, region, o)
  local reqs = {}
  for i = 1, #names do
    local ok, req = pcall(core.build, "cancel", names[i], region, o)
    if not ok then
      if type(req) == "table" then req.message = string_format("names[%d]: %s", i, tostring(req.message)) end
      error(req, 0)
    end
    reqs[i] = req
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
  local results = {}
  local win = window(self, o.concurrency or 100, function(r, i)
    results[i] = r.ok and { ok = true } or { err = r.error }
  end)
  win:run(#reqs, function(i) win:start(runner(self, o, reqs[i]), i) end)
  return results
end

local function raise_with(err, summary)
  if type(err) == "table" then err.summary = summary end
  error(err, 0)
end

-- The wait of cancel_all: rounds until every operation in pending (name -> true) has ended or the
-- deadline passes. Each round either lists the parent (every page, or until nothing is pending)
-- or GETs each pending operation (window-bounded), whichever costs fewer requests: a listing
-- costs its page count (known after one full listing; before, at least the cancel phase's), a
-- GET round one request per operation.
local function wait_all(self, f)
  local w = { cancelled = {}, completed = {}, failed = {}, rounds = 0, list_requests = 0, get_requests = 0 }
  f.summary.wait = w
  local ro, ctx, pending = f.ro, f.ctx, f.pending
  local clock, deadline, progress = f.clock, f.deadline, f.progress
  local poll = options.policy(ro, "polling", options.POLLING)
  local delay = poll.initial_delay
  local lo = {} -- the listing: every operation of the parent, the largest pages
  for k, v in next, ro do lo[k] = v end
  lo.filter, lo.page_token, lo.page_size = nil, nil, f.page_size
  local est, force_get = nil, false
  local start_requests = ctx.requests

  local function report()
    if progress then
      progress { phase = "wait", pending = f.npending, cancelled = #w.cancelled, completed = #w.completed,
                 failed = #w.failed, rounds = w.rounds, requests = ctx.requests, elapsed = clock() - f.start }
    end
  end
  local function ended(op)
    local name = op.name
    pending[name] = nil
    f.npending = f.npending - 1
    if operation.cancelled(op) then
      w.cancelled[#w.cancelled + 1] = name
    elseif op.error then
      w.failed[#w.failed + 1] = { name = name, error = operation.error(op) }
    else
      w.completed[#w.completed + 1] = name
    end
  end

  local win = window(self, f.size, function(r, name)
    if r.ok then
      local ok, op = pcall(operation.check, r.results[2], operation.what(name))
      if not ok then
        pending[name] = nil
        f.npending = f.npending - 1
        w.failed[#w.failed + 1] = { name = name, error = op }
      elseif op.done then
        op.name = name
        ended(op)
      end
    elseif not (is(r.error, "TimeoutError") and clock() >= deadline) then -- past the deadline: still running
      pending[name] = nil
      f.npending = f.npending - 1
      w.failed[#w.failed + 1] = { name = name, error = r.error }
    end
  end)

  while f.npending > 0 do
    local remaining = deadline - clock()
    if remaining <= 0 then break end
    w.rounds = w.rounds + 1
    local by = f.wait_by
    if by == "auto" then by = (force_get or f.npending <= (est or f.summary.pages)) and "get" or "list" end
    force_get = false
    local before = ctx.requests
    if by == "list" then
      local pages = self:_pages(f.parent, f.region, lo, ctx)
      local at_start, seen, n, complete = f.npending, 0, 0, false
      while true do
        local ok, page = host.pcall(pages)
        if not ok then
          if is(page, "TimeoutError") and clock() >= deadline then break end
          w.list_requests = w.list_requests + ctx.requests - before
          raise_with(page, f.summary)
        end
        if not page then
          complete = true
          break
        end
        n = n + 1
        local ops = page.operations
        for i = 1, #ops do
          local op = ops[i]
          local mark = pending[op.name]
          if mark then
            if mark ~= w.rounds then -- a name the listing repeats counts once a round
              pending[op.name] = w.rounds
              seen = seen + 1
            end
            if op.done then ended(op) end
          end
        end
        report()
        if f.npending == 0 then break end
        if not page.next_page_token then
          complete = true
          break
        end
      end
      if complete then
        est = n
        force_get = seen < at_start -- some were not listed at all (deleted?): ask each
      end
      w.list_requests = w.list_requests + ctx.requests - before
    else
      local names = {}
      for name in next, pending do names[#names + 1] = name end
      local i = 0
      while true do
        while i < #names and not win:full() do
          i = i + 1
          local name = names[i]
          local ok, req = pcall(core.build, "get", name, f.region, ro)
          if ok then
            win:start(function()
              local done, res = self:_run(ro, req, ctx)
              if not done then error(res, 0) end
              return res
            end, name)
          else
            pending[name] = nil
            f.npending = f.npending - 1
            w.failed[#w.failed + 1] = { name = name, error = req }
          end
        end
        if win.n == 0 then break end
        if win:step() > 0 then report() else win:block() end
      end
      w.get_requests = w.get_requests + ctx.requests - before
    end
    report()
    if f.npending > 0 then
      remaining = deadline - clock()
      if remaining <= 0 then break end
      host.sleep_for(ro, math_min(delay, remaining))
      delay = math_min(delay * poll.multiplier, poll.max_delay)
    end
  end
  w.requests = ctx.requests - start_requests
  if f.npending > 0 then
    local running = {}
    for name in next, pending do running[#running + 1] = name end
    w.running = running
    f.summary.requests, f.summary.elapsed = ctx.requests, clock() - f.start
    raise_with(core.error({ "TimeoutError" }, string_format("cancel_all: %d of the cancelled operations were "
      .. "still running after %.1f s (%d requests)", #running, clock() - f.start, ctx.requests)), f.summary)
  end
end

--- cancel_all(parent, region, opts) -> summary. Cancels every operation the listing of parent
--- gives (opts.filter, default "done=false"), at most opts.max_in_flight requests at a time; with
--- opts.wait = true, then waits until each has ended. The summary: listed (distinct names listed;
--- an entry without a name counts once each), cancelled (cancels the service accepted), failed
--- ({name = , error = } per cancel that failed, and per listed entry without a name or with a name
--- the grammar refuses: ResponseTypeError), skipped ({name = , reason = "outside_parent"}: another
--- project's or location's names, never sent), duplicates (entries repeating a name already
--- listed: not cancelled again), pages, requests, elapsed; listed == cancelled + #failed + #skipped.
--- With wait: wait = {cancelled = names that ended CANCELLED, completed = names that
--- completed anyway, failed = {name, error} (OperationError: ended with another error; or why its
--- outcome could not be read), rounds, requests, list_requests, get_requests}.
--- A failed listing raises its error, the deadline (opts.timeout, for the whole call) a
--- TimeoutError; either carries the summary so far as err.summary (with wait.running: the names
--- still running). opts.progress(counts) is called as it goes.
function Client:cancel_all(parent, region, opts)
  local o = self:_options(opts)
  local ro = {} -- the options of each request: the caller's, less cancel_all's own
  for k, v in next, o do
    if not OWN[k] then ro[k] = v end
  end
  core.build("list", parent, region, ro) -- the parent and region are checked before any I/O
  local clock = o.clock or core.clock
  local start = clock()
  local deadline = start + (o.timeout or options.DEFAULTS.timeout)
  local lo = {}
  for k, v in next, ro do lo[k] = v end
  if lo.filter == nil then lo.filter = DEFAULTS.filter end
  lo.page_size = o.page_size or DEFAULTS.page_size
  local summary = { listed = 0, cancelled = 0, failed = {}, skipped = {}, duplicates = 0, pages = 0, requests = 0,
                    elapsed = 0 }
  local f = {
    summary = summary, ro = ro, ctx = { deadline = deadline, requests = 0 }, clock = clock, start = start,
    deadline = deadline, progress = o.progress, size = o.max_in_flight or DEFAULTS.max_in_flight,
    parent = parent, region = region, page_size = lo.page_size, wait_by = o.wait_by or DEFAULTS.wait_by,
    pending = nil, npending = 0,
  }
  local wait = o.wait
  if wait == nil then wait = DEFAULTS.wait end
  if wait then f.pending = {} end
  local ctx, pending, failed, progress = f.ctx, f.pending, summary.failed, f.progress

  -- What a page lists, sorted before anything is sent: each name once (a repeat counts in
  -- duplicates), names outside the parent skipped, entries the service should never have sent (no
  -- name, a name the grammar refuses) failed with a ResponseTypeError. Returns what to cancel: the
  -- names and their built requests.
  local pproject, plocation = parent:match("^projects/([^/]+)/locations/([^/]+)$")
  local number = pproject:match("^%d+$") -- the project number the service names operations with
  -- The names seen so far, as small keys (100,000 of them in a few MiB): a name of the parent by
  -- what follows its location -- the operation's id as an integer when that is exact, else the
  -- rest of the name from its '/' -- and any other name whole (it starts with "projects/").
  local seen, skipped = {}, summary.skipped
  local function key_of(rest)
    local id = rest:match("^/operations/([1-9]%d*)$")
    local n = id and #id <= 19 and tonumber(id)
    if n and (math_type and math_type(n) == "integer" or not math_type and n < 2 ^ 53) then return n end
    return rest
  end
  local function sort(ops, pageno)
    local names, reqs = {}, {}
    for i = 1, #ops do
      local name = ops[i].name
      local project, location, rest
      if name ~= nil then project, location, rest = name:match("^projects/([^/]+)/locations/([^/]+)(/.*)$") end
      -- the parent's own (the ID, the number, or the first number seen: see below) keyed by the rest
      local mine = location == plocation and (project == pproject or project == number
        or (not number and project:match("^%d+$") ~= nil))
      local key = mine and key_of(rest) or name
      if name == nil then
        summary.listed = summary.listed + 1
        failed[#failed + 1] = { name = nil, error = core.error({ "ResponseTypeError" }, string_format(
          "list response page %d operations[%d] has no name", pageno, i)) }
      elseif seen[key] then
        summary.duplicates = summary.duplicates + 1
      else
        seen[key] = true
        summary.listed = summary.listed + 1
        -- built with the name's own location: inside the parent that is the parent's (and region's)
        local ok, req = pcall(core.build, "cancel", name, nil, ro)
        if not ok then
          failed[#failed + 1] = { name = name, error = core.error({ "ResponseTypeError" }, string_format(
            "list response page %d operations[%d]: %s", pageno, i, type(req) == "table" and req.message
            or tostring(req)), { cause = req }) }
        elseif mine then
          -- Vertex names operations by project number while callers pass the ID: the number is the
          -- parent's own when given by number, else the first one the listing shows in its location
          if project ~= pproject and not number then number = project end
          local n = #names + 1
          names[n], reqs[n] = name, req
        else
          skipped[#skipped + 1] = { name = name, reason = "outside_parent" }
        end
      end
    end
    return names, reqs
  end

  local pages = self:_pages(parent, region, lo, ctx)
  local page, reqs, pi = nil, nil, 0 -- the names of the page being dispatched, their requests, the last one sent
  local lister, more, list_err = false, true, nil
  local timed_out = false
  local LISTER = {}
  local win = window(self, f.size, function(r, tag)
    if tag == LISTER then
      lister = false
      if r.ok then
        local pg = r.results[2]
        page, reqs, pi = nil, nil, 0
        more = pg ~= nil and pg.next_page_token ~= nil
        if pg then
          summary.pages = summary.pages + 1
          page, reqs = sort(pg.operations, summary.pages)
        end
      else
        list_err, more = r.error, false
      end
    elseif r.ok then
      summary.cancelled = summary.cancelled + 1
      if pending then
        pending[tag] = true
        f.npending = f.npending + 1
      end
    else
      failed[#failed + 1] = { name = tag, error = r.error }
      if is(r.error, "TimeoutError") and clock() >= deadline then timed_out = true end
    end
  end)
  local function report()
    if progress then
      progress { phase = "cancel", listed = summary.listed, cancelled = summary.cancelled, failed = #failed,
                 in_flight = win.n, listing = more, requests = ctx.requests, elapsed = clock() - start }
    end
  end

  while true do
    -- the next page once this one is all dispatched: one page in memory, besides the window
    if more and not lister and (not page or pi >= #page) and not win:full() then
      page, reqs, lister = nil, nil, true
      win:start(pages, LISTER)
    end
    while page and pi < #page and not win:full() do
      pi = pi + 1
      local name, req = page[pi], reqs[pi]
      win:start(function()
        local done, err = self:_run(ro, req, ctx)
        if not done then error(err, 0) end
        return true
      end, name)
    end
    if win.n == 0 and not more and not (page and pi < #page) then break end
    if win:step() > 0 then report() elseif win.n > 0 then win:block() end
  end
  summary.requests, summary.elapsed = ctx.requests, clock() - start
  report()
  if list_err then raise_with(list_err, summary) end
  if timed_out then
    raise_with(core.error({ "TimeoutError" }, string_format("cancel_all: the %g s timeout passed before every "
      .. "listed operation was cancelled (%d listed, %d cancelled, %d failed)", o.timeout or
      options.DEFAULTS.timeout, summary.listed, summary.cancelled, #failed)), summary)
  end
  if wait then wait_all(self, f) end
  summary.requests, summary.elapsed = ctx.requests, clock() - start
  return summary
end

return Client
