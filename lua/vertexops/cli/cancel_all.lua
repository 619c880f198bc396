-- vertexops.cli.cancel_all: `vertexops cancel-all PARENT` -- vertexops.cancel_all with a progress
-- bar on a terminal, then its summary (text or JSON) and an exit status that says whether every
-- operation listed was cancelled.
local vertexops = require "vertexops"
local commands = require "vertexops.cli.commands"
local render = require "vertexops.cli.render"

local M = {}

-- The progress callback: the bar redrawn at most 10 times a second (and when nothing is in flight).
local function progress(ctx)
  local last = -1
  return function(c)
    if c.elapsed - last < 0.1 and c.in_flight ~= 0 then return end
    last = c.elapsed
    ctx:show(render.cancel_all_line(c))
  end
end

-- The summary on stdout: text, or JSON (with the error when cancel_all raised one).
local function print_summary(ctx, inv, summary, err)
  if inv.flags.json then
    local doc = render.summary_doc(summary)
    if err then doc.error = render.error_doc(err) end
    ctx:print(render.json_with_lists(doc))
  else
    ctx:print(render.summary_text(summary, inv.target))
  end
end

--- status_of(summary) -> 0 when nothing failed: every operation listed was cancelled (and, waited
--- for, has ended) or skipped (outside PARENT, no :cancel, FAILED_PRECONDITION: never a failure);
--- else the status of the first failure's error (a wait that ended with the operation's own error
--- is not one).
function M.status_of(summary)
  local first = summary.failed[1]
  if not first and summary.wait then
    for _, f in ipairs(summary.wait.failed) do
      if not vertexops.is(f.error, "OperationError") then
        first = f
        break
      end
    end
  end
  if first then
    local e = first.error
    return vertexops.is_error(e) and commands.EXIT[e.tags[1]] or commands.OTHER_EXIT
  end
  return 0
end

--- run(inv, ctx) -> exit status of cancel-all.
function M.run(inv, ctx)
  local flags = inv.flags
  local opts = ctx:options_for(inv)
  opts.wait = flags.wait or nil
  if ctx:progress_shown(flags.quiet) then opts.progress = progress(ctx) end
  local ok, res = pcall(vertexops.cancel_all, inv.target, flags.region, opts)
  ctx:end_show()
  local summary = ok and res or (type(res) == "table" and res.summary)
  if summary and not flags.quiet then print_summary(ctx, inv, summary, not ok and res or nil) end
  if ok then return M.status_of(summary) end
  local json = flags.json and not summary and vertexops.is_error(res) and render.json { error = render.error_doc(res) }
  return ctx:failure(res, json or nil)
end

return M
