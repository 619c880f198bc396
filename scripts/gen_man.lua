-- scripts/gen_man.lua: writes on stdout the man page docs/vertexops.1 (plain roff, man macros), made
-- from the command line's own table (lua/vertexops/cli/commands.lua: commands, flags, defaults,
-- exit codes) and the notes of its --help (lua/vertexops/cli/help.lua), plus the sections a man page
-- has that --help lacks (environment, files, examples). make man runs it; the page is committed
-- (packages install it without running Lua) and spec/14_docs_man_page_spec.lua checks the
-- committed page is this output.
--   LUA_PATH="./lua/?.lua;./lua/?/init.lua;;" LUA_CPATH="./build/5.4/?.so;;" lua5.4 scripts/gen_man.lua
local core = require "vertexops.core"
local commands = require "vertexops.cli.commands"
local help = require "vertexops.cli.help"
local options = require "vertexops.options"

-- Text as roff reads it: backslashes and hyphens escaped, a line never starting with a control character.
local function esc(s)
  s = s:gsub("\\", "\\e"):gsub("%-", "\\-")
  return (s:gsub("^([.'])", "\\&%1"):gsub("\n([.'])", "\n\\&%1"))
end

local out = {}
local function put(...)
  for i = 1, select("#", ...) do out[#out + 1] = select(i, ...) end
end

-- Prose: escaped, and a long word (a resource name's grammar) may break after any of its slashes.
local function prose(text)
  return (esc(text):gsub("%S+", function(word)
    return #word > 30 and word:gsub("/", "/\\:") or word
  end))
end

-- a paragraph of text (the notes' lines joined: roff fills them)
local function para(text)
  put(".PP", prose((text:gsub("%s*\n%s*", " "))))
end

local function flag_head(f)
  local spelled = esc(commands.spelling(f))
  if f.value then return ".BI " .. spelled .. " \" " .. esc(f.value) .. "\"" end
  return ".B " .. spelled
end

put([[.\" Made by scripts/gen_man.lua (make man) from lua/vertexops/cli/commands.lua and help.lua: edit those.]],
  ('.TH VERTEXOPS 1 "" "vertexops %s" "User Commands"'):format(core.version),
  ".nh", ".ad l",
  ".SH NAME",
  "vertexops \\- cancel, watch and wait for Google Vertex AI long\\-running operations",
  ".SH SYNOPSIS")
for i, c in ipairs(commands.COMMANDS) do
  if i > 1 then put(".br") end
  local line = ".B vertexops " .. esc(c.name)
  if c.arg then line = ".BI \"vertexops " .. esc(c.name) .. " \" " .. (c.optional and "[" .. c.arg .. "]" or c.arg) end
  put(line .. (c.arg and " \" [options]\"" or " \"[options]\""))
end
put(".br", ".B vertexops \\-\\-help", ".br", ".B vertexops \\-\\-version")

put(".SH DESCRIPTION")
para("vertexops cancels, shows, deletes, lists and waits for the long-running operations and jobs of "
  .. "Google Vertex AI, one at a time or every one under a parent (cancel-all), through the vertexops "
  .. "Lua library: its retries, deadlines and tagged errors. Flags go anywhere on the line, as "
  .. "--flag value or --flag=value. vertexops COMMAND --help or vertexops help COMMAND shows one "
  .. "command's help.")

put(".SH COMMANDS")
for _, c in ipairs(commands.COMMANDS) do
  if c.arg then
    put(".TP", ".BI \"" .. esc(c.name) .. " \" " .. (c.optional and "[" .. c.arg .. "]" or c.arg))
  else
    put(".TP", ".B " .. esc(c.name))
  end
  local takes = {}
  for _, name in ipairs(c.flags) do takes[#takes + 1] = esc(commands.spelling(commands.flag[name])) end
  put(prose(c.doc) .. ".", ".br", "Takes " .. (#takes > 0 and table.concat(takes, ", ") .. ", " or "")
    .. "\\-\\-help and \\-\\-version.")
end

put(".SH OPTIONS")
for _, f in ipairs(commands.FLAGS) do
  local doc = f.doc
  if f.default ~= nil then doc = doc .. " (default: " .. tostring(f.default) .. ")" end
  put(".TP", flag_head(f) .. (f.alias and ", " .. esc(f.alias) or ""), esc(doc) .. ".")
end

put(".SH NAMES AND CREDENTIALS")
for block in (help.NOTES .. "\n\n"):gmatch("(.-)\n\n") do para(block) end

put(".SH EXIT STATUS", ".PD 0")
for line in help.exit_lines():gmatch("[^\n]+") do
  local code, what = line:match("^%s*(%d+) (.*)$")
  put(".TP", ".B " .. code, esc(what))
end
put(".PD")
para(help.EXIT_NOTES)

put(".SH ENVIRONMENT")
local env = {}
for opt, var in pairs(options.ENV) do env[#env + 1] = { var, "the default of the " .. opt .. " option" } end
table.sort(env, function(a, b) return a[1] < b[1] end)
for _, v in ipairs {
  { "GOOGLE_OAUTH_ACCESS_TOKEN", "an access token, the first of the credentials chain" },
  { "GOOGLE_APPLICATION_CREDENTIALS", "a credentials file, when no token is given" },
  { "CLOUDSDK_CONFIG", "where gcloud's application-default credentials are (else ~/.config/gcloud)" },
  { "GCE_METADATA_HOST", "the metadata server's host[:port], the last of the chain" },
  { "NO_GCE_CHECK", "True: never ask the metadata server" },
  { "VERTEXOPS_FAKE_CONTROL_TOKEN", "with fake: the token of its control requests" },
} do env[#env + 1] = v end
for _, v in ipairs(env) do put(".TP", ".B " .. esc(v[1]), esc(v[2]) .. ".") end
para("The library's contract, docs/contract.md, lists every variable it reads and those libcurl and "
  .. "OpenSSL read on their own (proxies among them).")

put(".SH FILES")
put(".TP", ".I PREFIX/share/bash\\-completion/completions/vertexops",
  "bash completion (vertexops completion bash).",
  ".TP", ".I PREFIX/share/zsh/vendor\\-completions/_vertexops", "zsh completion (vertexops completion zsh).")

put(".SH EXAMPLES")
for _, ex in ipairs {
  { "Cancel an operation and wait until it has ended:",
    "vertexops cancel projects/p/locations/us-central1/operations/123 --wait" },
  { "Cancel every running custom job of a project's region, asking first on a terminal:",
    "vertexops cancel-all projects/p/locations/europe-west4 --kind customJobs" },
  { "A fake Vertex server for tests, its endpoint and CA file printed as JSON:",
    "vertexops fake --json" },
  { "The shell completion for the running bash:",
    "source <(vertexops completion bash)" },
} do
  put(".PP", esc(ex[1]), ".PP", ".RS 4", ".EX", esc(ex[2]), ".EE", ".RE")
end

put(".SH SEE ALSO")
para("docs/contract.md (the library's contract), docs/fake.md (the fake server), README.md; installed "
  .. "with the rock: luarocks doc vertexops --list.")

io.write(table.concat(out, "\n"), "\n")
