-- The command line's list and cancel-all take any parent of operations (docs/contract.md, "Names
-- and regions"): nested under a job, a singleton, or without a project. vertexops.cli.main driven
-- in-process against the fake; its log is the witness.
local cjson = require "cjson"
local H = require "support.helper"

local LOC = "projects/test-project/locations/us-central1"

describe("command line with a nested parent", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  -- runs main; returns stdout, stderr, status
  local function main(argv, options) return H.cli_main(server, argv, { options = H.opts(server, options) }) end

  it("lists the operations of a job (list PARENT/customJobs/42), every page", function()
    local parent = LOC .. "/customJobs/42"
    for i = 1, 3 do server:create { name = parent .. "/operations/" .. i } end
    server:create { name = LOC .. "/operations/9" }
    local out, err, status = main { "list", parent, "--page-size", "2", "--json" }
    assert.are.equal(0, status, err)
    assert.are.equal(3, #cjson.decode(out).operations)
    local logged = server:log("list")
    assert.are.equal(2, #logged)
    for _, e in ipairs(logged) do assert.are.equal("/v1beta1/" .. parent .. "/operations", e.path) end
  end)

  it("cancel-all sweeps a nested parent and nothing beside it", function()
    local parent = LOC .. "/pipelineJobs/p1"
    local a = server:create { name = parent .. "/operations/1", done_after = 3600 }
    local b = server:create { name = parent .. "/operations/2", done_after = 3600 }
    server:create { name = LOC .. "/operations/3", done_after = 3600 }
    local out, err, status = main { "cancel-all", parent, "--json" }
    assert.are.equal(0, status, err)
    assert.are.equal(2, cjson.decode(out).cancelled)
    local sent = {}
    for _, e in ipairs(server:log("cancel")) do sent[#sent + 1] = e.name end
    table.sort(sent)
    assert.are.same({ a.name, b.name }, sent)
  end)

  it("lists a parent without a project (v1, the global host) and refuses --region for it", function()
    local parent = "reasoningEngines/r1/sessions/s1"
    server:create { name = parent .. "/operations/1" }
    local out, err, status = main({ "list", parent, "--api-version", "v1", "--json" },
      { endpoint = server.endpoint .. "/{region}" })
    assert.are.equal(0, status, err)
    assert.are.equal(1, #cjson.decode(out).operations)
    assert.are.equal("/global/v1/" .. parent .. "/operations", server:log("list")[1].path)
    server:reset_log()
    local _, err2, status2 = main { "list", parent, "--api-version", "v1", "--region", "us-central1" }
    assert.are.equal(2, status2)
    assert.matches("region must be nil", err2)
    assert.are.equal(0, #server:log())
  end)
end)
