-- The fake's jobs (docs/fake.md, "Jobs"): their state machines on the virtual clock, cancel and
-- its CANCELLING, the checks of /_control/jobs, and publisher models' :fetchPredictOperation --
-- spoken to with raw requests (core.handle), as any client of the fake would.
local H = require "support.helper"
local core = require "vertexops.core"
local cjson = require "cjson"

local LOC = "projects/test-project/locations/us-central1/"
local VEO = LOC .. "publishers/google/models/veo-3.0-generate-001"

describe("the fake's jobs", function()
  local fake = H.fake_server()
  local server
  local handle
  setup(function() handle = core.handle() end)
  teardown(function() handle:close() end)
  before_each(function() server = fake.server end)

  -- One request to the fake's Vertex API: status, decoded body (an error's envelope).
  local function call(method, path, body)
    local ok, res = handle:call({ method = method, url = server.endpoint:gsub("{region}", "us-central1") .. path,
      headers = { "Content-Type: application/json" }, body = body, timeout = 10, ca_file = server.ca_file },
      "test-token")
    if ok then return 200, res end
    return res.code, res.body
  end

  local function state(name) return select(2, call("GET", "/v1beta1/" .. name)).state end

  it("makes a running customJob by default, named from 1001 on", function()
    local job = server:create_job {}
    assert.are.equal(LOC .. "customJobs/1001", job.name)
    assert.are.equal("JOB_STATE_RUNNING", job.state)
    assert.are.equal("JOB_STATE_RUNNING", state(job.name))
  end)

  it("names a job from project, location, collection and id", function()
    local job = server:create_job { project = "p", location = "europe-west4", collection = "tuningJobs", id = 7 }
    assert.are.equal("projects/p/locations/europe-west4/tuningJobs/7", job.name)
  end)

  it("ends a job by its outcome after done_after seconds of virtual time", function()
    H.virtual_time(server)
    local outcomes = { succeeded = "JOB_STATE_SUCCEEDED", partially_succeeded = "JOB_STATE_PARTIALLY_SUCCEEDED",
                       failed = "JOB_STATE_FAILED", expired = "JOB_STATE_EXPIRED" }
    for outcome, want in pairs(outcomes) do
      local job = server:create_job { done_after = 60, outcome = outcome }
      server:advance(59)
      assert.are.equal("JOB_STATE_RUNNING", state(job.name))
      server:advance(1)
      assert.are.equal(want, state(job.name))
    end
  end)

  it("shows a failed job's error and its endTime", function()
    local job = server:create_job { done = true, outcome = "failed", error = { code = 9, message = "no quota" } }
    local _, view = call("GET", "/v1beta1/" .. job.name)
    assert.are.equal("JOB_STATE_FAILED", view.state)
    assert.are.same({ code = 9, message = "no quota" }, view.error)
    assert.is_string(view.endTime)
  end)

  it("goes CANCELLING on a cancel, then CANCELLED cancel_after seconds later", function()
    H.virtual_time(server)
    local job = server:create_job { collection = "batchPredictionJobs", cancel_after = 10 }
    local status, body = call("POST", "/v1beta1/" .. job.name .. ":cancel", "{}")
    assert.are.equal(200, status)
    assert.are.same({}, body)
    assert.are.equal("JOB_STATE_CANCELLING", state(job.name))
    server:advance(9.9)
    assert.are.equal("JOB_STATE_CANCELLING", state(job.name))
    server:advance(0.1)
    local _, view = call("GET", "/v1beta1/" .. job.name)
    assert.are.equal("JOB_STATE_CANCELLED", view.state)
    assert.are.equal(1, view.error.code)
  end)

  it("uses PIPELINE_STATE_ for pipelines", function()
    H.virtual_time(server)
    local job = server:create_job { collection = "pipelineJobs" }
    assert.are.equal("PIPELINE_STATE_RUNNING", state(job.name))
    call("POST", "/v1beta1/" .. job.name .. ":cancel", "{}")
    assert.are.equal("PIPELINE_STATE_CANCELLING", state(job.name))
    server:advance(1)
    assert.are.equal("PIPELINE_STATE_CANCELLED", state(job.name))
  end)

  it("keeps a job running on a cancel it ignores", function()
    H.virtual_time(server)
    local job = server:create_job { cancel = "ignore" }
    assert.are.equal(200, (call("POST", "/v1beta1/" .. job.name .. ":cancel", "{}")))
    server:advance(100)
    assert.are.equal("JOB_STATE_RUNNING", state(job.name))
  end)

  it("answers 400 FAILED_PRECONDITION to the cancel of a job that has ended", function()
    local job = server:create_job { done = true }
    local status, body = call("POST", "/v1beta1/" .. job.name .. ":cancel", "{}")
    assert.are.equal(400, status)
    assert.are.equal("FAILED_PRECONDITION", body.error.status)
  end)

  it("answers 404 for an unknown job, and logs job calls as cancel and get", function()
    local status, body = call("GET", "/v1beta1/" .. LOC .. "customJobs/404")
    assert.are.equal(404, status)
    assert.are.equal("NOT_FOUND", body.error.status)
    call("POST", "/v1beta1/" .. LOC .. "customJobs/404:cancel", "{}")
    assert.are.equal(1, #server:log("get"))
    assert.are.equal(1, #server:log("cancel"))
  end)

  it("does not route a collection that is not one of jobs", function()
    assert.are.equal(404, (call("GET", "/v1beta1/" .. LOC .. "models/1")))
    assert.are.equal(0, #server:log("get"))
  end)

  it("applies a fault matching cancel to a job's cancel", function()
    local job = server:create_job {}
    server:fault { match = "cancel", status = 503 }
    assert.are.equal(503, (call("POST", "/v1beta1/" .. job.name .. ":cancel", "{}")))
  end)

  it("refuses a job spec it cannot honour with a 400 naming the field", function()
    for _, bad in ipairs {
      { spec = { collection = "models" }, field = "collection" },
      { spec = { outcome = "exploded" }, field = "outcome" },
      { spec = { done_after = -1 }, field = "done_after" },
      { spec = { name = LOC .. "operations/1" }, field = "name" },
      { spec = { collection = "pipelineJobs", outcome = "expired" }, field = "pipelines" },
    } do
      local ok, err = pcall(server.create_job, server, bad.spec)
      assert.is_false(ok)
      assert.matches(bad.field, tostring(err), 1, true)
    end
  end)

  it("answers :fetchPredictOperation with the publisher model's operation", function()
    local name = VEO .. "/operations/1"
    server:create { name = name, done = true }
    local status, op = call("POST", "/v1beta1/" .. VEO .. ":fetchPredictOperation", cjson.encode { operationName = name })
    assert.are.equal(200, status)
    assert.are.equal(name, op.name)
    assert.is_true(op.done)
    local log = server:log()
    assert.are.equal("get", log[1].call)
    assert.are.equal(VEO, log[1].name)
  end)

  it("answers :fetchPredictOperation 400 without an operationName or with another model's", function()
    assert.are.equal(400, (call("POST", "/v1beta1/" .. VEO .. ":fetchPredictOperation", "{}")))
    local other = LOC .. "publishers/google/models/imagen/operations/1"
    assert.are.equal(400, (call("POST", "/v1beta1/" .. VEO .. ":fetchPredictOperation",
      cjson.encode { operationName = other })))
    assert.are.equal(404, (call("POST", "/v1beta1/" .. VEO .. ":fetchPredictOperation",
      cjson.encode { operationName = VEO .. "/operations/none" })))
  end)

  it("lists a collection in creation order under the collection's name, by pages", function()
    local names = {}
    for i = 1, 3 do names[i] = server:create_job { collection = "nasJobs" }.name end
    server:create_job {} -- customJobs: another collection
    local _, page = call("GET", "/v1beta1/" .. LOC .. "nasJobs?pageSize=2")
    assert.are.same({ names[1], names[2] }, { page.nasJobs[1].name, page.nasJobs[2].name })
    local _, last = call("GET", "/v1beta1/" .. LOC .. "nasJobs?pageSize=2&pageToken=" .. page.nextPageToken)
    assert.are.equal(names[3], last.nasJobs[1].name)
    assert.is_nil(last.nextPageToken)
    assert.are.equal("list", server:log()[1].call)
  end)

  it("filters a listing by state=\"...\" terms joined by OR, and refuses other filters", function()
    server:create_job {}
    server:create_job { done = true }
    local _, page = call("GET", "/v1beta1/" .. LOC .. "customJobs?filter="
      .. "state%3D%22JOB_STATE_RUNNING%22%20OR%20state%3D%22JOB_STATE_QUEUED%22")
    assert.are.equal(1, #page.customJobs)
    assert.are.equal("JOB_STATE_RUNNING", page.customJobs[1].state)
    assert.are.equal(400, (call("GET", "/v1beta1/" .. LOC .. "customJobs?filter=display_name%3D%22x%22")))
  end)

  it("answers {} for an empty collection", function()
    local status, body = call("GET", "/v1beta1/" .. LOC .. "tuningJobs")
    assert.are.equal(200, status)
    assert.are.same({}, body)
  end)

  it("forgets its jobs on reset", function()
    local job = server:create_job {}
    server:reset()
    assert.are.equal(404, (call("GET", "/v1beta1/" .. job.name)))
  end)
end)
