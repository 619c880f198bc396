-- Names by Google's generic grammar (docs/contract.md, "Names and regions"): nested list parents
-- (list, operations, cancel_all), singletons, names without a project (the global host, no
-- region). The fake's log is the witness.
local vertexops = require "vertexops"
local core = require "vertexops.core"
local H = require "support.helper"

local LOC = "projects/test-project/locations/us-central1"

describe("names by Google's generic grammar", function()
  local fake = H.fake_kept_client()
  local server, o, client
  before_each(function() server, o, client = fake.server, fake.opts, fake.client end)

  describe("a nested list parent", function()
    it("lists GET {parent}/operations under a job, with the operations of that parent only", function()
      local parent = LOC .. "/customJobs/42"
      server:create { name = parent .. "/operations/7", done = true }
      server:create { name = LOC .. "/operations/8", done = true }
      local page = client:list(parent, nil, { page_size = 10 })
      assert.are.equal(1, #page.operations)
      assert.are.equal(parent .. "/operations/7", page.operations[1].name)
      local e = server:log("list")[1]
      assert.are.equal("GET", e.method)
      assert.are.equal("/v1beta1/" .. parent .. "/operations", e.path)
      assert.are.equal("pageSize=10", e.query)
    end)

    it("lists under a parent two collections deep (featurestores/entityTypes)", function()
      local parent = LOC .. "/featurestores/f/entityTypes/e"
      server:create { name = parent .. "/operations/1", done = true }
      assert.are.equal(1, #client:list(parent).operations)
      assert.are.equal("/v1beta1/" .. parent .. "/operations", server:log("list")[1].path)
    end)

    it("lists under a singleton parent (ragEngineConfig)", function()
      local parent = LOC .. "/ragEngineConfig"
      server:create { name = parent .. "/operations/1", done = true }
      assert.are.equal(1, #client:list(parent).operations)
      assert.are.equal("/v1beta1/" .. parent .. "/operations", server:log("list")[1].path)
    end)

    it("iterates every page of a nested parent (operations)", function()
      local parent = LOC .. "/pipelineJobs/p1"
      for i = 1, 3 do server:create { name = parent .. "/operations/" .. i, done = true } end
      local names = {}
      for op in client:operations(parent, nil, { page_size = 2 }) do names[#names + 1] = op.name end
      assert.are.same({ parent .. "/operations/1", parent .. "/operations/2", parent .. "/operations/3" }, names)
      assert.are.equal(2, #server:log("list"))
      for _, e in ipairs(server:log("list")) do
        assert.are.equal("/v1beta1/" .. parent .. "/operations", e.path)
      end
    end)

    it("cancel_all sweeps a nested parent: each of its operations cancelled, nothing else", function()
      local parent = LOC .. "/trainingPipelines/9"
      local a = server:create { name = parent .. "/operations/1", done_after = 3600 }
      local b = server:create { name = parent .. "/operations/2", done_after = 3600 }
      server:create { name = LOC .. "/operations/3", done_after = 3600 }
      local s = client:cancel_all(parent)
      assert.are.equal(2, s.listed)
      assert.are.equal(2, s.cancelled)
      local sent = {}
      for _, e in ipairs(server:log("cancel")) do sent[#sent + 1] = e.name end
      table.sort(sent)
      assert.are.same({ a.name, b.name }, sent)
      assert.are.equal("/v1beta1/" .. parent .. "/operations", server:log("list")[1].path)
    end)

    it("cancel_all skips a listed name outside a nested parent (outside_parent)", function()
      local parent = LOC .. "/trainingPipelines/9"
      local inside = parent .. "/operations/1"
      local outside = LOC .. "/trainingPipelines/10/operations/1"
      server:create { name = inside, done_after = 3600 }
      server:create { name = outside, done_after = 3600 }
      server:fault { match = "list", body = require("cjson").encode { operations = { { name = inside }, { name = outside } } } }
      local s = client:cancel_all(parent)
      assert.are.equal(1, s.cancelled)
      assert.are.same({ { name = outside, reason = "outside_parent" } }, s.skipped)
      assert.are.equal(1, #server:log("cancel"))
      assert.are.equal(inside, server:log("cancel")[1].name)
    end)

    it("cancel_all sweeps a parent without a project, skipping a name that does not start with it", function()
      local parent = "reasoningEngines/r1/sessions/s1"
      local inside = server:create { name = parent .. "/operations/1", done_after = 3600 }
      local outside = "reasoningEngines/r1/sessions/s10/operations/1"
      server:fault { match = "list",
        body = require("cjson").encode { operations = { { name = inside.name }, { name = outside } } } }
      local s = client:cancel_all(parent, nil, { api_version = "v1" })
      assert.are.equal(1, s.cancelled)
      assert.are.same({ { name = outside, reason = "outside_parent" } }, s.skipped)
      assert.are.equal("/v1/" .. parent .. "/operations", server:log("list")[1].path)
      assert.are.equal("/v1/" .. inside.name .. ":cancel", server:log("cancel")[1].path)
    end)

    for _, bad in ipairs { LOC .. "/operations/1", LOC .. "/customJobs/42/operations", "projects/p",
                           "projects/p/zones/z", "locations/l/customJobs/1" } do
      it("refuses the parent " .. bad .. " before any I/O", function()
        local err = H.value_error("parent", vertexops.list, bad, nil, o)
        assert.matches("^parent ", err.message)
        assert.are.equal(0, #server:log())
      end)
    end
  end)

  describe("a singleton in a name", function()
    for _, call in ipairs { "get", "cancel", "delete" } do
      it(call .. " reaches .../ragEngineConfig/operations/{id}", function()
        local name = LOC .. "/ragEngineConfig/operations/5"
        server:create { name = name, done = true }
        client[call](client, name)
        local e = server:log(call)[1]
        assert.are.equal("/v1beta1/" .. name .. (call == "cancel" and ":cancel" or ""), e.path)
        assert.are.equal(name, e.name)
      end)
    end

    it("wait_once reaches .../ragEngineConfig/operations/{id}:wait", function()
      local name = LOC .. "/ragEngineConfig/operations/5"
      server:create { name = name, done = true }
      assert.is_true(client:wait_once(name, nil, 5).done)
      assert.are.equal("/v1beta1/" .. name .. ":wait", server:log("wait")[1].path)
    end)
  end)

  describe("a name without a project", function()
    local name = "reasoningEngines/r1/sessions/s1/operations/9"

    it("goes to the global host and takes no region (core.build)", function()
      local req = core.build("get", name, nil, { api_version = "v1" })
      assert.are.equal("https://aiplatform.googleapis.com/v1/" .. name, req.url)
      assert.are.equal("global", req.region)
      req = core.build("list", "reasoningEngines/r1/sessions/s1", nil, { api_version = "v1" })
      assert.are.equal("https://aiplatform.googleapis.com/v1/reasoningEngines/r1/sessions/s1/operations", req.url)
    end)

    it("fills an endpoint template's {region} with global", function()
      server:create { name = name, done = true }
      local oo = H.opts(server, { endpoint = server.endpoint .. "/{region}", api_version = "v1" })
      assert.is_true(vertexops.get(name, nil, oo).done)
      assert.are.equal("/global/v1/" .. name, server:log("get")[1].path)
    end)

    it("is served for every call of v1 (get, cancel, wait, list, delete)", function()
      server:create { name = name, done = true }
      local v1 = { api_version = "v1" }
      assert.is_true(client:get(name, nil, v1).done)
      assert.is_true(client:cancel(name, nil, v1))
      assert.is_true(client:wait_once(name, nil, 5, v1).done)
      assert.are.equal(1, #client:list("reasoningEngines/r1/sessions/s1", nil, v1).operations)
      assert.is_true(client:delete(name, nil, v1))
      local calls, paths = {}, {}
      for i, e in ipairs(server:log()) do calls[i], paths[i] = e.call, e.path end
      assert.are.same({ "get", "cancel", "wait", "list", "delete" }, calls)
      assert.are.same({ "/v1/" .. name, "/v1/" .. name .. ":cancel", "/v1/" .. name .. ":wait",
                        "/v1/reasoningEngines/r1/sessions/s1/operations", "/v1/" .. name }, paths)
    end)

    it("refuses a region, saying why, before any I/O", function()
      local err = H.value_error("region", vertexops.get, name, "us-central1", H.opts(server, { api_version = "v1" }))
      assert.matches("region must be nil", err.message)
      assert.matches("global host", err.message)
      err = H.value_error("parent", vertexops.list, "reasoningEngines/r1/sessions/s1", "us-central1", o)
      assert.matches("parent has no projects/", err.message)
      assert.are.equal(0, #server:log())
    end)

    for what, bad in pairs {
      ["a bare operations/{id}"] = "operations/1",
      ["a location without a project"] = "locations/us-central1/operations/1",
      ["a misspelt projects"] = "project/p/locations/us-central1/operations/1",
    } do
      it("refuses " .. what .. " before any I/O", function()
        local err = H.value_error("name", vertexops.get, bad, nil, o)
        assert.matches("^name ", err.message)
        assert.are.equal(0, #server:log())
      end)
    end
  end)


end)
