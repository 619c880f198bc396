-- The examples run against the fake server, as a user would run them against Vertex.
local H = require "support.helper"

describe("examples", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  local function run(script, args)
    return H.run(H.lua_command() .. " examples/" .. script .. " " .. args, {
      GOOGLE_OAUTH_ACCESS_TOKEN = "test-token", VERTEXOPS_ENDPOINT = server.endpoint,
      VERTEXOPS_CA_FILE = server.ca_file, GOOGLE_CLOUD_QUOTA_PROJECT = "" })
  end

  it("cancel_and_wait.lua cancels and reports CANCELLED", function()
    local op = server:create { done_after = 3600 }
    local out, ok = run("cancel_and_wait.lua", op.name)
    assert.is_true(ok, out)
    assert.are.equal(op.name .. " was cancelled\n", out)
  end)

  it("cancel_and_wait.lua reports an operation that cannot be cancelled", function()
    local op = server:create { cancel = "unimplemented" }
    local out, ok = run("cancel_and_wait.lua", op.name)
    assert.is_false(ok)
    assert.matches("cannot be cancelled", out)
  end)

  it("list_running.lua lists only running operations", function()
    server:create {}
    server:create { done = true }
    server:create {}
    local out, ok = run("list_running.lua", H.PARENT)
    assert.is_true(ok, out)
    assert.matches("2 running\n$", out)
    assert.are.equal("filter=done%3Dfalse&pageSize=100", server:log()[1].query)
  end)

  it("service_account.lua gets an operation with a key file", function()
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p " .. dir)
    local key = H.fake.make_rsa_key(dir)
    H.fake.write(dir .. "/sa.json", require("cjson").encode { type = "service_account", private_key = key,
      client_email = "r@p.iam", private_key_id = "k", token_uri = server.endpoint .. "/token" })
    local op = server:create { done = true }
    local out, ok = run("service_account.lua", dir .. "/sa.json " .. op.name)
    os.execute("rm -rf " .. dir)
    assert.is_true(ok, out)
    assert.are.equal(op.name .. "\tdone\ntoken requests: 1\n", out)
  end)

  it("game_loop.lua cancels 100 operations from a frame loop", function()
    for _ = 1, 100 do server:create {} end
    server:fault { match = "cancel", delay = 0.05, times = 100 }
    local out, ok = run("game_loop.lua", H.PARENT)
    assert.is_true(ok, out)
    local n, failed, frames = out:match("^cancelled (%d+) operations %((%d+) failed%) in (%d+) frames; worst frame [%d.]+ ms")
    assert.are.equal("100", n, out)
    assert.are.equal("0", failed)
    assert.is_true(tonumber(frames) > 1)
    assert.are.equal(100, #server:log("cancel"))
    assert.are.equal(1, server:connections())
  end)

  it("testing/: the example suite of a user's module passes with busted against vertexops.testing", function()
    -- run from its own directory, as a user runs theirs: the library from this checkout's lua/ and build
    local pwd = H.run("pwd"):match("[^\n]+")
    local cpath = ((";" .. (os.getenv("LUA_CPATH") or "")):gsub(";%./", ";" .. pwd .. "/")):sub(2)
    local out, ok = H.run("sh -c 'cd examples/testing && busted --lua=" .. H.lua_command() .. " -o TAP'", {
      LUA_PATH = pwd .. "/lua/?.lua;" .. pwd .. "/lua/?/init.lua;;", LUA_CPATH = cpath })
    assert.is_true(ok, out)
    assert.matches("\nok 5 ", out)
    assert.is_nil(out:find("not ok", 1, true), out)
  end)

  it("coroutine_wait.lua keeps its frame loop running while it waits", function()
    local a = server:create { done_after = 1.5 }
    local b = server:create { done_after = 1 }
    local out, ok = run("coroutine_wait.lua", a.name .. " " .. b.name)
    assert.is_true(ok, out)
    local frames = tonumber(out:match(a.name:gsub("%p", "%%%0") .. ": done after (%d+) frames"))
    assert.is_number(frames, out)
    -- 1.5 s at 60 frames a second is 90 frames; a loop blocked by each poll would run a handful
    assert.is_true(frames > 10, "the loop ran only " .. tostring(frames) .. " frames")
  end)
end)
