-- make test: once
-- bin/vertexops cancel-all on a real terminal (a pseudo-terminal from script(1), the answer typed
-- ahead on its input): it lists, asks with the count, and cancels only on yes; and as a script
-- runs it (stdin not a terminal) it never asks.
-- Contract: README.md, "Command line"; docs/contract.md, "cancel_all and what a listing holds".
local H = require "support.helper"

describe("bin/vertexops cancel-all on a terminal", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  local function env()
    return { GOOGLE_OAUTH_ACCESS_TOKEN = "test-token", VERTEXOPS_ENDPOINT = server.endpoint,
             GOOGLE_CLOUD_QUOTA_PROJECT = "" }
  end
  local function command(args)
    return H.lua_command() .. " bin/vertexops cancel-all " .. H.PARENT .. " " .. args .. " --ca-file " .. server.ca_file
  end
  -- runs the command on a pseudo-terminal with input typed ahead; returns its output, exit code
  local function on_terminal(args, input)
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(input)
    f:close()
    local out, _, code = H.run("timeout 60 script -qec '" .. command(args) .. "' /dev/null < " .. path, env())
    os.remove(path)
    return out, code
  end

  it("asks with the count and cancels on y", function()
    if not H.have("script") then return pending("no script(1)") end
    server:create_many(3, { done_after = 3600 })
    local out, code = on_terminal("", "y\n")
    assert.are.equal(0, code, out)
    assert.matches("cancel 3 operations under " .. H.PARENT .. "? [y/N] ", out, 1, true)
    assert.matches("listed 3, cancelled 3, failed 0", out, 1, true)
    assert.are.equal(3, #server:log("cancel"))
  end)

  it("cancels nothing on n: exit 1", function()
    if not H.have("script") then return pending("no script(1)") end
    server:create_many(3, { done_after = 3600 })
    local out, code = on_terminal("", "n\n")
    assert.are.equal(1, code, out)
    assert.matches("vertexops: not confirmed: nothing cancelled", out, 1, true)
    assert.are.equal(0, #server:log("cancel"))
    assert.are.equal(1, #server:log("list"))
  end)

  it("does not ask with --yes", function()
    if not H.have("script") then return pending("no script(1)") end
    server:create_many(2, { done_after = 3600 })
    local out, code = on_terminal("--yes", "n\n")
    assert.are.equal(0, code, out)
    assert.is_nil(out:find("[y/N]", 1, true))
    assert.are.equal(2, #server:log("cancel"))
  end)

  it("does not ask when stdin is not a terminal, as in a script", function()
    server:create_many(2, { done_after = 3600 })
    local out, _, code = H.run(command("") .. " < /dev/null", env())
    assert.are.equal(0, code, out)
    assert.is_nil(out:find("[y/N]", 1, true))
    assert.are.equal(2, #server:log("cancel"))
  end)
end)
