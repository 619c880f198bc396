-- Tests of sweeper.lua against the fake Vertex server that vertexops ships (vertexops.testing):
-- one server for the file, its state reset before each test, the request log as the witness.
local testing = require "vertexops.testing"
local sweeper = require "sweeper"

local PARENT = "projects/test-project/locations/us-central1"
local function name(id) return PARENT .. "/operations/" .. id end

-- the names the server was asked to cancel, in order
local function cancels(server)
  local out = {}
  for _, e in ipairs(server:log("cancel")) do out[#out + 1] = e.name end
  return out
end

describe("sweeper.cancel_prefix", function()
  local server
  setup(function() server = testing.start() end)
  teardown(function() server:stop() end)
  before_each(function() server:reset() end)

  it("cancels the running operations of the job, and only those", function()
    server:create { id = "nightly-1" }
    server:create { id = "weekly-1" }
    server:create { id = "nightly-2" }
    server:create { id = "nightly-3", done = true } -- already finished: not listed as running
    local report = sweeper.cancel_prefix(PARENT, "nightly-", server:options())
    assert.are.same({ name "nightly-1", name "nightly-2" }, report.cancelled)
    assert.are.equal(1, report.skipped)
    assert.are.same({ name "nightly-1", name "nightly-2" }, cancels(server))
    assert.are.equal("filter=done%3Dfalse", server:log("list")[1].query)
  end)

  it("retries a cancel the service answers 503, after the delay it asks for", function()
    server:create { id = "nightly-1" }
    server:fault { match = "cancel", status = 503, retry_after = 7 }
    local t = server:virtual_time() -- the retry's sleep moves the server's clock: no real wait
    local report = sweeper.cancel_prefix(PARENT, "nightly-", server:options { clock = t.clock, sleep = t.sleep })
    assert.are.same({ name "nightly-1" }, report.cancelled)
    assert.are.same({ 7 }, t.delays)
    assert.are.equal(2, #server:log("cancel"))
  end)

  it("reports an operation that cannot be cancelled, and goes on with the others", function()
    server:create { id = "nightly-1", cancel = "unimplemented" }
    server:create { id = "nightly-2" }
    local report = sweeper.cancel_prefix(PARENT, "nightly-", server:options())
    assert.are.same({ name "nightly-2" }, report.cancelled)
    assert.are.equal(name "nightly-1", report.failed[1].name)
    assert.are.equal("UNIMPLEMENTED", report.failed[1].error.status)
    assert.matches("^cancelled 1, failed 1, skipped 0; nightly%-1: ", sweeper.summary(report))
  end)

  it("waits until each operation has stopped: five virtual minutes, no real ones", function()
    local t = server:virtual_time(1000) -- before creating: operations take the server's time
    server:create { id = "nightly-1", cancel_after = 300 } -- stops 5 minutes after its cancel
    server:create { id = "nightly-2", done_after = 60, cancel = "late" } -- finishes anyway
    local started = os.time()
    local report = sweeper.cancel_prefix(PARENT, "nightly-", server:options { clock = t.clock, sleep = t.sleep }, true)
    assert.are.same({ name "nightly-1" }, report.stopped)
    assert.are.same({ name "nightly-2" }, report.completed)
    assert.is_true(server:now() >= 1300)
    assert.is_true(os.time() - started < 10)
  end)

  it("gives up on a listing that keeps failing, with the service's error", function()
    server:fault { match = "list", status = 403, message = "Permission denied on the project." }
    local ok, err = pcall(sweeper.cancel_prefix, PARENT, "nightly-", server:options())
    assert.is_false(ok)
    assert.are.equal("PERMISSION_DENIED", err.status)
    assert.are.equal(0, #server:log("cancel"))
  end)
end)
