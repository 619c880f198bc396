-- vertexops.options: the options of a call -- defaults, the environment, raw copies, merging.
--
-- An option is one entry of the schema (csrc/options.c, core.OPTIONS: name, type, range, default,
-- environment variable, doc line); C checks it from there (vx_checkoptions: TypeError or ValueError
-- for a bad one, before any I/O), its default and variable are read from there below, and it is
-- used where it belongs (ARCHITECTURE.md, "How to add an option"). The environment is read here
-- and nowhere else, except the credentials chain's own variables (lua/vertexops/auth.lua).
local core = require "vertexops.core"
local raise = require("vertexops.errors").raise

local getmetatable, ipairs, next, setmetatable, type = getmetatable, ipairs, next, setmetatable, type
local os_getenv = os.getenv

local M = {}

--- read_schema(schema [, planned]) -> what the Lua front takes from an option schema (core.OPTIONS:
--- csrc/options.c, the one table of every option's name, type, range, default, environment variable
--- and doc line). Entries marked planned (kinds open issues add) count only when planned is true.
---   defaults: option -> its plain default (a number, string or boolean)
---   fields:   option -> the defaults of its fields (retry, polling: a policy)
---   env:      option -> the environment variable that supplies it, checked like the option
---   env_values: option -> {var, choices}: a variable of another type than its option's (a level
---             for a log function); its feature converts the value
---   merge:    option -> true: a call's table merges with its client's field by field
---   copy:     option -> true: a table value is copied with raw reads before it is checked
---@param schema table[]
---@param planned? boolean
---@return table
function M.read_schema(schema, planned)
  local r = { defaults = {}, fields = {}, env = {}, env_values = {}, merge = {}, copy = {} }
  for _, e in ipairs(schema) do
    if planned or not e.planned then
      if e.type == "fields" then r.fields[e.name] = e.default
      else r.defaults[e.name] = e.default end
      if e.env and e.env_choices then r.env_values[e.name] = { var = e.env, choices = e.env_choices }
      elseif e.env then r.env[e.name] = e.env end
      r.merge[e.name] = e.merge or nil
      r.copy[e.name] = e.copy or nil
    end
  end
  return r
end

local schema = M.read_schema(core.OPTIONS)
local D = schema.defaults

-- Defaults of the contract (docs/contract.md), from the schema: every option's plain default
-- (timeout, request_timeout = core.EXCHANGE_TIMEOUT, connect_timeout = core.CONNECT_TIMEOUT,
-- api_version: the REST version in every URL, which core.build defaults alike, ...).
M.DEFAULTS = D
-- The cosocket transport's connection pools (lua/vertexops/cosocket.lua): connections kept idle
-- per pool (nginx's lua_socket_pool_size), connects queued when the pool is full (pool_backlog,
-- none by default: past pool_size connections are opened and closed after use), idle seconds.
M.POOL = { pool_size = D.pool_size, pool_backlog = D.pool_backlog, keepalive_timeout = D.keepalive_timeout,
           -- transport "thread": exchanges on worker threads at once per nginx worker (the
           -- default of lua_worker_thread_vm_pool_size); more wait their turn (host.thread_exchange)
           thread_pool_size = D.thread_pool_size }
