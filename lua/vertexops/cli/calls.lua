-- vertexops.cli.calls: the commands on one operation (or job) or one listing -- cancel, get, delete,
-- wait, list: one call of the library each, its result printed as text or JSON.
local vertexops = require "vertexops"
local render = require "vertexops.cli.render"

local M = {}

-- Each command: (name, region, opts, inv, ctx) -> the JSON document (a table, or its text) and the text
-- of its result.
-- ctx:end_show() ends a progress display before the result is printed.
local RUN = {}

function RUN.cancel(name, region, opts, inv, ctx)
  if not inv.flags.wait then
    vertexops.cancel(name, region, opts)
    return { name = name, cancel_requested = true }, "cancel requested: " .. name
  end
  local op, cancelled = vertexops.cancel_and_wait(name, region, opts)
  ctx:end_show()
  return { operation = op, cancelled = cancelled },
    render.describe(op) .. (cancelled and "" or "\n(it completed before the cancel took effect)")
end

function RUN.get(name, region, opts)
  local op = vertexops.get(name, region, opts)
  return op, render.describe(op)
end

function RUN.delete(name, region, opts)
  vertexops.delete(name, region, opts)
  return { name = name, deleted = true }, "deleted: " .. name
end

function RUN.wait(name, region, opts, _, ctx)
  local op = vertexops.wait(name, region, opts)
  ctx:end_show()
  return op, render.describe(op)
end

function RUN.list(parent, region, opts)
  local ops, lines = {}, {}
  for op in vertexops.operations(parent, region, opts) do
    ops[#ops + 1] = op
    lines[#lines + 1] = ("%-9s  %s"):format(render.state(op), tostring(op.name))
  end
  -- --kind customJobs & co list jobs: {"jobs": [...]}, "3 jobs"
  local what = (opts.kind == nil or opts.kind == "operations") and "operation" or "job"
  lines[#lines + 1] = ("%d %s%s"):format(#ops, what, #ops == 1 and "" or "s")
  -- cjson writes an empty table as {}: an empty list is spelled out
  return #ops > 0 and { [what .. "s"] = ops } or '{"' .. what .. 's":[]}', table.concat(lines, "\n")
end

--- run(inv, ctx) -> exit status: the command of inv (cancel, get, delete, wait or list), its
--- result on stdout (JSON with --json; nothing with --quiet), a failure as ctx:failure shows it.
function M.run(inv, ctx)
  local command, flags = inv.command.name, inv.flags
  local opts = ctx:options_for(inv)
  local waiting = command == "wait" or (command == "cancel" and flags.wait)
  if waiting and ctx:progress_shown(flags.quiet) then
    opts.progress = function(op, info) ctx:show(render.wait_line(op, info)) end
  end
  local ok, err = pcall(function()
    local doc, text = RUN[command](inv.target, flags.region, opts, inv, ctx)
    if flags.quiet then return end
    if not flags.json then return ctx:print(text) end
    ctx:print(type(doc) == "string" and doc or render.json(doc))
  end)
  if ok then return 0 end
  return ctx:failure(err, flags.json and vertexops.is_error(err) and render.error_json(err) or nil)
end

return M
