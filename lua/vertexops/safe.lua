-- vertexops.safe: the functions of vertexops returning nil, err instead of raising (like cjson.safe).
-- Programmer errors (TypeError, ValueError) and anything that is not a vertexops error still raise.
local vertexops = require "vertexops"

local error, ipairs, pcall, setmetatable, type = error, ipairs, pcall, setmetatable, type
local unpack = table.unpack or unpack -- luacheck: ignore 143
local is, is_error = vertexops.is, vertexops.is_error

local _M = { is = is, is_error = is_error, _VERSION = vertexops._VERSION }

local function settle(ok, ...)
  if ok then return ... end
  local err = ...
  if not is_error(err) or is(err, "TypeError") or is(err, "ValueError") then error(err, 0) end
  return nil, err
end

--- wrap(f) -> a function calling f that returns nil, err for a vertexops error (TypeError and
--- ValueError still raise).
---@param f function
---@return function
local function wrap(f)
  return function(...) return settle(pcall(f, ...)) end
end
_M.wrap = wrap

-- An iterator that yields false, err once on failure, then ends:
--   for op, err in safe.operations(...) do if not op then ... end end
local function wrap_iterator(f)
  return function(...)
    local iter = f(...)
    local failed = false
    return function()
      if failed then return nil end
      local res = { pcall(iter) }
      if res[1] then return unpack(res, 2) end
      settle(false, res[2])
      failed = true
      return false, res[2]
    end
  end
end

local ITERATORS = { operations = true }

for _, name in ipairs { "cancel", "get", "delete", "list", "operations", "wait_once", "wait",
                        "cancel_and_wait", "cancel_many", "cancel_all", "start" } do
  if vertexops[name] then
    _M[name] = (ITERATORS[name] and wrap_iterator or wrap)(vertexops[name])
  end
end

--- safe.client(opts): a client whose methods return nil, err instead of raising.
---@param opts? vertexops.Options
---@return vertexops.Client # a proxy: the same methods, wrapped; .raw is the client itself
function _M.client(opts)
  local c = vertexops.client(opts)
  local proxy = { raw = c }
  return setmetatable(proxy, {
    __index = function(t, k)
      local v = c[k]
      if type(v) ~= "function" then return v end
      local w = (ITERATORS[k] and wrap_iterator or wrap)(function(_, ...) return v(c, ...) end)
      t[k] = w
      return w
    end,
    __close = function() c:close() end,
  })
end

return _M
