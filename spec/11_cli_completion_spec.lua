-- make test: once
-- The shell completion as a shell runs it: bin/vertexops's `completion bash` sourced by bash, whose
-- completion function (complete -p, compgen) offers the commands, each command's flags, a flag's
-- choices and files; `completion zsh` loaded by zsh's compinit. Both are made from the table
-- (vertexops.cli.commands) the parser reads, so what they offer is checked against it.
local commands = require "vertexops.cli.commands"
local H = require "support.helper"

-- The script bin/vertexops prints for shell (as make install writes it), in a file.
local function script(shell)
  local path = os.tmpname()
  local out, ok = H.run(H.lua_command() .. " bin/vertexops completion " .. shell .. " > " .. path .. " 2>&1")
  assert.is_true(ok, out .. H.read(path, true))
  return path
end

local function sorted(list)
  table.sort(list)
  return list
end

local function words(s)
  local out = {}
  for w in s:gmatch("%S+") do out[#out + 1] = w end
  return sorted(out)
end

describe("vertexops completion bash, in bash", function()
  local file
  setup(function() file = script("bash") end)
  teardown(function() os.remove(file) end)

  -- What the completion offers for the words typed (the last one being completed).
  local function offers(typed)
    local list = {}
    for w in (typed .. " "):gmatch("(.-) ") do list[#list + 1] = '"' .. w .. '"' end -- the last: "" or a prefix
    local out, ok = H.run(("bash --norc --noprofile -c 'source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _vertexops; "
      .. "printf \"%%s\\n\" \"${COMPREPLY[@]}\"'"):format(file, table.concat(list, " "), #list - 1))
    assert.is_true(ok, out)
    return words(out)
  end

  it("is registered for the command vertexops (complete -p)", function()
    local out, ok = H.run("bash --norc --noprofile -c 'source " .. file .. "; complete -p vertexops'")
    assert.is_true(ok, out)
    assert.are.equal("complete -F _vertexops vertexops\n", out)
  end)

  it("offers every command of the table, and those starting with what is typed", function()
    local all = {}
    for i, c in ipairs(commands.COMMANDS) do all[i] = c.name end
    assert.are.same(sorted(all), offers("vertexops "))
    assert.are.same({ "cancel", "cancel-all" }, offers("vertexops canc"))
  end)

  it("offers, after each command, exactly the flags it takes (--help and --version too)", function()
    for _, c in ipairs(commands.COMMANDS) do
      local expected = {}
      for _, f in ipairs(commands.FLAGS) do
        if c.takes[f.name] then expected[#expected + 1] = commands.spelling(f) end
      end
      assert.are.same(sorted(expected), offers("vertexops " .. c.name .. " x --"), c.name)
    end
  end)

  it("finds the command after flags and their values", function()
    assert.are.same({ "--dry-run" }, offers("vertexops --timeout 5 cancel-all --d"))
    assert.are.same({ "--dry-run" }, offers("vertexops --strategy = poll cancel-all --d"))
  end)

  it("offers a flag's choices, also after --flag=", function()
    assert.are.same({ "auto", "poll", "server" }, offers("vertexops get x --strategy "))
    assert.are.same({ "v1", "v1beta1" }, offers("vertexops get x --api-version = v"))
  end)

  it("offers files for a FILE flag", function()
    assert.are.same({ "spec/support" }, offers("vertexops get x --ca-file spec/supp"))
    assert.are.same({ "spec/support/helper.lua" }, offers("vertexops fake --key-file spec/support/help"))
  end)

  it("offers commands after help, shells after completion, and nothing for a NAME", function()
    assert.are.same({ "get" }, offers("vertexops help ge"))
    assert.are.same({ "bash" }, offers("vertexops completion ba"))
    assert.are.same({}, offers("vertexops get projects/p/locations/l/operations/"))
  end)
end)

describe("vertexops completion zsh", function()
  local file
  setup(function() file = script("zsh") end)
  teardown(function() os.remove(file) end)
  local has_zsh = H.have("zsh")

  it("is a #compdef file naming every command and flag of the table", function()
    local text = H.read(file)
    assert.matches("^#compdef vertexops\n", text)
    for _, c in ipairs(commands.COMMANDS) do assert.matches("\n    '" .. c.name:gsub("%p", "%%%0") .. ":", text) end
    for _, f in ipairs(commands.FLAGS) do
      assert.matches("'[^']*" .. commands.spelling(f):gsub("%p", "%%%0") .. "[=%[]", text)
    end
  end)

  it("parses in zsh and registers _vertexops for vertexops through compinit", function()
    if not has_zsh then return pending("no zsh (make deps installs it)") end
    local dump = os.tmpname()
    local out, ok = H.run(("zsh -f -c 'autoload -U compinit && compinit -u -d %s && source %s && "
      .. "print -r -- $_comps[vertexops] && whence -w _vertexops'"):format(dump, file))
    os.remove(dump)
    assert.is_true(ok, out)
    assert.are.equal("_vertexops\n_vertexops: function\n", out)
    out, ok = H.run("zsh -n " .. file)
    assert.is_true(ok, out)
  end)
end)
