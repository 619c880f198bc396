-- vertexops: Vertex AI long-running operations from Lua, with the semantics of the Google Cloud
-- Workflows connector googleapis.aiplatform.v1beta1.projects.locations.operations.
--
-- The public surface: module functions on a default client, vertexops.client(opts), the error
-- helpers. Where things live (ARCHITECTURE.md has the whole map):
--   client.lua    a client and the life of one call (options -> token -> request -> exchange -> retry)
--   wait.lua      waiting for an operation: :wait long-polls, polling, cancel_and_wait
--   request.lua   the non-blocking API (client:start, poll) and cancel_many
--   options.lua   defaults, the environment, option copies     retry.lua   what is retried, backoff
--   host.lua      nginx / coroutine hosts, sleeping            auth.lua    the credentials chain
--   operation.lua Operation checks, OperationError             vertexops.core (csrc/)  the wire
-- The contract users rely on: docs/contract.md.
local core = require "vertexops.core"
local auth = require "vertexops.auth"
local options = require "vertexops.options"
local retry = require "vertexops.retry"
local host = require "vertexops.host"
local Client = require "vertexops.client"
require "vertexops.wait"
local Request = require "vertexops.request"

local error, getmetatable, ipairs, pcall, type = error, getmetatable, ipairs, pcall, type

local _M = { _VERSION = core.version, core = core, auth = auth, Client = Client, Request = Request }

_M.DEFAULTS, _M.RETRY, _M.POLLING = options.DEFAULTS, options.RETRY, options.POLLING
_M.backoff, _M.retry_after = retry.backoff, retry.retry_after
_M.sleep, _M.clock = host.sleep, core.clock
_M.is, _M.error_mt = core.is, core.error_mt

---@param tag string|string[] a tag, or a list of tags (most specific first)
---@param message string
---@param fields? table more fields of the error object
local function raise(tag, message, fields)
  error(core.error(type(tag) == "table" and tag or { tag }, message, fields), 0)
end
_M.raise = raise

--- vertexops.client(opts) -> a client that keeps its connections alive between calls.
---@param opts? table options (docs/contract.md)
---@return vertexops.Client
function _M.client(opts) return Client.new(opts) end

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

for _, m in ipairs { "cancel", "get", "delete", "list", "operations", "wait_once", "wait", "cancel_and_wait",
                     "start", "cancel_many" } do
  _M[m] = function(...) return Client[m](default_client(), ...) end
end

--- vertexops.is_error(v): true when v is a vertexops error object.
---@return boolean
function _M.is_error(v)
  return type(v) == "table" and getmetatable(v) == core.error_mt
end

-- vertexops.core.cancel / get / delete / list come here (csrc/module.c): one validated attempt --
-- no retries -- through a client of their own, so the C module's own calls take the same path as
-- everyone's. cancel and delete return true, get the Operation, list the decoded page as sent.
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
