-- vertexops.cli.help: the text of `vertexops --help`, made from the table of
-- vertexops.cli.commands (commands, flags, defaults, exit codes) and the notes below.
local commands = require "vertexops.cli.commands"

local M = {}

local WIDTH = 100 -- columns of the text

-- The words of text from column `indent` on, the first line after `head` (padded to indent).
local function wrap(head, indent, text)
  local lines, line = {}, head .. string.rep(" ", indent - #head)
  if #head >= indent - 1 then line = head .. "  " end
  local empty = true
  for word in text:gmatch("%S+") do
    if not empty and #line + 1 + #word > WIDTH then
      lines[#lines + 1] = line
      line, empty = string.rep(" ", indent) .. word, false
    else
      line, empty = line .. (empty and "" or " ") .. word, false
    end
  end
  lines[#lines + 1] = line
  return table.concat(lines, "\n")
end

local function usage_lines()
  local lines = { "usage: vertexops COMMAND NAME [options]" }
  for _, c in ipairs(commands.COMMANDS) do
    if not c.arg then
      local words = { "vertexops", c.name }
      for _, name in ipairs(c.flags) do
        local f = commands.flag[name]
        words[#words + 1] = "[" .. commands.spelling(f) .. (f.value and " " .. f.value or "") .. "]"
      end
      lines[#lines + 1] = "       " .. table.concat(words, " ")
    end
  end
  return table.concat(lines, "\n")
end

local function command_lines()
  local out = {}
  for _, c in ipairs(commands.COMMANDS) do
    local arg = c.arg and (c.optional and " [" .. c.arg .. "]" or " " .. c.arg) or ""
    out[#out + 1] = wrap("  " .. c.name .. arg, 18, c.doc)
  end
  return table.concat(out, "\n")
end

-- The lines of the flags named (every flag when none are), in the table's order.
local function flag_lines(names)
  local out = {}
  for _, f in ipairs(commands.FLAGS) do
    if not names or names[f.name] then
      local doc = f.doc
      if f.default ~= nil then doc = doc .. " (default: " .. tostring(f.default) .. ")" end
      out[#out + 1] = wrap("  " .. commands.spelling(f) .. (f.value and " " .. f.value or ""), 20, doc)
    end
  end
  return table.concat(out, "\n")
end

local function exit_lines()
  local by_code = { [commands.OTHER_EXIT] = { "other failure" }, [commands.USAGE_EXIT] = { "bad arguments" } }
  for tag, code in pairs(commands.EXIT) do
    if code ~= commands.USAGE_EXIT then by_code[code] = { tag } end
  end
  local out = { "  0 success" }
  for code = 1, 255 do
    if by_code[code] then out[#out + 1] = ("  %d %s"):format(code, by_code[code][1]) end
  end
  return table.concat(out, "\n")
end

local NOTES = [[
NAME is [projects/{project}/locations/{location}/][{collection}/{id}/...]operations/{id};
PARENT is what operations are under: projects/{project}/locations/{location}, or nested
(.../customJobs/42, .../ragEngineConfig), or without a project (reasoningEngines/R/sessions/S:
the global host, no --region).
N is a whole number written in digits (50, not 50.0 or 5e1); S may have a fraction (0.5).

Credentials: $GOOGLE_OAUTH_ACCESS_TOKEN, else $GOOGLE_APPLICATION_CREDENTIALS, else the gcloud
application-default file, else the metadata server (as Google's own libraries look them up).]]

local EXIT_NOTES = [[
TypeError and ValueError (a bad argument the library refuses) exit 2 too; OperationError is an
operation that ended with an error.
cancel --wait exits 0 both when the operation ended CANCELLED and when it completed before the
cancel took effect; the output (and "cancelled" in --json) tells which.
cancel-all exits 0 when nothing failed: every operation listed was cancelled (with --wait: has
ended, CANCELLED or not) or skipped; otherwise with the status of the first failure's error.
Skipped, never a failure: names outside PARENT (another project or location: never sent), kinds
without a cancel method (never sent), and cancels answered FAILED_PRECONDITION (already done, or
not cancellable). A name listed twice is cancelled once. On a terminal (stdin and stderr) it lists
first and asks; an answer other than y or yes cancels nothing and exits 1. Elsewhere it does not
ask: scripts go on as with --yes.]]

--- text() -> the whole of `vertexops --help`, ending in a newline.
function M.text()
  return table.concat({ usage_lines(), "", "commands:", command_lines(), "", NOTES, "", "options:", flag_lines(), "",
                        "exit status:", exit_lines(), EXIT_NOTES }, "\n") .. "\n"
end

--- synopsis(c) -> how command c is typed: "vertexops help [COMMAND] [options]".
function M.synopsis(c)
  local arg = c.arg and (c.optional and " [" .. c.arg .. "]" or " " .. c.arg) or ""
  return "vertexops " .. c.name .. arg .. " [options]"
end

--- calls_service(c) -> whether command c sends requests to the service (its exit statuses are the
--- errors' and it reads names and credentials).
function M.calls_service(c)
  return c.takes.timeout == true
end

--- command_text(c) -> `vertexops help COMMAND` (and `vertexops COMMAND --help`) for the command c
--- (an entry of commands.COMMANDS), ending in a newline: its synopsis, its lines, its flags and,
--- for a command that calls the service, the notes on names and credentials and the exit statuses.
function M.command_text(c)
  local parts = { "usage: " .. M.synopsis(c), "", wrap("", 2, c.doc), "", "options:", flag_lines(c.takes) }
  if M.calls_service(c) then
    for _, p in ipairs { "", NOTES, "", "exit status:", exit_lines() .. "\n" .. EXIT_NOTES } do parts[#parts + 1] = p end
  else
    parts[#parts + 1] = "\nexit status: 0 success, " .. commands.USAGE_EXIT .. " bad arguments"
  end
  return table.concat(parts, "\n") .. "\n"
end

M.NOTES, M.EXIT_NOTES, M.exit_lines = NOTES, EXIT_NOTES, exit_lines

--- run(inv, ctx) -> the exit status of `vertexops help [COMMAND]`.
function M.run(inv, ctx)
  if inv.target == nil then
    ctx.stdout:write(M.text())
    return 0
  end
  local c = commands.command[inv.target]
  if not c then return ctx:usage_error("unknown command " .. inv.target) end
  ctx.stdout:write(M.command_text(c))
  return 0
end

return M
