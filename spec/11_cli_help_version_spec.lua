-- The command line's own commands: --version and `version` (vertexops's version, then libcurl's,
-- OpenSSL's and Lua's), `help COMMAND` and `COMMAND --help` (one command's help, from the table),
-- `completion SHELL`'s refusals (the scripts themselves: spec/11_cli_completion_spec.lua). In-process;
-- nothing here sends a request (the fake is there to witness it).
local cjson = require "cjson"
local core = require "vertexops.core"
local commands = require "vertexops.cli.commands"
local H = require "support.helper"

describe("vertexops --version and version", function()
  local fake = H.fake_server()
  local function main(argv) return H.cli_main(fake.server, argv) end

  it("prints vertexops's version first, then libcurl's, OpenSSL's and Lua's, and exits 0", function()
    local out, err, status = main { "--version" }
    assert.are.equal(0, status, err)
    local lines = {}
    for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.are.same({ "vertexops " .. core.version, "libcurl " .. core.curl_version, core.openssl_version },
      { lines[1], lines[2], lines[3] })
    assert.matches("^OpenSSL %d+%.%d+%.%d+", lines[3])
    assert.matches("^" .. _VERSION, lines[4])
    assert.are.equal(4, #lines)
    assert.are.equal("", err)
  end)

  it("is the same text as the version command", function()
    assert.are.equal((main { "--version" }), (main { "version" }))
  end)

  it("wins over a command's arguments, and sends nothing", function()
    local out, _, status = main { "get", H.NAME .. "1", "--version" }
    assert.are.equal(0, status)
    assert.are.equal((main { "version" }), out)
    assert.are.same({}, fake.server:log())
  end)

  it("gives each version as a field of one JSON document with --json", function()
    local out, _, status = main { "version", "--json" }
    assert.are.equal(0, status)
    local jit = rawget(_G, "jit")
    assert.are.same({ vertexops = core.version, libcurl = core.curl_version, openssl = core.openssl_version,
                      lua = _VERSION .. (jit and " (" .. jit.version .. ")" or "") }, cjson.decode(out))
  end)
end)

describe("vertexops help COMMAND", function()
  local fake = H.fake_server()
  local function main(argv) return H.cli_main(fake.server, argv) end

  it("is the whole help without a command, as --help", function()
    local out, _, status = main { "help" }
    assert.are.equal(0, status)
    assert.are.equal((main { "--help" }), out)
    assert.matches("^usage: vertexops", out)
  end)

  it("is, for each command, what COMMAND --help and --help COMMAND print", function()
    for _, c in ipairs(commands.COMMANDS) do
      local out, err, status = main { "help", c.name }
      assert.are.equal(0, status, c.name .. ": " .. err)
      assert.are.equal(out, (main { c.name, "--help" }), c.name)
      assert.are.equal(out, (main { "--help", c.name }), c.name)
      assert.matches("^usage: vertexops " .. c.name:gsub("%p", "%%%0") .. " ", out)
    end
  end)

  it("lists the flags the command takes, and no other", function()
    for _, c in ipairs(commands.COMMANDS) do
      local out = main { "help", c.name }
      for _, f in ipairs(commands.FLAGS) do
        local listed = out:find("\n  " .. commands.spelling(f):gsub("%p", "%%%0") .. "[ \n]") ~= nil
        assert.are.equal(c.takes[f.name] == true, listed, c.name .. " and " .. commands.spelling(f))
      end
    end
  end)

  it("gives the exit statuses of the errors for a command that calls the service", function()
    local out = main { "help", "cancel-all" }
    for tag, code in pairs(commands.EXIT) do
      if code ~= commands.USAGE_EXIT then assert.matches("\n  " .. code .. " " .. tag .. "\n", out) end
    end
  end)

  it("refuses a command it does not know, with status 2, before any request", function()
    for _, argv in ipairs { { "help", "cancle" }, { "cancle", "--help" } } do
      local out, err, status = main(argv)
      assert.are.equal(2, status)
      assert.are.equal("", out)
      assert.matches("^vertexops: unknown command cancle\n", err)
    end
    assert.are.same({}, fake.server:log())
  end)
end)

describe("vertexops completion", function()
  local fake = H.fake_server()
  local function main(argv) return H.cli_main(fake.server, argv) end

  it("needs a shell it knows: bash or zsh (status 2)", function()
    local _, err, status = main { "completion" }
    assert.are.equal(2, status)
    assert.matches("^vertexops: completion needs bash or zsh\n", err)
    _, err, status = main { "completion", "fish" }
    assert.are.equal(2, status)
    assert.matches("^vertexops: completion knows bash and zsh, not fish\n", err)
  end)

  it("prints a script for each shell it knows", function()
    for _, shell in ipairs { "bash", "zsh" } do
      local out, err, status = main { "completion", shell }
      assert.are.equal(0, status, err)
      assert.matches("_vertexops", out)
    end
  end)
end)
