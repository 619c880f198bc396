-- The table of Google's methods (csrc/methods.h, docs/contract.md "Names and regions") only takes
-- methods away: a call whose method a known shape lacks is a ValueError naming the shape before
-- any I/O; wait on a shape without :wait polls with GET; a shape Google adds tomorrow takes every
-- call. The fake's log is the witness.
local vertexops = require "vertexops"
local core = require "vertexops.core"
local H = require "support.helper"

local LOC = "projects/test-project/locations/us-central1"

describe("the methods of a name's shape", function()
  local fake = H.fake_kept_client()
  local server, o, client
  before_each(function() server, o, client = fake.server, fake.opts, fake.client end)

  describe("the methods a known shape lacks (csrc/methods.h)", function()
    it("refuses cancel of a featureGroups operation, naming the shape, before any I/O", function()
      local err = H.value_error("featureGroups/*/operations/*", vertexops.cancel, LOC .. "/featureGroups/g/operations/1", nil, o)
      assert.are.equal("projects/*/locations/*/featureGroups/*/operations/* has no cancel method in v1beta1",
        err.message)
      assert.are.equal(0, #server:log())
    end)

    it("refuses in the version that lacks it only (onlineEvaluators: v1beta1 only, unknown to v1)", function()
      local name = "onlineEvaluators/e/operations/1"
      assert.are.equal("GET", core.build("get", name, nil, {}).method)
      assert.are.equal("GET", core.build("get", name, nil, { api_version = "v1" }).method)
      H.value_error("solvers/*/operations/*", core.build, "cancel", "projects/p/locations/l/solvers/s/operations/1", nil, {})
      assert.has_no.errors(function()
        core.build("cancel", "projects/p/locations/l/solvers/s/operations/1", nil, { api_version = "v1" })
      end)
    end)

    it("core.shape gives the shape and its calls", function()
      local shape, calls = core.shape(LOC .. "/featureGroups/g/operations/1")
      assert.are.equal("projects/*/locations/*/featureGroups/*/operations/*", shape)
      assert.are.same({ get = true, cancel = false, delete = true, wait = true, list = true }, calls)
      shape, calls = core.shape(LOC .. "/solvers/s/operations/1", "v1beta1")
      assert.are.equal("projects/*/locations/*/solvers/*/operations/*", shape)
      assert.are.same({ get = true, cancel = false, delete = true, wait = false, list = true }, calls)
    end)

    it("core.shape checks its arguments", function()
      assert.are.equal("ValueError", H.tags(H.raises(core.shape, "projects/p")))
      assert.are.equal("TypeError", H.tags(H.raises(core.shape, 1)))
      assert.are.equal("ValueError", H.tags(H.raises(core.shape, H.NAME .. "1", "v2")))
      assert.are.equal("TypeError", H.tags(H.raises(core.shape, H.NAME .. "1", 2)))
    end)
  end)

  describe("wait on a shape without :wait (solvers, v1beta1)", function()
    local name = LOC .. "/solvers/s/operations/1"

    it("polls with GET under the auto strategy, never :wait", function()
      local t = H.virtual_time(server)
      server:create { name = name, done_after = 3 }
      local op = client:wait(name, nil, H.timed_opts(server, t, { timeout = 60 }))
      assert.is_true(op.done)
      assert.are.equal(0, #server:log("wait"))
      assert.is_true(#server:log("get") >= 2)
    end)

    it("refuses strategy = \"server\" before any I/O, naming the shape", function()
      server:create { name = name, done_after = 3 }
      local err = H.value_error("solvers/*/operations/*", vertexops.wait, name, nil, H.opts(server, { strategy = "server" }))
      assert.matches("projects/%*/locations/%*/solvers/%*/operations/%* has none in v1beta1", err.message)
      H.value_error("featureGroups/*/operations/*", vertexops.cancel_and_wait, LOC .. "/featureGroups/g/operations/1", nil,
        H.opts(server, { strategy = "server" }))
      assert.are.equal(0, #server:log())
    end)

    it("refuses wait_once (one :wait) before any I/O", function()
      local err = H.value_error("solvers/*/operations/*", vertexops.wait_once, name, nil, 5, o)
      assert.matches("has no wait method in v1beta1", err.message)
      assert.are.equal(0, #server:log())
    end)
  end)

  describe("a shape Google adds tomorrow", function()
    local name = LOC .. "/brandNewThings/b1/parts/p2/operations/3"

    it("is unknown to core.shape: every call allowed", function()
      local shape, calls = core.shape(name)
      assert.is_nil(shape)
      assert.are.same({ get = true, cancel = true, delete = true, wait = true, list = true }, calls)
    end)

    it("takes every call (get, cancel, wait, list, delete) to the fake", function()
      server:create { name = name, done = true }
      assert.is_true(client:get(name).done)
      assert.is_true(client:cancel(name))
      assert.is_true(client:wait(name).done)
      assert.are.equal(1, #client:list(LOC .. "/brandNewThings/b1/parts/p2").operations)
      assert.is_true(client:delete(name))
      local calls = {}
      for i, e in ipairs(server:log()) do calls[i] = e.call end
      assert.are.same({ "get", "cancel", "wait", "list", "delete" }, calls)
    end)
  end)
end)
