-- vertexops.options: the options of a call -- defaults, the environment, raw copies, merging.
--
-- An option is checked in C (csrc/request.c, vx_checkoptions: TypeError or ValueError for a bad
-- one, before any I/O), given its default here, and used where it belongs (ARCHITECTURE.md, "How
-- to add an option"). The environment is read here and nowhere else, except the credentials
-- chain's own variables (lua/vertexops/auth.lua).
local core = require "vertexops.core"
local raise = require("vertexops.errors").raise

local getmetatable, ipairs, next, setmetatable, type = getmetatable, ipairs, next, setmetatable, type
local os_getenv = os.getenv

local M = {}

-- Defaults of the contract (docs/contract.md).
-- api_version: the REST version in every URL, "v1beta1" (the Workflows connector's) or "v1" (GA);
-- core.build uses the same default when a call's options name none.
M.DEFAULTS = { timeout = 1800, request_timeout = 60, connect_timeout = 10, api_version = "v1beta1" }
-- The cosocket transport's connection pools (lua/vertexops/cosocket.lua): connections kept idle
-- per pool (nginx's lua_socket_pool_size), connects queued when the pool is full (pool_backlog,
-- none by default: past pool_size connections are opened and closed after use), idle seconds.
M.POOL = { pool_size = 30, pool_backlog = nil, keepalive_timeout = 60,
           -- transport "thread": exchanges on worker threads at once per nginx worker (the
           -- default of lua_worker_thread_vm_pool_size); more wait their turn (host.thread_exchange)
           thread_pool_size = 100 }
M.RETRY = { max_retries = 5, initial_delay = 1, multiplier = 1.25, max_delay = 60 }
M.POLLING = { initial_delay = 1, multiplier = 1.25, max_delay = 60 }
-- cancel_all (lua/vertexops/fleet.lua): what it lists (filter), how many requests it keeps in
-- flight, the page size it asks for, how it waits with wait = true (bench/RESULTS.md, "Fleet").
M.CANCEL_ALL = { filter = "done=false", max_in_flight = 100, page_size = 1000, wait = false, wait_by = "auto" }

-- Options the environment gives when a call's options do not: option -> variable.
M.ENV = { endpoint = "VERTEXOPS_ENDPOINT", user_project = "GOOGLE_CLOUD_QUOTA_PROJECT" }

--- apply_env(o): fills the options of M.ENV that o lacks from the environment (an empty variable
--- counts as unset), checked like the caller's own. Returns o.
---@param o vertexops.Options
---@return vertexops.Options
function M.apply_env(o)
  for key, var in next, M.ENV do
    if o[key] == nil then
      local v = os_getenv(var)
      if v and v ~= "" then
        core.check_options { [key] = v }
        o[key] = v
      end
    end
  end
  return o
end

-- A caller's options table is read with raw reads only (next, never pairs or __index: on Lua 5.4
-- pairs honours __pairs), copied with its retry, polling and scopes tables, and checked: what is
-- validated is exactly what is used. Provider objects and functions are kept as they are.

--- raw_copy(t) -> a shallow copy of t made with raw reads (next: no __index, no __pairs).
local function raw_copy(t)
  local c = {}
  for k, v in next, t do c[k] = v end
  return c
end
M.raw_copy = raw_copy

local function type_error(message) raise("TypeError", message) end

-- Clock functions that check what the caller's clock returns (made by copy).
local checked_clocks = setmetatable({}, { __mode = "k" })

--- copy(opts) -> a checked copy of opts (nil for nil); raises TypeError or ValueError.
---@param opts? vertexops.Options
---@return vertexops.Options?
function M.copy(opts)
  if type(opts) ~= "table" then
    core.check_options(opts) -- nil passes; anything else raises TypeError
    return nil
  end
  local o = raw_copy(opts)
  for _, k in ipairs { "retry", "polling", "scopes" } do
    if type(o[k]) == "table" then o[k] = raw_copy(o[k]) end
  end
  core.check_options(o)
  local cred = o.credentials
  if type(cred) == "table" and getmetatable(cred) ~= require("vertexops.auth").Provider then
    type_error("option 'credentials' must be a key file path or a provider from vertexops.auth.provider, "
      .. "got a table that is not one")
  end
  local clock = o.clock
  if clock and not checked_clocks[clock] then -- every deadline is arithmetic on what the clock returns
    o.clock = function()
      local t = clock()
      if type(t) ~= "number" or t ~= t then
        type_error("the clock function returned " .. (t ~= t and "NaN" or type(t)) .. ", not a number")
      end
      return t
    end
    checked_clocks[o.clock] = true
  end
  return o
end

local copy = M.copy

-- A client's options merged with a call's (the call's win); retry and polling tables merge by key.
---@param base vertexops.Options already checked
---@param over? vertexops.Options checked here
---@return vertexops.Options # base itself when over is nil
function M.merge(base, over)
  if over == nil then return base end
  over = copy(over)
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
---@param o vertexops.Options
---@param key "retry"|"polling"
---@param defaults vertexops.RetryPolicy|vertexops.PollingPolicy
---@return vertexops.RetryPolicy|false
function M.policy(o, key, defaults)
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

return M
