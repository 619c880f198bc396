-- vertexops.cli.render: what the command line prints -- JSON documents, an operation as text, the
-- cancel-all summary, progress bars. Pure functions of their arguments: nothing is written here.
local vertexops = require "vertexops"
local operation = require "vertexops.operation"

local M = {}

-- JSON output: a cjson instance of our own. A number JSON cannot hold (1e400 decodes as inf) is
-- written as null, like JavaScript's JSON.stringify does; nesting as deep as a decoded response
-- can be still encodes.
local cjson = require("cjson").new()
cjson.encode_invalid_numbers("null")
cjson.encode_max_depth(1100)

-- cjson writes an empty table as {}: a list that must read as a list is marked, then spelled []
local EMPTY = "@EMPTY_ARRAY@"

--- json(doc) -> the JSON text of doc. cjson writes "/" as "\/" (valid JSON, but names should read
--- as they are). Every "/" in its output is inside a string and escaped that way, so dropping the
--- backslash right before each "/" undoes exactly that escape (a backslash of the text itself is
--- written "\\" and stays).
function M.json(doc)
  local text = cjson.encode(doc)
  return (text:gsub("\\/", "/"))
end

--- list(t) -> t, marked to be written [] by M.json_with_lists when it is empty.
function M.list(t)
  return #t > 0 and t or EMPTY
end

--- json_with_lists(doc) -> M.json(doc), with the empty lists M.list marked written [].
function M.json_with_lists(doc)
  return (M.json(doc):gsub('"' .. EMPTY .. '"', "[]"))
end

--- one_line(s): a message on one line.
function M.one_line(s)
  return (s:gsub("%s*\n%s*", " "))
end

--- state(op) -> RUNNING, CANCELLED, FAILED or SUCCEEDED; for a job (a `state` and no `done`), its
--- state as the service gives it (JOB_STATE_CANCELLING, PIPELINE_STATE_SUCCEEDED, ...).
function M.state(op)
  if op.done == nil and type(op.state) == "string" then return op.state end
  if not op.done then return "RUNNING" end
  if type(op.error) == "table" then return operation.cancelled(op) and "CANCELLED" or "FAILED" end
  return "SUCCEEDED"
end

--- progress(op) -> a progress percentage from the operation's metadata, if it has one (a finite
--- number under a key starting with "progress"; metadata of any shape is accepted).
function M.progress(op)
  local md = type(op.metadata) == "table" and op.metadata or {}
  for k, v in pairs(md) do
    if type(k) == "string" and type(v) == "number" and v == v and v > -math.huge and v < math.huge
      and k:lower():match("^progress") then
      return v
    end
  end
  return nil
end

--- percent(v) -> whole numbers as they are, others with one decimal: "50%", "12.5%".
function M.percent(v)
  if v == math.floor(v) and math.abs(v) < 1e15 then return ("%d%%"):format(v) end
  return ("%.1f%%"):format(v)
end

