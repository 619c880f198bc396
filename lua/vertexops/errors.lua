-- vertexops.errors: error objects on the Lua side. Their metatable, tags and core.error / core.is
-- are the C core's (csrc/error.c): one kind of error object whichever side raises it.
local core = require "vertexops.core"

local error, getmetatable, type = error, getmetatable, type

local M = { is = core.is, error_mt = core.error_mt, new = core.error }

--- raise(tag, message [, fields]): raises a new error object (error(obj, 0)).
---@param tag string|string[] a tag, or a list of tags (most specific first)
---@param message string
---@param fields? table more fields of the error object
function M.raise(tag, message, fields)
  error(core.error(type(tag) == "table" and tag or { tag }, message, fields), 0)
end

--- is_error(v): true when v is a vertexops error object.
---@return boolean
function M.is_error(v)
  return type(v) == "table" and getmetatable(v) == core.error_mt
end

return M
