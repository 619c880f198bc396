-- vertexops.errors: error objects on the Lua side. Their metatable, tags and core.error / core.is
-- are the C core's (csrc/error.c): one kind of error object whichever side raises it.
--
-- Every error the Lua side makes is made here, and the call site says what becomes of it (like
-- luaL_fileresult): errors.raise(...) raises it, `return errors.result(...)` returns false, err
-- (the convention of handle:call, the transports and Client:_run), errors.new(...) only builds it
-- (an entry of a list, a cause); errors.rethrow(err, fields) raises an error object already made.
local core = require "vertexops.core"

local error, getmetatable, next, type = error, getmetatable, next, type
local core_error = core.error

local M = { is = core.is, error_mt = core.error_mt }

--- new(tag, message [, fields]) -> a new error object, not raised.
---@param tag string|string[] a tag, or a list of tags (most specific first)
---@param message string
---@param fields? table more fields of the error object
---@return vertexops.Error
function M.new(tag, message, fields)
  return core_error(type(tag) == "table" and tag or { tag }, message, fields)
end
local new = M.new

--- raise(tag, message [, fields]): raises a new error object (error(obj, 0): an error object
--- carries no position, whatever the level).
---@param tag string|string[] a tag, or a list of tags (most specific first)
---@param message string
---@param fields? table more fields of the error object
function M.raise(tag, message, fields)
  error(new(tag, message, fields), 0)
end

--- result(tag, message [, fields]) -> false, a new error object: for `return errors.result(...)`
--- in a function that returns ok, result_or_err.
---@param tag string|string[] a tag, or a list of tags (most specific first)
---@param message string
---@param fields? table more fields of the error object
---@return false
---@return vertexops.Error
function M.result(tag, message, fields)
  return false, new(tag, message, fields)
end

--- rethrow(err [, fields]): raises err (an error object made earlier, or any value), with fields
--- set on it first when it is a table (cancel_all's summary so far).
---@param err any
---@param fields? table
function M.rethrow(err, fields)
  if fields and type(err) == "table" then
    for k, v in next, fields do err[k] = v end
  end
  error(err, 0)
end

--- is_error(v): true when v is a vertexops error object.
---@return boolean
function M.is_error(v)
  return type(v) == "table" and getmetatable(v) == core.error_mt
end

return M
