-- vertexops.cli.commands: the command line's commands, flags and exit codes, as data.
--
-- The one place they are declared: the parser (vertexops.cli.args), `vertexops --help` and `vertexops help
-- COMMAND` (vertexops.cli.help), the bash and zsh completion (vertexops.cli.completion), the man page
-- (docs/vertexops.1, made by scripts/gen_man.lua) and the README check (spec/11_cli_commands_spec.lua)
-- read this table. Adding a flag is one entry in FLAGS and its
-- name in the `flags` of each command that takes it.
local options = require "vertexops.options"

local M = {}

-- A flag (in --help order):
--   name     "ca_file" is --ca-file on the command line
--   value    the placeholder of its value in --help ("S"); none: a switch (true when given)
--   type     how the value is read (TYPES below); a switch has none
--   option   the key of the call's options it sets (testing.start's for fake); none: the command
--            line's own (--json, --quiet, --wait, --region, which is a call's argument)
--   to       a function turning the read value into that option's value, when they differ
--   default  what applies when the flag is absent (from vertexops.options, never restated)
--   doc      one line of --help
--   alias    another spelling ("-h")
M.FLAGS = {
  { name = "region", value = "R", type = "string", doc = "region (default: the name's location)" },
  { name = "wait", doc = "with cancel or cancel-all: wait until the operation(s) have ended" },
  { name = "timeout", value = "S", type = "seconds", option = "timeout", default = options.DEFAULTS.timeout,
    doc = "seconds for the whole command, waiting included" },
  { name = "strategy", value = "S", type = "string", option = "strategy", default = "auto",
    choices = { "auto", "server", "poll" }, doc = "how to wait: auto, server (:wait long-poll) or poll (GET)" },
  { name = "endpoint", value = "URL", type = "string", option = "endpoint",
    default = "$" .. options.ENV.endpoint .. ", else Google's host of the name's location",
    doc = "endpoint template" },
  { name = "ca_file", value = "FILE", type = "string", option = "ca_file",
    default = "$" .. options.ENV.ca_file .. ", else the system store", doc = "PEM bundle to trust" },
  { name = "credentials", value = "FILE", type = "string", option = "credentials",
    default = "$GOOGLE_APPLICATION_CREDENTIALS, else the rest of the credentials chain",
    doc = "a credentials file (any type the library reads), instead of the chain" },
  { name = "impersonate_service_account", value = "EMAIL", type = "string", option = "impersonate_service_account",
    doc = "impersonate this service account with the credentials found (as gcloud does)" },
  { name = "api_version", value = "V", type = "string", option = "api_version",
    default = options.DEFAULTS.api_version, choices = { "v1beta1", "v1" }, doc = "REST version: v1beta1 or v1" },
  { name = "filter", value = "F", type = "string", option = "filter",
    doc = 'with list, cancel-all: a filter such as "' .. options.CANCEL_ALL.filter .. '" (cancel-all\'s default)' },
  { name = "kind", value = "K", type = "string", option = "kind", default = options.DEFAULTS.kind,
    doc = "with list, cancel-all: operations, or a collection of jobs (customJobs, batchPredictionJobs, "
      .. "pipelineJobs, tuningJobs, ...)" },
  { name = "page_size", value = "N", type = "whole", option = "page_size",
    doc = "with list, cancel-all: operations per request" },
  { name = "max_in_flight", value = "N", type = "count", option = "max_in_flight",
    default = options.CANCEL_ALL.max_in_flight, doc = "with cancel-all: requests at a time" },
  { name = "retries", value = "N", type = "whole", option = "retry", default = options.RETRY.max_retries,
    to = function(n) return n > 0 and { max_retries = n } or false end,
    doc = "retries of a failed request; 0: none" },
  { name = "port", value = "P", type = "port", option = "port", default = "a free one",
    doc = "with fake: the HTTPS port" },
  { name = "http_port", value = "P", type = "port", option = "http_port", default = "a free one",
    doc = "with fake: the plain HTTP port (control requests)" },
  { name = "dry_run", doc = "with cancel-all: list what would be cancelled, and cancel nothing" },
  { name = "yes", doc = "with cancel-all: cancel without asking first (it asks only when stdin and stderr are "
      .. "a terminal)" },
  { name = "key_file", value = "FILE", type = "string",
    doc = "with fake: write a service-account key file for it at FILE (token_uri on localhost, mode 0644)" },
  { name = "log_http", doc = "print every request and answer head on stderr, redacted (Authorization: REDACTED)" },
  { name = "json", doc = "print one JSON document on stdout" },
  { name = "quiet", doc = "print nothing on success" },
  { name = "help", alias = "-h", doc = "show this help (after a command: that command's)" },
  { name = "version", doc = "print the versions of vertexops, libcurl, OpenSSL and Lua, as the version command" },
}

-- How a flag's value is read: a check returning the value or nil, and what a refusal says
-- ("--page-size takes a whole number in digits, got '1e3'"; %s is the value as typed, quoted).
-- A whole number is written in digits ("50", not "50.0", "1e3", "0x10" or " 5"): at most 15
-- significant digits, so it reads exactly as an integer on every interpreter (LuaJIT included).
local function whole(s)
  local digits = s:match("^0*(%d+)$")
  if not digits or #digits > 15 then return nil end
  return tonumber(digits)
