-- vertexops.cli.completion: `vertexops completion bash|zsh`, the shell completion of the command line,
-- made from its one table (vertexops.cli.commands) when asked, so it cannot drift from the parser:
-- make install writes both from the built tree (no committed copy). Each offers the commands, the
-- flags of the command typed (every command takes --help and --version), a flag's choices
-- (--strategy, --api-version), files for a FILE, and help's and completion's argument.
local core = require "vertexops.core"
local commands = require "vertexops.cli.commands"

local M = {}

M.SHELLS = { "bash", "zsh" }

local function names(list, f)
  local out = {}
  for i, v in ipairs(list) do out[i] = f(v) end
  return out
end

local COMMAND_NAMES = names(commands.COMMANDS, function(c) return c.name end)

-- The words a command's argument may be: help's are the commands; completion's its choices.
local function arg_words(c)
  if c.name == "help" then return COMMAND_NAMES end
  return c.choices
end

-- The flags a command takes, in the table's order (--help and --version last, as every command takes them).
local function flags_of(c)
  local out = {}
  for _, f in ipairs(commands.FLAGS) do
    if c.takes[f.name] then out[#out + 1] = f end
  end
  return out
end

local function spellings(list) return names(list, commands.spelling) end

local function header(shell)
  return ("# %s completion of vertexops %s, made by `vertexops completion %s` from the command line's table\n"
    .. "# (lua/vertexops/cli/commands.lua). Load it with: source <(vertexops completion %s)\n"):format(
      shell, core.version, shell, shell)
end

--- bash() -> the bash completion script (complete -F _vertexops vertexops).
function M.bash()
  local valued, choice_cases, file_flags = {}, {}, {}
  for _, f in ipairs(commands.FLAGS) do
    if f.value then
      valued[#valued + 1] = commands.spelling(f)
      if f.choices then
        choice_cases[#choice_cases + 1] = ('        %s) COMPREPLY=( $(compgen -W "%s" -- "$cur") ); return 0 ;;')
          :format(commands.spelling(f), table.concat(f.choices, " "))
      elseif f.value == "FILE" then
        file_flags[#file_flags + 1] = commands.spelling(f)
      end
    end
  end
  local flag_cases, arg_cases = {}, {}
  for _, c in ipairs(commands.COMMANDS) do
    flag_cases[#flag_cases + 1] = ('        %s) flags="%s" ;;'):format(c.name,
      table.concat(spellings(flags_of(c)), " "))
    local words = arg_words(c)
    if words then
      arg_cases[#arg_cases + 1] = ('            %s) COMPREPLY=( $(compgen -W "%s" -- "$cur") ) ;;')
        :format(c.name, table.concat(words, " "))
    end
  end
  local global = { commands.spelling(commands.flag.help), commands.spelling(commands.flag.version) }
  return header("bash") .. table.concat({
    '_vertexops() {',
    '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="" cmd="" args=0 i w flags',
    '    (( COMP_CWORD > 0 )) && prev="${COMP_WORDS[COMP_CWORD-1]}"',
    '    # --flag=value: bash splits the word at "="',
    '    [[ "$cur" == "=" ]] && cur=""',
    '    [[ "$prev" == "=" ]] && (( COMP_CWORD > 1 )) && prev="${COMP_WORDS[COMP_CWORD-2]}"',
    '    # the command: the first word that is neither a flag nor a flag\'s value; then its arguments',
    '    for (( i = 1; i < COMP_CWORD; i++ )); do',
    '        w="${COMP_WORDS[i]}"',
    '        case "$w" in',
    '            ' .. table.concat(valued, "|") .. ')',
    '                (( i++ ))',
    '                [[ "${COMP_WORDS[i]}" == "=" ]] && (( i++ )) ;;',
    '            -*|=) ;;',
    '            *) if [[ -z "$cmd" ]]; then cmd="$w"; else (( args++ )); fi ;;',
    '        esac',
    '    done',
    '    # a flag\'s value',
    '    case "$prev" in',
    table.concat(choice_cases, "\n"),
    '        ' .. table.concat(file_flags, "|") .. ')',
    '            compopt -o filenames 2>/dev/null',
    '            COMPREPLY=( $(compgen -f -- "$cur") ); return 0 ;;',
    '        ' .. table.concat(valued, "|") .. ') COMPREPLY=(); return 0 ;;',
    '    esac',
    '    case "$cmd" in',
    table.concat(flag_cases, "\n"),
    '        *) flags="' .. table.concat(global, " ") .. '" ;;',
    '    esac',
    '    if [[ "$cur" == -* ]]; then',
    '        COMPREPLY=( $(compgen -W "$flags" -- "$cur") )',
    '    elif [[ -z "$cmd" ]]; then',
    '        COMPREPLY=( $(compgen -W "' .. table.concat(COMMAND_NAMES, " ") .. '" -- "$cur") )',
    '    elif (( args == 0 )); then',
    '        case "$cmd" in',
    table.concat(arg_cases, "\n"),
    '            *) COMPREPLY=() ;;',
    '        esac',
    '    else',
    '        COMPREPLY=()',
    '    fi',
    '    return 0',
    '}',
    'complete -F _vertexops vertexops',
  }, "\n") .. "\n"
end

-- A doc line as a zsh description: its first clause, without the characters _arguments and
-- _describe read (brackets, colons, quotes, backslashes).
local function describe(doc)
  local s = doc:gsub("^with [^:]*:%s*", ""):gsub("%s*%(.*", ""):gsub("[;:].*", ""):gsub("[%[%]'\"\\`$]", "")
  if #s > 60 then s = s:sub(1, 57) .. "..." end
  return s
end

-- One _arguments spec of a flag.
local function zsh_flag(f)
  local spelled, doc = commands.spelling(f), describe(f.doc)
  if f.name == "help" or f.name == "version" then return ("'(- *)%s[%s]'"):format(spelled, doc) end
  if not f.value then return ("'%s[%s]'"):format(spelled, doc) end
  local action = " "
  if f.choices then action = "(" .. table.concat(f.choices, " ") .. ")"
  elseif f.value == "FILE" then action = "_files" end
  return ("'%s=[%s]:%s:%s'"):format(spelled, doc, f.value, action)
end

--- zsh() -> the zsh completion script (#compdef vertexops: a file _vertexops in $fpath, or sourced).
function M.zsh()
  local described, cases = {}, {}
  for _, c in ipairs(commands.COMMANDS) do
    described[#described + 1] = ("    '%s:%s'"):format(c.name, describe(c.doc))
    local specs = names(flags_of(c), zsh_flag)
    if c.arg then
      local words = arg_words(c)
      specs[#specs + 1] = ("'%s:%s:%s'"):format(c.optional and ":" or "", c.arg,
        words and "(" .. table.concat(words, " ") .. ")" or " ")
    end
    cases[#cases + 1] = ("        %s)\n          _arguments \\\n            %s && ret=0 ;;"):format(c.name,
      table.concat(specs, " \\\n            "))
  end
  return "#compdef vertexops\n" .. header("zsh") .. table.concat({
    '',
    '_vertexops() {',
    '  local curcontext="$curcontext" state line ret=1',
    '  typeset -A opt_args',
    '  local -a cmds',
    '  cmds=(',
    table.concat(described, "\n"),
    '  )',
    '  _arguments -C \\',
    '    ' .. zsh_flag(commands.flag.help) .. ' \\',
    '    ' .. zsh_flag(commands.flag.version) .. ' \\',
    "    '1: :->command' \\",
    "    '*:: :->arg' && ret=0",
    '  case $state in',
    "    command) _describe -t commands 'vertexops command' cmds && ret=0 ;;",
    '    arg)',
    '      curcontext="${curcontext%:*:*}:vertexops-$words[1]:"',
    '      case $words[1] in',
    table.concat(cases, "\n"),
    '      esac ;;',
    '  esac',
    '  return ret',
    '}',
    '',
    'if [[ "$funcstack[1]" == "_vertexops" ]]; then _vertexops "$@"; else compdef _vertexops vertexops; fi',
  }, "\n") .. "\n"
end

--- run(inv, ctx) -> the exit status of `vertexops completion SHELL`: the script on stdout, or a
--- usage error for a shell it does not know.
function M.run(inv, ctx)
  local make = inv.target == "bash" and M.bash or inv.target == "zsh" and M.zsh
  if not make then
    return ctx:usage_error("completion knows " .. table.concat(M.SHELLS, " and ") .. ", not " .. inv.target)
  end
  ctx.stdout:write(make())
  return 0
end

return M
