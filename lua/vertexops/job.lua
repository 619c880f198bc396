-- vertexops.job: a Vertex job (CustomJob, BatchPredictionJob, PipelineJob, TuningJob, ...) as the
-- service sends it, checked before the library or its caller reads it: when it has ended (its
-- state), how (succeeded, failed, cancelled), and the OperationError made from one that failed or
-- expired. Beside operation.lua, which does the same for google.longrunning.Operation; wait.lua
-- reads either through the same four functions (check, done, cancelled, error).

local rawget, tostring, type = rawget, tostring, type
local string_format = string.format

local M = {}

local errors = require "vertexops.errors"
local raise = errors.raise
local json_null = require("cjson.safe").null

--- The terminal states (JobState, PipelineState) and how each ended: "succeeded", "cancelled" or
--- "failed" (an OperationError).
M.TERMINAL = {
  JOB_STATE_SUCCEEDED = "succeeded", JOB_STATE_PARTIALLY_SUCCEEDED = "succeeded",
  JOB_STATE_CANCELLED = "cancelled",
  JOB_STATE_FAILED = "failed", JOB_STATE_EXPIRED = "failed",
  PIPELINE_STATE_SUCCEEDED = "succeeded", PIPELINE_STATE_CANCELLED = "cancelled",
  PIPELINE_STATE_FAILED = "failed",
}
local TERMINAL = M.TERMINAL

---@param name any
---@return string
function M.what(name)
  return "job" .. (type(name) == "string" and " " .. name or "")
end

--- Checks a decoded job in place: an object with `name` and `state` strings (its `error`, when
--- present, an object; a null one removed). Raises ResponseTypeError naming what is wrong. Returns job.
---@param job any
---@param what string how messages name it, e.g. "job projects/..."
---@return table
function M.check(job, what)
  if type(job) ~= "table" then
    raise("ResponseTypeError", string_format("%s is not an object (got %s)", what,
      job == json_null and "null" or type(job)))
  end
  for _, field in ipairs { "name", "state" } do
    local v = rawget(job, field)
    if type(v) ~= "string" then
      raise("ResponseTypeError", string_format("%s has %s '%s' field that is not a string (got %s)", what,
        v == nil and "no" or "a", field, v == nil and "nothing" or v == json_null and "null" or type(v)))
    end
  end
  local e = rawget(job, "error")
  if e == json_null then
    job.error = nil
  elseif e ~= nil and type(e) ~= "table" then
    raise("ResponseTypeError", string_format("%s has an 'error' field that is not an object (got %s)", what, type(e)))
  end
  return job
end

--- done(job): true when its state is terminal.
function M.done(job)
  return TERMINAL[job.state] ~= nil
end

--- cancelled(job): true when it ended CANCELLED.
function M.cancelled(job)
  return TERMINAL[job.state] == "cancelled"
end

--- error(job) -> the OperationError of a job that ended FAILED or EXPIRED (err.operation and
--- err.job are the job), or nil when it did not.
function M.error(job)
  if TERMINAL[job.state] ~= "failed" then return nil end
  local e = type(job.error) == "table" and job.error or nil
  local detail = e and string_format(" (code %s: %s)", tostring(e.code), tostring(e.message or "")) or ""
  return errors.new("OperationError", string_format("job %s ended %s%s", tostring(job.name), job.state, detail),
    { operation = job, job = job })
end

return M
