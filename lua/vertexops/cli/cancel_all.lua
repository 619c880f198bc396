-- vertexops.cli.cancel_all: `vertexops cancel-all PARENT` -- vertexops.cancel_all with a progress
-- bar on a terminal, then its summary (text or JSON) and an exit status that says whether anything
-- failed. On a terminal it looks before it leaps: the listing first (a dry run), the count in a
-- question, then the sweep. --dry-run stops after the listing; --yes never asks.
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
--- a dry run, when its listing had no wrong entry; else the status of the first failure's error (a
--- wait that ended with the operation's own error is not one).
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

--- asks(ctx, flags) -> whether cancel-all asks before it cancels: not with --yes, and only where
--- someone can answer, as gcloud's prompts: stdin and stderr (where the question goes) both a
--- terminal. Anywhere else (a script, a pipe, cron) it proceeds, as it always has.
function M.asks(ctx, flags)
  return not flags.yes and ctx.isatty(0) and ctx.isatty(2)
end

--- question(n, parent, kind) -> the question asked on a terminal: operations, or with kind a
--- collection of jobs (--kind customJobs) jobs of that collection.
function M.question(n, parent, kind)
  local plural = n == 1 and "" or "s"
  if kind == nil or kind == "operations" then
    return ("cancel %d operation%s under %s? [y/N] "):format(n, plural, parent)
  end
  return ("cancel %d job%s (%s) under %s? [y/N] "):format(n, plural, kind, parent)
end

--- agreed(line) -> whether an answer is yes: "y" or "yes", any case, blanks around; anything
--- else, an empty line or no line at all (end of input) is no.
function M.agreed(line)
  local word = type(line) == "string" and line:match("^%s*(%a+)%s*$")
  word = word and word:lower()
  return word == "y" or word == "yes"
end

-- Runs cancel_all with opts, prints its summary; returns the exit status.
local function sweep(inv, ctx, opts)
  local flags = inv.flags
  if ctx:progress_shown(flags.quiet) then opts.progress = progress(ctx) end
  local ok, res = pcall(vertexops.cancel_all, inv.target, flags.region, opts)
  ctx:end_show()
  local summary = ok and res or (type(res) == "table" and res.summary)
  if summary and not flags.quiet then print_summary(ctx, inv, summary, not ok and res or nil) end
  if ok then return M.status_of(summary) end
  local json = flags.json and not summary and vertexops.is_error(res) and render.json { error = render.error_doc(res) }
  return ctx:failure(res, json or nil)
end

-- The look before the sweep on a terminal: a dry run (its progress shown), then the question.
-- Returns nil to go on, else the exit status: the listing's failure, or 1 when not agreed.
local function confirm(inv, ctx, opts)
  local flags = inv.flags
  local look = {}
  for k, v in pairs(opts) do look[k] = v end
  look.dry_run, look.wait, look.progress = true, nil, ctx:progress_shown(flags.quiet) and progress(ctx) or nil
  local ok, res = pcall(vertexops.cancel_all, inv.target, flags.region, look)
  ctx:end_show()
  if not ok then
    local json = flags.json and vertexops.is_error(res) and render.json { error = render.error_doc(res) }
    return ctx:failure(res, json or nil)
  end
  local n = #res.would_cancel
  if n == 0 then return nil end -- nothing to cancel: nothing to ask
  ctx.stderr:write(M.question(n, inv.target, opts.kind))
  ctx.stderr:flush()
  local line = ctx.stdin:read("*l")
  if line == nil then ctx.stderr:write("\n") end
  if M.agreed(line) then return nil end
  if flags.json then ctx:print(render.json { error = { message = "not confirmed: nothing cancelled" } }) end
  ctx:note("vertexops: not confirmed: nothing cancelled")
  return commands.DECLINED_EXIT
end

--- run(inv, ctx) -> exit status of cancel-all.
function M.run(inv, ctx)
  local flags = inv.flags
  if flags.dry_run and flags.wait then return ctx:usage_error("--dry-run cannot go with --wait") end
  local opts = ctx:options_for(inv)
  if flags.dry_run then
    opts.dry_run = true
    return sweep(inv, ctx, opts)
  end
  if M.asks(ctx, flags) then
    local status = confirm(inv, ctx, opts)
    if status then return status end
  end
  opts.wait = flags.wait or nil
  return sweep(inv, ctx, opts)
end

return M
