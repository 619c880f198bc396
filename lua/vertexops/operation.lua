-- vertexops.operation: an Operation as the service sends it (google.longrunning.Operation in
-- proto3 JSON), checked before the library or its caller reads it, and the OperationError made
-- from one that ended with an error.

local next, rawget, tonumber, tostring, type = next, rawget, tonumber, tostring, type
local math_floor = math.floor
local string_format = string.format

local M = {}

local errors = require "vertexops.errors"
local raise = errors.raise

local json_null = require("cjson.safe").null
M.null = json_null
local OPERATION_FIELDS = { name = "string", done = "boolean", error = "table", metadata = "table",
                           response = "table" }
local JSON_TYPE = { string = "a string", boolean = "a boolean", table = "an object", number = "a number" }

--- The google.rpc.Code an operation that was cancelled ends with (its error.code).
M.CANCELLED = 1

local function bad_field(what, field, v, want)
  raise("ResponseTypeError", string_format("%s has a '%s' field that is not %s (got %s)", what, field,
    JSON_TYPE[want], v == json_null and "null" or type(v)))
end

--- Checks a decoded Operation in place (proto3 nulls removed, error.code as a number); raises
--- ResponseTypeError naming a field of the wrong type. Returns op.
---@param op any
---@param what string how messages name it, e.g. "operation projects/..."
---@return vertexops.Operation
function M.check(op, what)
  if type(op) ~= "table" then
    raise("ResponseTypeError", string_format("%s is not an object (got %s)", what,
      op == json_null and "null" or type(op)))
  end
  for field, want in next, OPERATION_FIELDS do
    local v = rawget(op, field)
    if v == json_null then
      op[field] = nil
    elseif v ~= nil and type(v) ~= want then
      bad_field(what, field, v, want)
    end
  end
  local e = op.error
  if e then -- a google.rpc.Status: code (int32; proto3 JSON may send it as a string), message
    local code = rawget(e, "code")
    if code == json_null then
      code = nil
    elseif type(code) == "string" and code:match("^%-?%d+$") then
      code = tonumber(code)
    end
    if code ~= nil and (type(code) ~= "number" or code ~= math_floor(code)) then
      bad_field(what .. " error", "code", code, "number")
    end
    e.code = code
    local message = rawget(e, "message")
    if message == json_null then
      e.message = nil
    elseif message ~= nil and type(message) ~= "string" then
      bad_field(what .. " error", "message", message, "string")
    end
  end
  return op
end

---@param name any
---@return string
function M.what(name)
  return "operation" .. (type(name) == "string" and " " .. name or "")
end

--- cancelled(op): true when a checked operation ended CANCELLED (error.code is M.CANCELLED).
---@param op vertexops.Operation
---@return boolean
function M.cancelled(op)
  local e = op.error
  return e ~= nil and e.code == M.CANCELLED
end

local function describe_error(e)
  return string_format("code %s: %s", tostring(e.code), tostring(e.message or ""))
end

--- error(op) -> the OperationError for an operation that ended with an error.
---@param op vertexops.Operation
---@return vertexops.Error
function M.error(op)
  return errors.new("OperationError", string_format("operation %s finished with an error (%s)",
    tostring(op.name), describe_error(op.error)), { operation = op })
end

--- The shape wait.lua and fleet.lua read an Operation through (lua/vertexops/job.lua is a job's):
--- check, what, done, cancelled, error (the OperationError of one that ended with an error, or nil).
M.shape = {
  check = M.check, what = M.what, cancelled = M.cancelled,
  done = function(op) return op.done == true end,
  error = function(op) return op.error and M.error(op) or nil end,
}

return M