--- describe(op) -> an operation or a job as lines of text: name, state, error, progress.
function M.describe(op)
  local lines = { "name:     " .. tostring(op.name), "state:    " .. M.state(op) }
  if type(op.error) == "table" then
    lines[#lines + 1] = ("error:    code %s: %s"):format(tostring(op.error.code), tostring(op.error.message))
  end
  local pct = M.progress(op)
  if pct then lines[#lines + 1] = "progress: " .. M.percent(pct) end
  return table.concat(lines, "\n")
end

--- error_doc(e) -> the JSON view of an error: tags, message, code, status.
function M.error_doc(e)
  if not vertexops.is_error(e) then return { message = tostring(e) } end
  return { tags = e.tags, message = e.message, code = e.code, status = e.status }
end

--- error_json(e) -> {"error": ...} of a command that failed, with the operation the service sent
--- when there is one and it can be written.
function M.error_json(e)
  local doc = M.error_doc(e)
  if e.operation then doc.operation = e.operation end
  local encoded, text = pcall(M.json, { error = doc })
  if not encoded then
    doc.operation = nil -- what the service sent cannot be written: the error itself still is
    text = M.json { error = doc }
  end
  return text
end

-- cancel-all's summary ---------------------------------------------------------------------------

local function failures_doc(list)
  local out = {}
  for i, f in ipairs(list) do out[i] = { name = f.name, error = M.error_doc(f.error) } end
  return M.list(out)
end

--- summary_doc(s) -> the JSON view of cancel_all's summary.
function M.summary_doc(s)
  local skipped = {}
  for i, k in ipairs(s.skipped or {}) do
    skipped[i] = { name = k.name, reason = k.reason, error = k.error and M.error_doc(k.error) or nil }
  end
  local doc = { listed = s.listed, cancelled = s.cancelled, failed = failures_doc(s.failed),
                skipped = M.list(skipped), duplicates = s.duplicates, pages = s.pages,
                requests = s.requests, elapsed = s.elapsed }
  if s.dry_run then doc.dry_run, doc.would_cancel = true, M.list(s.would_cancel) end
  if s.wait then
    local w = s.wait
    doc.wait = { cancelled = M.list(w.cancelled), completed = M.list(w.completed), failed = failures_doc(w.failed),
                 running = w.running and M.list(w.running) or nil, rounds = w.rounds, requests = w.requests }
  end
  return doc
end

-- Up to `max` names of a list, then how many more.
local function some(names, max)
  local lines = {}
  for i = 1, math.min(#names, max) do lines[i] = "  " .. names[i] end
  if #names > max then lines[#lines + 1] = ("  ... and %d more (--json lists them all)"):format(#names - max) end
  return table.concat(lines, "\n")
end

-- Each reason a name is skipped (cancel_all's summary.skipped), and how the text says it.
local SKIPPED = {
  { "outside_parent", "outside PARENT (never sent)" },
  { "no_cancel_method", "no cancel method for this kind of operation (never sent)" },
  { "failed_precondition", "not cancellable: already done, or not a cancellable kind (FAILED_PRECONDITION)" },
}
local SKIP_SAID = {}
for _, why in ipairs(SKIPPED) do SKIP_SAID[why[1]] = why[2] end

--- summary_text(s, parent) -> cancel_all's summary as lines of text.
function M.summary_text(s, parent)
  local skipped = s.skipped or {}
  local done = s.dry_run and ("would cancel %d"):format(#s.would_cancel) or ("cancelled %d"):format(s.cancelled)
  local lines = { ("%slisted %d, %s, failed %d%s%s (%d requests, %.1f s)"):format(
    s.dry_run and "dry run, nothing cancelled: " or "", s.listed, done, #s.failed,
    #skipped > 0 and (", skipped %d"):format(#skipped) or "",
    (s.duplicates or 0) > 0 and (", %d listed twice"):format(s.duplicates) or "", s.requests, s.elapsed) }
  if s.dry_run and #s.would_cancel > 0 then lines[#lines + 1] = "would cancel:\n" .. some(s.would_cancel, 20) end
  local function failures(list, what)
    if #list == 0 then return end
    local shown = {}
    for i = 1, math.min(#list, 20) do
      shown[i] = ("  %s: %s"):format(list[i].name or "(an entry without a name)", M.one_line(tostring(list[i].error)))
    end
    if #list > 20 then shown[#shown + 1] = ("  ... and %d more (--json lists them all)"):format(#list - 20) end
    lines[#lines + 1] = what .. ":\n" .. table.concat(shown, "\n")
  end
  failures(s.failed, "failed")
  -- the skipped names by reason: the known ones in the order of SKIPPED, then any other
  local by, reasons = {}, {}
  for _, why in ipairs(SKIPPED) do
    by[why[1]], reasons[#reasons + 1] = {}, why[1]
  end
  for _, k in ipairs(skipped) do
    if not by[k.reason] then by[k.reason], reasons[#reasons + 1] = {}, k.reason end
    local names = by[k.reason]
    names[#names + 1] = k.name
  end
  for _, reason in ipairs(reasons) do
    local names = by[reason]
    if #names > 0 then
      local said = (SKIP_SAID[reason] or reason):gsub("PARENT", function() return parent end)
      lines[#lines + 1] = "skipped, " .. said .. ":\n" .. some(names, 20)
    end
  end
  local w = s.wait
  if w then
    lines[#lines + 1] = ("ended CANCELLED %d, completed anyway %d, failed %d%s (%d rounds, %d requests)")
      :format(#w.cancelled, #w.completed, #w.failed, w.running and (", still running %d"):format(#w.running) or "",
        w.rounds, w.requests or 0)
    if #w.completed > 0 then lines[#lines + 1] = "completed before the cancel took effect:\n" .. some(w.completed, 20) end
    failures(w.failed, "ended with an error, or unknown")
    if w.running and #w.running > 0 then lines[#lines + 1] = "still running:\n" .. some(w.running, 20) end
  end
  return table.concat(lines, "\n")
end

-- Progress displays --------------------------------------------------------------------------------

--- bar(done, total, width) -> "[#####-----]".
function M.bar(done, total, width)
  local fill = total > 0 and math.floor(width * math.min(1, done / total) + 0.5) or 0
  return "[" .. string.rep("#", fill) .. string.rep("-", width - fill) .. "]"
end

--- eta(left, rate) -> the time left at rate per second: "42s", "3m05s", "1h02m", or "?".
function M.eta(left, rate)
  if rate ~= rate or rate <= 0 then return "?" end
  local s = math.floor(left / rate + 0.5)
  if s >= 3600 then return ("%dh%02dm"):format(math.floor(s / 3600), math.floor(s % 3600 / 60)) end
  if s >= 60 then return ("%dm%02ds"):format(math.floor(s / 60), s % 60) end
  return s .. "s"
end

--- wait_line(op, info) -> the one-line display while waiting for an operation.
function M.wait_line(op, info)
  local pct = M.progress(op)
  return ("waiting %4ds  %-9s%s  %d request%s"):format(math.floor(info.elapsed), M.state(op),
    pct and ("  %4s"):format(M.percent(pct)) or "", info.requests, info.requests == 1 and "" or "s")
end

--- cancel_all_line(c) -> the one-line display of cancel_all's progress (its progress callback's c).
function M.cancel_all_line(c)
  local skipped = c.skipped or 0
  if c.phase == "cancel" then
    local done = c.cancelled + c.failed + skipped
    local rate = c.elapsed > 0 and done / c.elapsed or 0
    return ("cancel-all %s %d/%d%s cancelled, %d failed%s  %.0f/s  ETA %s"):format(M.bar(done, c.listed, 20), done,
      c.listed, c.listing and "+" or "", c.failed, skipped > 0 and (", %d skipped"):format(skipped) or "", rate,
      c.listing and "?" or M.eta(c.listed - done, rate))
  end
  if c.phase == "list" then -- a dry run: listing only
    return ("listing    %d listed%s: %d to cancel, %d skipped, %d failed"):format(c.listed, c.listing and "+" or "",
      c.would_cancel or 0, skipped, c.failed)
  end
  local ended = c.cancelled + c.completed + c.failed
  local total = ended + c.pending
  return ("waiting    %s %d/%d ended (%d cancelled, %d completed, %d failed)  round %d"):format(
    M.bar(ended, total, 20), ended, total, c.cancelled, c.completed, c.failed, c.rounds)
end

return M
