-- vertexops.wait: waiting for an operation to end -- :wait long-polls or GET polling (the
-- strategy), the polling delays, the deadline -- and cancel_and_wait. Methods of Client.
local core = require "vertexops.core"
local options = require "vertexops.options"
local retry = require "vertexops.retry"
local host = require "vertexops.host"
local operation = require "vertexops.operation"
local job = require "vertexops.job"
local Client = require "vertexops.client"
local deadlines = require "vertexops.deadline"
local observe = require("vertexops.hooks").observe

local error = error
local math_min, math_max = math.min, math.max
local string_format = string.format
local is = core.is

local raise = require("vertexops.errors").raise

-- How the "auto" and "server" strategies long-poll (docs/contract.md, "Waiting"):
local SERVER_WAIT_MAX = 50 -- seconds asked of one :wait (the service's own limit is 60)
local SERVER_WAIT_MIN_LEFT = 2 -- a :wait only while more than this remains of the timeout; then GETs
local SERVER_WAIT_MARGIN = 1 -- a :wait asks this much less than remains: its answer comes before the deadline
local SERVER_WAIT_SLACK = 10 -- a :wait's exchange may last what it asked plus this (the trip, a slow answer)
local SERVER_WAIT_HELD = 0.9 -- a :wait that held this share of what it asked goes again at once

-- What is waited for, by the kind of its built request (csrc/jobs.c): an Operation (also a publisher
-- model's, read with fetchPredictOperation: operation.shape), or a job (job.lua), done when its
-- state is terminal.
local OPERATION = operation.shape
local SHAPES = { job = job }

-- The shape of what the request built for name reads, and whether waiting on it long-polls with
-- :wait: not with strategy "poll", nor on jobs and publisher models' operations, nor on a shape
-- Google defines without :wait (core.shape, csrc/methods.h), where "auto" polls with GET and
-- "server" is a ValueError (before any I/O).
local function shape_of(req, o, name)
  local strategy = o.strategy or options.DEFAULTS.strategy
  if req.kind then
    if strategy == "server" then
      raise("ValueError", string_format("strategy \"server\" needs a :wait method, and %s have none: "
        .. "use \"auto\" or \"poll\" (they are polled)", req.kind == "job" and "jobs" or "operations of publisher models"))
    end
    return SHAPES[req.kind] or OPERATION, false
  end
  if strategy == "poll" then return OPERATION, false end
  local shape, calls = core.shape(name, o.api_version)
  if calls.wait then return OPERATION, true end
  if strategy == "server" then
    raise("ValueError", string_format('strategy "server" needs a :wait method and %s has none in %s: '
      .. 'use strategy "auto" or "poll" (GET polling)', shape, o.api_version or options.DEFAULTS.api_version))
  end
  return OPERATION, false
end

-- Polls until the operation is done or the deadline passes; returns the final operation, whatever
-- its outcome. deadline: the call's (deadline.for_call(o)), its start what elapsed counts from.
---@param o vertexops.Options
---@param name string
---@param region? string
---@param deadline vertexops.Deadline
---@return vertexops.Operation op
---@return table ctx {deadline, rules, requests}
function Client:_wait(o, name, region, deadline, ctx)
  local strategy = o.strategy or options.DEFAULTS.strategy
  local clock, start = deadline:clock(), deadline:start()
  local timeout = o.timeout or options.DEFAULTS.timeout
  local poll = options.policy(o, "polling", options.POLLING)
  local get_req = self:_build("get", name, region, o)
  local shape, has_wait = shape_of(get_req, o, name)
  ctx = ctx or {}
  ctx.deadline, ctx.rules, ctx.requests = deadline, "GET", ctx.requests or 0
  local ob, round = observe(self, o), 0 -- hooks: on_poll after each round
  local progress = o.progress
  local use_server = has_wait
  local delay = poll.initial_delay
  local op, last_err
  while true do
    local remaining = deadline:left()
    local ok, res, asked, t0
    if use_server and remaining > SERVER_WAIT_MIN_LEFT then
      asked = math_min(SERVER_WAIT_MAX, remaining - SERVER_WAIT_MARGIN)
      ctx.request_timeout = asked + SERVER_WAIT_SLACK
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
    local asked_after -- seconds the service asked us to wait (Retry-After, RetryInfo)
    round = round + 1
    if ok then
      op = shape.check(res, shape.what(name))
      if progress then progress(op, { elapsed = now - start, requests = ctx.requests, strategy = strategy }) end
      if shape.done(op) then
        if ob then ob:poll(name, round, true, nil) end
        return op, ctx, shape
      end
    elseif retry.retryable("GET", res) then -- the GET rules include TimeoutError
      last_err = res -- transient: keep waiting while time remains
      -- what the service asked for: on the failure itself (retries spent), or on the one that made
      -- Client:_run give up because the next retry would start past the deadline
      local asked_by = res
      if not retry.retry_after(res) and is(res, "TimeoutError") then asked_by = res.cause end
      asked_after = retry.retry_after(asked_by)
      if asked_after and deadline:within(asked_after) then -- as every call does: no retry past the deadline
        raise("TimeoutError", string_format("%s was not done after %.1f s (%d requests): the service "
          .. "asked to retry after %g s, past the %g s timeout (last failure: %s)", shape.what(name), now - start,
          ctx.requests, asked_after, timeout, tostring(asked_by)),
          { operation = op, elapsed = now - start, requests = ctx.requests, cause = asked_by })
      end
    else
      error(res, 0)
    end
    remaining = deadline:left()
    if remaining <= 0 then
      raise("TimeoutError", string_format("%s was not done after %.1f s (%d requests)%s", shape.what(name),
        now - start, ctx.requests, last_err and not ok and "; last failure: " .. tostring(last_err) or ""),
        { operation = op, elapsed = now - start, requests = ctx.requests, cause = not ok and last_err or nil })
    end
    -- A :wait that held for (nearly) what was asked goes again at once; anything else -- a poll, a
    -- :wait that answered early, a failure -- pauses for the polling delay, so a server that
    -- answers at once can never cause a request storm.
    if not (ok and asked and now - t0 >= asked * SERVER_WAIT_HELD) then
      local pause = math_min(math_max(delay, asked_after or 0), remaining) -- never sooner than asked
      if ob then ob:poll(name, round, false, pause) end
      host.sleep_for(o, pause)
      delay = math_min(delay * poll.multiplier, poll.max_delay)
    elseif ob then
      ob:poll(name, round, false, 0)
    end
  end
end

--- wait(name, region, opts): polls until the operation is done, within opts.timeout. Returns the
--- final operation; raises OperationError when it finished with an error, TimeoutError past the deadline.
---@param name string
---@param region? string
---@param opts? vertexops.Options timeout, strategy, polling, progress, ...
---@return vertexops.Operation
function Client:wait(name, region, opts)
  local o = self:_options(opts)
  local ob = observe(self, o)
  if ob then -- hooks: on_call around the whole wait
    local ctx, st = {}, ob:call_start("wait", name, region)
    local done, op, _, shape = host.pcall(self._wait, self, o, name, region, deadlines.for_call(o), ctx)
    local err = done and shape.error(op) or (not done and op) or nil
    ob:call_end(st, err == nil, err, ctx, ctx.requests)
    if err then error(err, 0) end
    return op
  end
  local op, _, shape = self:_wait(o, name, region, deadlines.for_call(o))
  local err = shape.error(op)
  if err then error(err, 0) end
  return op
end

--- cancel_and_wait(name, region, opts) -> operation, cancelled. cancelled is true when the operation
--- ended CANCELLED (operation.CANCELLED), false when it completed anyway; any other error raises OperationError.
---@param name string
---@param region? string
---@param opts? vertexops.Options
---@return vertexops.Operation operation
---@return boolean cancelled
function Client:cancel_and_wait(name, region, opts)
  local o = self:_options(opts)
  local ob = observe(self, o)
  if ob then -- hooks: on_call around the whole call
    local ctx, st = {}, ob:call_start("cancel_and_wait", name, region)
    local done, op, cancelled = host.pcall(self._cancel_and_wait, self, o, name, region, ctx)
    ob:call_end(st, done, not done and op or nil, ctx, ctx.requests)
    if not done then error(op, 0) end
    return op, cancelled
  end
  return self:_cancel_and_wait(o, name, region)
end

function Client:_cancel_and_wait(o, name, region, ctx)
  ctx = ctx or {}
  local deadline = deadlines.for_call(o)
  local cancel_req = self:_build("cancel", name, region, o)
  shape_of(cancel_req, o, name) -- strategy "server" where there is no :wait: ValueError before the cancel
  ctx.deadline, ctx.requests = deadline, 0
  local ok, res = self:_run(o, cancel_req, ctx)
  if not ok then error(res, 0) end
  local op, _, shape = self:_wait(o, name, region, deadline, ctx)
  if shape.cancelled(op) then return op, true end
  local err = shape.error(op)
  if err then error(err, 0) end
  return op, false
end

return Client