M.RETRY = schema.fields.retry
M.POLLING = schema.fields.polling
-- cancel_all (lua/vertexops/fleet.lua): what it lists (filter) and the page size it asks for (its
-- own defaults, not the options'), how many requests it keeps in flight, how it waits with
-- wait = true (bench/RESULTS.md, "Fleet").
M.CANCEL_ALL = { filter = "done=false", max_in_flight = D.max_in_flight, page_size = 1000, wait = D.wait,
                 wait_by = D.wait_by }

local PAIRED_ENV

-- Options the environment gives when a call's options do not: option -> variable. (A variable of
-- another type than its option's, schema.env_values, comes with the feature that converts it.)
M.ENV = schema.env
-- Options whose tables merge field by field (retry, polling), and those copied (with scopes).
local MERGE, COPY = schema.merge, schema.copy

--- apply_env(o): fills the options of M.ENV that o lacks from the environment (an empty variable
--- counts as unset), checked like the caller's own. Returns o.
---@param o vertexops.Options
---@return vertexops.Options
function M.apply_env(o)
  for key in next, M.ENV do
    if o[key] == nil then o[key] = M.env(key) end
  end
  for key, vars in next, PAIRED_ENV do
    if o[key] == nil then o[key] = M.paired_env(key, vars) end
  end
  return o
end

-- Options read from one of two variables, the lower-case one first (as curl and Go read them):
-- proxy (https_proxy, HTTPS_PROXY), no_proxy (no_proxy, NO_PROXY). ALL_PROXY is not read: only
-- http:// proxies that tunnel with CONNECT are supported (lua/vertexops/proxy.lua).
PAIRED_ENV = { proxy = { "https_proxy", "HTTPS_PROXY" }, no_proxy = { "no_proxy", "NO_PROXY" } }
M.PAIRED_ENV = PAIRED_ENV

--- paired_env(key, vars) -> the value of the first of vars set and not empty, checked like the
--- option (a bad proxy URL is a ValueError naming the variable, never showing its value).
---@param key string
---@param vars string[]
---@return string?
function M.paired_env(key, vars)
  for i = 1, #vars do
    local v = os_getenv(vars[i])
    if v and v ~= "" then
      core.check_options { [key] = v }
      if key == "proxy" then require("vertexops.proxy").parse(v, "environment variable " .. vars[i]) end
      return v
    end
  end
end

--- env(key) -> the value the environment gives option key (nil when its variable is unset or
--- empty), checked like the option.
---@param key string
---@return string?
function M.env(key)
  local var = M.ENV[key]
  local v = var and os_getenv(var)
  if v and v ~= "" then
    core.check_options { [key] = v }
    return v
  end
end

-- A caller's options table is read with raw reads only (next, never pairs or __index: on Lua 5.4
-- pairs honours __pairs), copied with its retry, polling and scopes tables (COPY), and checked: what is
-- validated is exactly what is used. Provider objects and functions are kept as they are.

--- raw_copy(t) -> a shallow copy of t made with raw reads (next: no __index, no __pairs).
local function raw_copy(t)
  local c = {}
  for k, v in next, t do c[k] = v end
  return c
end
M.raw_copy = raw_copy

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
  for k in next, COPY do
    if type(o[k]) == "table" then o[k] = raw_copy(o[k]) end
  end
  core.check_options(o)
  local cred = o.credentials
  if type(cred) == "table" and getmetatable(cred) ~= require("vertexops.auth").Provider then
    raise("TypeError", "option 'credentials' must be a key file path or a provider from vertexops.auth.provider, "
      .. "got a table that is not one")
  end
  if o.proxy ~= nil and o.proxy ~= "" then require("vertexops.proxy").parse(o.proxy, "option 'proxy'") end
  local clock = o.clock
  if clock and not checked_clocks[clock] then -- every deadline is arithmetic on what the clock returns
    o.clock = function()
      local t = clock()
      if type(t) ~= "number" or t ~= t then
        raise("TypeError", "the clock function returned " .. (t ~= t and "NaN" or type(t)) .. ", not a number")
      end
      return t
    end
    checked_clocks[o.clock] = true
  end
  return o
end

local copy = M.copy

-- A client's options merged with a call's (the call's win); retry and polling tables (MERGE) merge by key.
---@param base vertexops.Options already checked
---@param over? vertexops.Options checked here
---@return vertexops.Options # base itself when over is nil
function M.merge(base, over)
  if over == nil then return base end
  over = copy(over)
  local o = {}
  for k, v in next, base do o[k] = v end
  for k, v in next, over do
    if k == "hooks" and base.hooks then
      o.hooks = require("vertexops.hooks").chain(base.hooks, v) -- both run, the client's first
    elseif MERGE[k] and type(v) == "table" and type(base[k]) == "table" then
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
