-- vertexops.cli.args: the command line's words -> a command, its argument and its options, by the
-- table of vertexops.cli.commands. A mistake raises a usage error (M.is_usage): main prints it and
-- exits 2, before any request.
local commands = require "vertexops.cli.commands"

local M = {}

local Usage = {}
Usage.__index = Usage
Usage.__tostring = function(e) return e.message end

local function usage_error(message)
  error(setmetatable({ message = message }, Usage), 0)
end

--- is_usage(v): v is a usage error raised here.
function M.is_usage(v)
  return getmetatable(v) == Usage
end

-- What the user typed, as a message shows it: control bytes as '?', at most 40 bytes.
local function quoted(s)
  return (s:sub(1, 40):gsub("%c", "?")) .. (#s > 40 and "..." or "")
end

--- split(argv) -> given, words: the flags given (flag name -> the text typed, or true for a switch;
--- the last one wins) and the other words in order. Flags go anywhere, as `--flag value` or
--- `--flag=value`.
function M.split(argv)
  local given, words = {}, {}
  local i = 1
  while i <= #argv do
    local a = argv[i]
    local spelled, value = a:match("^(%-%-[%w-]+)=(.*)$")
    local flag = commands.by_spelling[spelled or a]
    if flag then
      if flag.value then
        if not value then
          i = i + 1
          value = argv[i]
          if value == nil then usage_error(a .. " needs a value") end
        end
        given[flag.name] = value
      else
        if value then usage_error(spelled .. " takes no value") end
        given[flag.name] = true
      end
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      usage_error("unknown option " .. a)
    else
      words[#words + 1] = a
    end
    i = i + 1
  end
  return given, words
end

-- "a", "a or b", "a, b or c"
local function either(list, last)
  if #list == 1 then return list[1] end
  return table.concat(list, ", ", 1, #list - 1) .. " " .. last .. " " .. list[#list]
end

-- The command of the words, with its argument; raises a usage error for a missing or unknown
-- command, a missing argument or one too many.
local function command_of(words)
  local name = words[1]
  if not name then usage_error("a command is needed") end
  local command = commands.command[name]
  if not command then usage_error("unknown command " .. name) end
  local n = command.arg and 2 or 1
  if command.arg and not command.optional and not words[2] then
    usage_error(name .. " needs " .. (command.choices and either(command.choices, "or") or "a name"))
  end
  if words[n + 1] then usage_error("unexpected argument " .. words[n + 1]) end
  return command, words[2]
end

-- Refuses a flag the command does not take, naming the shorter list: the commands that take the
-- flag ("--wait goes with cancel or cancel-all"), or the flags the command takes ("fake takes only
-- --port, --http-port, --json and --quiet").
local function check_takes(command, given)
  for _, flag in ipairs(commands.FLAGS) do
    if given[flag.name] ~= nil and not command.takes[flag.name] then
      local takers = commands.commands_taking(flag)
      if #takers <= #command.flags then
        local names = {}
        for i, c in ipairs(takers) do names[i] = c.name end
        usage_error(commands.spelling(flag) .. " goes with " .. either(names, "or"))
      end
      local spelled = {}
      for i, f in ipairs(command.flags) do spelled[i] = commands.spelling(commands.flag[f]) end
      if #spelled == 0 then usage_error(command.name .. " takes no options") end
      usage_error(command.name .. " takes only " .. either(spelled, "and"))
    end
  end
end

-- The options the flags given set (flag.option), each value read by its flag's type.
local function options_of(given)
  local opts = {}
  for _, flag in ipairs(commands.FLAGS) do
    local text = given[flag.name]
    if text ~= nil and flag.option then
      local kind = commands.TYPES[flag.type]
      local value = kind.read(text)
      if value == nil then
        usage_error(commands.spelling(flag) .. " takes " .. kind.refusal:format(quoted(text)))
      end
      if flag.to then value = flag.to(value) end
      opts[flag.option] = value
    end
  end
  return opts
end

--- parse(argv) -> the invocation: {help = true[, command]} when --help is given (command: the
--- command named before or after it, whose help is wanted); {version = true} when --version is; else
--- {command (an entry of commands.COMMANDS), target (its argument), flags (flag name -> text or
--- true), options (the call's options the flags set)}. Raises a usage error for any mistake.
function M.parse(argv)
  local given, words = M.split(argv)
  if given.help then
    if words[1] == nil then return { help = true } end
    return { help = true, command = commands.command[words[1]] or usage_error("unknown command " .. words[1]) }
  end
  if given.version then return { version = true } end
  local command, target = command_of(words)
  check_takes(command, given)
  return { command = command, target = target, flags = given, options = options_of(given) }
end

return M
