-- make test: once
-- The man page, docs/vertexops.1: made by scripts/gen_man.lua (make man) from the command line's table,
-- committed as made, rendered by man and groff without a warning, naming every command and flag.
local commands = require "vertexops.cli.commands"
local core = require "vertexops.core"
local H = require "support.helper"

local PAGE = "docs/vertexops.1"

local function escape(s) return (s:gsub("%p", "%%%0")) end

describe("the man page " .. PAGE, function()
  it("is what scripts/gen_man.lua makes of the table (else: make man)", function()
    local out, ok = H.run(H.lua_command() .. " scripts/gen_man.lua 2>/dev/null")
    assert.is_true(ok, out)
    out = out:gsub("exit:%d+\n?$", "")
    assert.is_true(out == H.read(PAGE), PAGE .. " is not what scripts/gen_man.lua makes: run make man")
  end)

  it("renders with groff without a warning", function()
    local out, ok = H.run("groff -man -Tutf8 -ww -z " .. PAGE)
    assert.is_true(ok, out)
    assert.are.equal("", out)
  end)

  it("renders with man -l at 80 and 60 columns without a warning", function()
    for _, width in ipairs { "80", "60" } do
      local errf = os.tmpname()
      local out, ok = H.run("man -l " .. PAGE .. " 2>" .. errf, { MANPAGER = "cat", PAGER = "cat", MANWIDTH = width })
      local err = H.read(errf)
      os.remove(errf)
      assert.is_true(ok, out .. err)
      assert.are.equal("", err)
      assert.matches("^VERTEXOPS%(1%)", out)
    end
  end)

  it("names the version of csrc/vx.h", function()
    assert.matches('\n%.TH VERTEXOPS 1 "[^"]*" "vertexops ' .. escape(core.version) .. '"', H.read(PAGE))
  end)

  it("gives every command of the table in SYNOPSIS and COMMANDS, and every flag in OPTIONS", function()
    local out = H.run("man -l " .. PAGE, { MANPAGER = "cat", PAGER = "cat", MANWIDTH = "200" })
    local synopsis = assert(out:match("\nSYNOPSIS\n(.-)\n%u"), out)
    local cmds = assert(out:match("\nCOMMANDS\n(.-)\n%u"), out)
    local opts = assert(out:match("\nOPTIONS\n(.-)\n%u"), out)
    assert.is_true(#commands.COMMANDS >= 5 and #commands.FLAGS >= 5, "the table lists next to nothing")
    for _, c in ipairs(commands.COMMANDS) do
      assert.matches("\n%s+vertexops " .. escape(c.name) .. " ", "\n" .. synopsis, nil, c.name)
      assert.matches("\n%s+" .. escape(c.name) .. "%f[ \n]", "\n" .. cmds, nil, c.name)
    end
    for _, f in ipairs(commands.FLAGS) do
      assert.matches("\n%s+" .. escape(commands.spelling(f)) .. "%f[ ,\n]", "\n" .. opts, nil, f.name)
    end
  end)
end)
