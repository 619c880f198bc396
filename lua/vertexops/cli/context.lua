-- vertexops.cli.context: where a command's output goes and what it reads from its surroundings.
-- The program's context writes to io.stdout and io.stderr and asks core.isatty; a spec drives the
-- command line in-process with a context of its own (captured output, a terminal or not, options
-- such as a token or an injected clock).
local core = require "vertexops.core"
local vertexops = require "vertexops"
local commands = require "vertexops.cli.commands"
local render = require "vertexops.cli.render"

local M = {}

local Context = {}
Context.__index = Context

--- new([t]) -> a context. t (all optional):
---   stdout, stderr  objects with :write(...) and :flush() (default io.stdout, io.stderr)
---   stdin           an object with :read("*l"), where a question's answer is read (default io.stdin)
---   isatty(fd)      whether fd 0 or 2 is a terminal, for the progress displays and cancel-all's
---                   question (default core.isatty)
---   options         merged under the options the flags set, for every call (testing.start's
---                   for fake): a token, a clock and sleep, ...
---   foreground(server)  what runs while `vertexops fake` serves (default: until Ctrl-C or SIGTERM)
function M.new(t)
  t = t or {}
  return setmetatable({ stdout = t.stdout or io.stdout, stderr = t.stderr or io.stderr, stdin = t.stdin or io.stdin,
                        isatty = t.isatty or core.isatty, options = t.options or {},
                        foreground = t.foreground, shown = false }, Context)
end

--- ctx:options_for(inv) -> the options of a call: the flags' (inv.options) over the context's.
function Context:options_for(inv)
  local o = {}
  for k, v in pairs(self.options) do o[k] = v end
  for k, v in pairs(inv.options) do o[k] = v end
  if inv.flags and inv.flags.log_http then -- --log-http: the heads of every exchange on stderr
    o.hooks = require("vertexops.hooks").chain(o.hooks, require("vertexops.cli.log_http").hooks_for(self))
  end
  return o
end

--- ctx:print(text): a line on stdout.
function Context:print(text)
  self.stdout:write(text, "\n")
end

--- ctx:note(text): a line on stderr, at once.
function Context:note(text)
  self.stderr:write(text, "\n")
  self.stderr:flush()
end

--- ctx:progress_shown(quiet) -> whether a progress display goes on stderr: on a terminal, unless quiet.
function Context:progress_shown(quiet)
  return not quiet and self.isatty(2)
end

--- ctx:show(line): the one-line progress display, redrawn in place.
function Context:show(line)
  self.stderr:write("\r\27[K", line)
  self.stderr:flush()
  self.shown = true
end

--- ctx:end_show(): ends the progress display's line, if one was shown.
function Context:end_show()
  if self.shown then self.stderr:write("\n") end
  self.shown = false
end

--- ctx:usage_error(message) -> the exit status of bad arguments, the message on stderr.
function Context:usage_error(message)
  self.stderr:write("vertexops: ", message, "\n(see vertexops --help)\n")
  return commands.USAGE_EXIT
end

--- ctx:failure(err[, json]) -> the exit status of a command that raised err: its message on one
--- line on stderr (json, the JSON text of the failure, on stdout first); a value that is not a
--- vertexops error is a defect of the program: "internal error", status 1.
function Context:failure(err, json)
  self:end_show()
  if not vertexops.is_error(err) then
    self.stderr:write("vertexops: internal error: ", render.one_line(tostring(err)), "\n")
    return commands.OTHER_EXIT
  end
  if json then self.stdout:write(json, "\n") end
  self.stderr:write("vertexops: ", render.one_line(tostring(err)), "\n")
  return commands.EXIT[err.tags[1]] or commands.OTHER_EXIT
end

--- status_of(err) -> the exit status of an error (a vertexops error by its first tag; 1 otherwise).
function M.status_of(err)
  return vertexops.is_error(err) and commands.EXIT[err.tags[1]] or commands.OTHER_EXIT
end

return M