end
M.TYPES = {
  string = { read = function(s) return s end },
  seconds = { read = tonumber, refusal = "a number of seconds" },
  whole = { read = whole, refusal = "a whole number in digits, got '%s'" },
  count = { read = function(s)
    local n = whole(s)
    return n and n >= 1 and n or nil
  end, refusal = "a whole number of at least 1 in digits, got '%s'" },
  port = { read = function(s)
    local n = whole(s)
    return n and n >= 1 and n <= 65535 and n or nil
  end, refusal = "a port (1 to 65535)" },
}

-- The flags every command that calls the service takes.
local CALL = { "region", "timeout", "strategy", "endpoint", "ca_file", "credentials", "impersonate_service_account",
               "api_version", "filter", "page_size", "retries", "log_http", "json", "quiet" }
local function with(list, ...)
  local out = {}
  for i, v in ipairs(list) do out[i] = v end
  for i = 1, select("#", ...) do out[#out + 1] = select(i, ...) end
  return out
end

-- A command (in --help order): its name, its positional argument (none for fake; `optional`: it may
-- be left out; `choices`: the words it may be, which the completion offers), the flags it takes
-- (besides --help, which every command takes), and its lines of --help.
M.COMMANDS = {
  { name = "cancel", arg = "NAME", flags = with(CALL, "wait"),
    doc = "cancel an operation or a job (customJobs, pipelineJobs, ...; with --wait: then wait for it to end)" },
  { name = "get", arg = "NAME", flags = CALL, doc = "show an operation or a job" },
  { name = "delete", arg = "NAME", flags = CALL, doc = "delete an operation" },
  { name = "list", arg = "PARENT", flags = with(CALL, "kind"),
    doc = "list the operations of PARENT (projects/P/locations/L, or nested: .../customJobs/42) (every page); "
      .. "--kind: a collection of jobs instead" },
  { name = "wait", arg = "NAME", flags = CALL, doc = "wait until an operation or a job is done" },
  { name = "cancel-all", arg = "PARENT", flags = with(CALL, "wait", "max_in_flight", "kind", "dry_run", "yes"),
    doc = "cancel every running operation (or job: --kind) of PARENT (with --wait: then wait until each has "
      .. "ended); on a terminal it lists them first and asks (\"cancel N operations under PARENT? [y/N]\"; "
      .. "--yes: no question), shows a progress bar, then a summary; --dry-run: only list what it would cancel" },
  { name = "fake", flags = { "port", "http_port", "key_file", "json", "quiet" },
    doc = "run a fake Vertex server on loopback in the foreground, for tests (docs/fake.md): prints its "
      .. "endpoint, CA file, control URL, what to set inside nginx and control token "
      .. "($VERTEXOPS_FAKE_CONTROL_TOKEN); stops on SIGINT (Ctrl-C), SIGTERM or SIGHUP. Its guide: docs/fake.md, "
      .. "the library's rules: docs/contract.md (installed with the rock: luarocks doc vertexops --list)" },
  { name = "help", arg = "COMMAND", optional = true, flags = {},
    doc = "show the help of COMMAND (as vertexops COMMAND --help), or of every command (as vertexops --help)" },
  { name = "version", flags = { "json" },
    doc = "print the version of vertexops (the first line: \"vertexops\" and the version) and of the libcurl, OpenSSL and "
      .. "Lua it runs with (as --version); --json: one JSON document" },
  { name = "completion", arg = "SHELL", choices = { "bash", "zsh" }, flags = {},
    doc = "print the bash or zsh completion of these commands and flags (make install installs both): "
      .. "source <(vertexops completion bash)" },
}

-- Exit codes by the error's first (most specific) tag; 1 for any other failure, 2 for bad arguments.
M.EXIT = {
  TypeError = 2, ValueError = 2, AuthError = 3, HttpError = 4, ConnectionFailedError = 5,
  ConnectionError = 6, TimeoutError = 7, OperationError = 8, ResponseTypeError = 9,
}
M.USAGE_EXIT, M.OTHER_EXIT = 2, 1
-- cancel-all's question answered anything but yes (or not at all): nothing was cancelled
M.DECLINED_EXIT = M.OTHER_EXIT

--- The flag as typed: "--ca-file" for ca_file.
function M.spelling(flag)
  return "--" .. flag.name:gsub("_", "-")
end

-- Lookups: by name, by spelling; and for each command the set of flags it takes.
M.flag, M.by_spelling, M.command = {}, {}, {}
for _, f in ipairs(M.FLAGS) do
  assert(f.type == nil or M.TYPES[f.type], f.name)
  M.flag[f.name] = f
  M.by_spelling[M.spelling(f)] = f
  if f.alias then M.by_spelling[f.alias] = f end
end
for _, c in ipairs(M.COMMANDS) do
  c.takes = { help = true, version = true }
  for _, name in ipairs(c.flags) do
    c.takes[assert(M.flag[name], name).name] = true
  end
  M.command[c.name] = c
end

--- The commands that take a flag, in --help order.
function M.commands_taking(flag)
  local out = {}
  for _, c in ipairs(M.COMMANDS) do
    if c.takes[flag.name] then out[#out + 1] = c end
  end
  return out
end

return M
