-- The command line's cancel-all (docs/contract.md, "cancel_all"; README's command-line section):
-- bin/vertexops cancel-all run as a subprocess against the fake server -- its summary, --json,
-- --wait and exit statuses. (cancel_all itself: spec/10_fleet_cancel_all_spec.lua;
-- in-process, with an injected terminal: spec/11_cli_cancel_all_spec.lua.)
local cjson = require "cjson"
local H = require "support.helper"

describe("vertexops cancel-all", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  local function env() return H.cli_env(server) end
  -- runs `vertexops cancel-all <parent> <args>`; returns stdout, stderr, exit code
  local function cli(args) return H.cli(server, "cancel-all " .. H.PARENT .. " " .. args) end

  it("prints a summary and exits 0 when every operation was cancelled", function()
    server:create_many(30, {})
    local out, err, code = cli("--max-in-flight 5")
    assert.are.equal(0, code, err)
    assert.matches("listed 30, cancelled 30, failed 0", out, 1, true)
    assert.are.equal("", err) -- no progress bar off a terminal
  end)

  it("exits with the failure's status, naming it in --json", function()
    server:create_many(10, {})
    server:fault { match = "cancel", status = 400, times = 1 }
    local out, _, code = cli("--json --max-in-flight 1")
    assert.are.equal(4, code)
    local doc = cjson.decode(out)
    assert.are.equal(9, doc.cancelled)
    assert.are.equal(H.NAME .. "1001", doc.failed[1].name)
    assert.are.equal(400, doc.failed[1].error.code)
  end)

  it("with --wait tells which completed anyway, and exits 0", function()
    server:create_many(4, { done_after = 3600 })
    local late = server:create_many(2, { done_after = 3600, cancel = "late" })
    local out, err, code = cli("--wait --json")
    assert.are.equal(0, code, err)
    local doc = cjson.decode(out)
    assert.are.equal(4, #doc.wait.cancelled)
    assert.are.same({ late.first, late.last }, doc.wait.completed)
    assert.are.same({}, doc.failed)
  end)

  it("cancels a name listed twice once and, with --wait, ends when it has ended: exit 0", function()
    local a = server:create { done_after = 3600 }
    server:fault { match = "list", body = ('{"operations":[{"name":"%s"},{"name":"%s"}]}'):format(a.name, a.name) }
    local out, err, code = cli("--wait --timeout 20")
    assert.are.equal(0, code, err)
    assert.matches("listed 1, cancelled 1, failed 0, 1 listed twice", out, 1, true)
    assert.matches("ended CANCELLED 1,", out, 1, true)
    assert.are.equal(1, #server:log("cancel"))
  end)

  it("fails a listed entry without a name as ResponseTypeError, exit 9, and cancels the rest", function()
    local a = server:create { done_after = 3600 }
    server:fault { match = "list", body = '{"operations":[{"done":false},{"name":"' .. a.name .. '"}]}' }
    local out, err, code = cli("--json")
    assert.are.equal(9, code, err)
    local doc = cjson.decode(out)
    assert.are.equal("ResponseTypeError", doc.failed[1].error.tags[1])
    assert.are.equal(1, doc.cancelled)
    assert.are.equal(2, doc.listed)
    server:fault { match = "list", body = '{"operations":[{"done":false}]}' }
    out = cli("")
    assert.matches("\n  (an entry without a name): ResponseTypeError: list response page 1 operations[1] has no name\n",
      out, 1, true)
  end)

  it("prints the names outside the parent as skipped, never cancels them, and exits 0 (not a failure)", function()
    local victim = "projects/victim-project/locations/us-central1/operations/7"
    local a = server:create { done_after = 3600 }
    server:create { name = victim, done_after = 3600 }
    server:fault { match = "list", body = '{"operations":[{"name":"' .. victim .. '"},{"name":"' .. a.name .. '"}]}' }
    local out, err, code = cli("")
    assert.are.equal(0, code, err)
    assert.matches("listed 2, cancelled 1, failed 0, skipped 1", out, 1, true)
    assert.matches("skipped, outside " .. H.PARENT .. " (never sent):\n  " .. victim, out, 1, true)
    assert.are.equal(1, #server:log("cancel"))
    assert.are.equal(a.name, server:log("cancel")[1].name)
  end)

  it("shows a progress bar with counts, rate and ETA on a terminal", function()
    if not H.have("script") then return pending("no script(1)") end
    server:create_many(300, {})
    server:config { hold = 0.01 }
    local cmd = H.lua_command() .. " bin/vertexops cancel-all " .. H.PARENT .. " --yes --max-in-flight 4 "
      .. "--page-size 100 "
      .. "--ca-file " .. server.ca_file
    local out = H.run("script -qec '" .. cmd .. "' /dev/null", env())
    assert.matches("cancel%-all %[[#%-]+%] %d+/%d+%+? cancelled, 0 failed +%d+/s +ETA ", out)
    assert.matches("%[####################%] 300/300 cancelled", out)
    assert.matches("listed 300, cancelled 300, failed 0", out, 1, true)
  end)
end)
