-- A user's module (the code under test in this example suite): stops a job's operations.
--
--   local sweeper = require "sweeper"
--   local report = sweeper.cancel_prefix("projects/P/locations/L", "nightly-")
--   print(sweeper.summary(report))
--
-- opts are vertexops options (credentials, endpoint, clock, sleep, ...); in production none are
-- needed. Its tests (spec/sweeper_spec.lua) run it against the fake server of vertexops.testing.
local vertexops = require "vertexops"

local M = {}

local function id_of(name)
  return name:match("/operations/([^/]+)$")
end

--- Cancels every running operation of parent whose id starts with prefix. With wait, waits until
--- each has ended. Returns a report: cancelled (names), failed ({name, error}), skipped (how many
--- running operations of other jobs were left alone), and with wait: stopped (ended CANCELLED),
--- completed (finished before the cancel took effect).
function M.cancel_prefix(parent, prefix, opts, wait)
  local client = vertexops.client(opts)
  local report = { cancelled = {}, failed = {}, skipped = 0, stopped = {}, completed = {} }
  for op in client:operations(parent, nil, { filter = "done=false" }) do
    if id_of(op.name):sub(1, #prefix) == prefix then
      local ok, a, b = pcall(wait and client.cancel_and_wait or client.cancel, client, op.name)
      if not ok then
        report.failed[#report.failed + 1] = { name = op.name, error = a }
      else
        report.cancelled[#report.cancelled + 1] = op.name
        if wait then
          local list = b and report.stopped or report.completed
          list[#list + 1] = a.name
        end
      end
    else
      report.skipped = report.skipped + 1
    end
  end
  client:close()
  return report
end

--- One line for a report.
function M.summary(report)
  local line = ("cancelled %d, failed %d, skipped %d"):format(#report.cancelled, #report.failed, report.skipped)
  for _, f in ipairs(report.failed) do
    line = line .. ("; %s: %s"):format(id_of(f.name), vertexops.is_error(f.error) and f.error.message or tostring(f.error))
  end
  return line
end

return M
