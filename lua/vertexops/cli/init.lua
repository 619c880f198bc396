-- vertexops.cli: the command line (bin/vertexops is its launcher). Run `vertexops --help`.
--
--   commands.lua    the commands, flags and exit codes: one table, the parser's and --help's
--   args.lua        argv -> the invocation (command, argument, flags, options); usage errors
--   help.lua        the --help text and each command's, from the table; `help COMMAND`
--   version.lua     --version, `version`: vertexops, libcurl, OpenSSL, Lua
--   completion.lua  `completion bash|zsh`: the shell completion, from the table
--   calls.lua       cancel, get, delete, wait, list
--   cancel_all.lua  cancel-all: progress bar, summary, exit status
--   fake.lua        fake: a fake Vertex server in the foreground
--   render.lua      JSON, operations as text, summaries, progress lines
--   context.lua     where output goes (stdout, stderr, a terminal or not), options from a caller
--
-- In-process, as a spec drives it:
--   local out = {}
--   local status = require("vertexops.cli").main({ "get", name, "--json" },
--     { stdout = { write = function(_, ...) out[#out + 1] = table.concat({ ... }) end, flush = function() end },
--       options = { token = "test-token", ca_file = ca } })
local args = require "vertexops.cli.args"
local commands = require "vertexops.cli.commands"
local context = require "vertexops.cli.context"
local help = require "vertexops.cli.help"

local M = {}

-- Each command's runner: (invocation, context) -> exit status.
local RUNNERS = {
  cancel = "calls", get = "calls", delete = "calls", wait = "calls", list = "calls",
  ["cancel-all"] = "cancel_all", fake = "fake", help = "help", version = "version", completion = "completion",
}

-- The runner of a command, loaded when first used (fake loads vertexops.testing only then).
local function runner(command)
  return require("vertexops.cli." .. RUNNERS[command.name]).run
end

--- main(argv[, ctx]) -> exit status: runs the command line argv (a list of strings, without the
--- program's name) in the context ctx (vertexops.cli.context.new's fields; default: the process's
--- stdout, stderr and terminal). Bad arguments: a message on stderr and 2, before any request.
--- Errors of the command are reported by it (ctx:failure); anything else escaping it raises.
function M.main(argv, ctx)
  ctx = context.new(ctx)
  local ok, inv = pcall(args.parse, argv)
  if not ok then
    if args.is_usage(inv) then return ctx:usage_error(inv.message) end
    error(inv, 0)
  end
  if inv.help then
    ctx.stdout:write(inv.command and help.command_text(inv.command) or help.text())
    return 0
  end
  if inv.version then return runner(commands.command.version)({ flags = {} }, ctx) end
  return runner(inv.command)(inv, ctx)
end

--- run(argv) -> exit status of the program: main, and anything that escapes it (a defect of the
--- program) as one line on stderr and status 1, never a traceback.
function M.run(argv)
  local ok, status = pcall(M.main, argv)
  if ok then return status end
  io.stderr:write("vertexops: internal error: ", require("vertexops.cli.render").one_line(tostring(status)), "\n")
  return 1
end

M.RUNNERS = RUNNERS

return M
