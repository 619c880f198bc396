-- cancel and get of Vertex jobs (customJobs, pipelineJobs, ...) and get of publisher models'
-- operations (POST {model}:fetchPredictOperation), and the calls they lack: the fake's request
-- log is the witness (docs/contract.md, "Jobs and publisher models' operations").
local vertexops = require "vertexops"
local core = require "vertexops.core"
local cjson = require "cjson"
local H = require "support.helper"

local LOC = "projects/test-project/locations/us-central1/"
local JOB = LOC .. "customJobs/42"
local VEO = LOC .. "publishers/google/models/veo-3.0-generate-001"
local VEO_OP = VEO .. "/operations/7f3e"
local COLLECTIONS = { "customJobs", "hyperparameterTuningJobs", "nasJobs", "dataLabelingJobs",
                      "batchPredictionJobs", "trainingPipelines", "pipelineJobs", "tuningJobs" }

describe("jobs: core.build", function()
  it("builds a job's cancel as POST {name}:cancel with the empty request message {}", function()
    for _, c in ipairs(COLLECTIONS) do
      local req = core.build("cancel", LOC .. c .. "/42", nil, {})
      assert.are.equal("POST", req.method)
      assert.are.equal("https://us-central1-aiplatform.googleapis.com/v1beta1/" .. LOC .. c .. "/42:cancel", req.url)
      assert.are.equal("{}", req.body)
      assert.are.equal("job", req.kind)
    end
  end)

  it("builds a job's get as GET {name} with no body", function()
    local req = core.build("get", JOB, nil, { api_version = "v1" })
    assert.are.equal("GET", req.method)
    assert.are.equal("https://us-central1-aiplatform.googleapis.com/v1/" .. JOB, req.url)
    assert.is_nil(req.body)
  end)

  it("routes a job by its name's own name= request parameter", function()
    local req = core.build("cancel", JOB, nil, {})
    local found
    for _, h in ipairs(req.headers) do
      if h:match("^x%-goog%-request%-params:") then found = h end
    end
    assert.are.equal("x-goog-request-params: name=" .. JOB:gsub("/", "%%2F"), found)
  end)

  it("leaves a collection that is not one of jobs to the operation grammar", function()
    local err = H.raises(core.build, "get", LOC .. "models/42", nil, {})
    assert.are.equal("ValueError", H.tags(err))
  end)

  it("checks a job name's segments before any I/O", function()
    local err = H.raises(core.build, "get", LOC .. "customJobs/a b", nil, {})
    assert.are.equal("ValueError", H.tags(err))
    assert.matches("0x20", err.message)
    err = H.raises(core.build, "cancel", LOC .. "customJobs/..", nil, {})
    assert.matches("'%.' or '%.%.' segment", err.message)
  end)

  it("tells a job name's ':', '?', '#', '%' or line break as an operation name's (one check of names)", function()
    for _, bad in ipairs { ":", "?", "#", "%", "\n" } do
      local job = H.raises(core.build, "get", LOC .. "customJobs/4" .. bad .. "2", nil, {})
      local op = H.raises(core.build, "get", LOC .. "endpoints/4" .. bad .. "2/operations/1", nil, {})
      assert.are.equal("ValueError", H.tags(job))
      assert.are.equal(op.message, job.message)
    end
  end)

  it("checks the region against the job's location", function()
    local err = H.raises(core.build, "get", JOB, "europe-west4", {})
    assert.are.equal("ValueError", H.tags(err))
    assert.matches("does not match", err.message)
  end)

  it("refuses :wait and delete of a job with a ValueError that says why", function()
    local err = H.raises(core.build, "wait", JOB, nil, {}, 5)
    assert.matches("jobs have no :wait method", err.message)
    err = H.raises(core.build, "delete", JOB, nil, {})
    assert.are.equal("ValueError", H.tags(err))
    assert.matches("does not delete jobs", err.message)
  end)

  it("builds a list of jobs (opts.kind) as GET {parent}/{kind} with the list query, routed by parent", function()
    local req = core.build("list", "projects/p/locations/us-central1", nil,
      { kind = "customJobs", filter = 'state="JOB_STATE_RUNNING"', page_size = 10, page_token = "t 1" })
    assert.are.equal("GET", req.method)
    assert.are.equal("https://us-central1-aiplatform.googleapis.com/v1beta1/projects/p/locations/us-central1/customJobs"
      .. "?filter=state%3D%22JOB_STATE_RUNNING%22&pageSize=10&pageToken=t%201", req.url)
    assert.are.equal("customJobs", req.collection)
    local found
    for _, h in ipairs(req.headers) do
      if h:match("^x%-goog%-request%-params:") then found = h end
    end
    assert.are.equal("x-goog-request-params: parent=projects%2Fp%2Flocations%2Fus-central1", found)
  end)

  it("lists operations for kind = \"operations\" and refuses any other kind, before any I/O", function()
    local req = core.build("list", "projects/p/locations/us-central1", nil, { kind = "operations" })
    assert.matches("/operations$", req.url)
    local err = H.raises(core.build, "list", "projects/p/locations/us-central1", nil, { kind = "models" })
    assert.are.equal("ValueError", H.tags(err))
    err = H.raises(core.build, "list", JOB, nil, { kind = "customJobs" })
    assert.matches("parent must look like", err.message)
  end)

  it("builds a publisher model operation's get as POST {model}:fetchPredictOperation", function()
    local req = core.build("get", VEO_OP, nil, {})
    assert.are.equal("POST", req.method)
    assert.are.equal("https://us-central1-aiplatform.googleapis.com/v1beta1/" .. VEO .. ":fetchPredictOperation", req.url)
    assert.are.same({ operationName = VEO_OP }, cjson.decode(req.body))
    assert.are.equal("publisher_operation", req.kind)
    assert.are.equal("GET", req.rules) -- a read: retried as GETs are
  end)

  it("refuses cancel, delete and :wait of a publisher model's operation, saying why", function()
    for _, call in ipairs { "cancel", "delete", "wait" } do
      local err = H.raises(core.build, call, VEO_OP, nil, {})
      assert.are.equal("ValueError", H.tags(err))
      assert.matches("operations of publisher models have no", err.message)
    end
  end)
end)

describe("jobs: calls against the fake", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  it("cancels a job with one POST :cancel whose body is {}", function()
    local job = server:create_job { collection = "batchPredictionJobs" }
    assert.is_true(vertexops.cancel(job.name, nil, H.opts(server)))
    local log = server:log()
    assert.are.equal(1, #log)
    assert.are.equal("POST", log[1].method)
    assert.are.equal("/v1beta1/" .. job.name .. ":cancel", log[1].path)
    assert.are.equal("{}", log[1].body)
  end)

  it("gets a job with one GET and returns it as the service shows it", function()
    local job = server:create_job { collection = "pipelineJobs" }
    local got = vertexops.get(job.name, nil, H.opts(server))
    assert.are.equal(job.name, got.name)
    assert.are.equal("PIPELINE_STATE_RUNNING", got.state)
    local log = server:log()
    assert.are.equal(1, #log)
    assert.are.equal("GET", log[1].method)
    assert.are.equal("/v1beta1/" .. job.name, log[1].path)
  end)

  it("raises ResponseTypeError for a job answer without a state", function()
    server:fault { match = "get", body = cjson.encode { name = JOB } }
    local err = H.raises(vertexops.get, JOB, nil, H.opts(server))
    assert.are.equal("ResponseTypeError", H.tags(err))
    assert.matches("'state'", err.message)
  end)

  it("raises ResponseTypeError for a job answer whose name is not a string", function()
    server:fault { match = "get", body = '{"name": 42, "state": "JOB_STATE_RUNNING"}' }
    local err = H.raises(vertexops.get, JOB, nil, H.opts(server))
    assert.are.equal("ResponseTypeError", H.tags(err))
    assert.matches("'name'", err.message)
  end)

  it("raises the HttpError of a cancel the service refuses (a job that has ended)", function()
    local job = server:create_job { done = true }
    local err = H.raises(vertexops.cancel, job.name, nil, H.opts(server))
    assert.are.equal(400, err.code)
    assert.are.equal("FAILED_PRECONDITION", err.status)
  end)

  it("refuses delete of a job before any request", function()
    local err = H.raises(vertexops.delete, JOB, nil, H.opts(server))
    assert.are.equal("ValueError", H.tags(err))
    assert.are.equal(0, #server:log())
  end)

  it("gets a publisher model's operation with one POST :fetchPredictOperation {operationName}", function()
    server:create { name = VEO_OP, done_after = 60 }
    local op = vertexops.get(VEO_OP, nil, H.opts(server))
    assert.are.equal(VEO_OP, op.name)
    assert.is_nil(op.done)
    local log = server:log()
    assert.are.equal(1, #log)
    assert.are.equal("POST", log[1].method)
    assert.are.equal("/v1beta1/" .. VEO .. ":fetchPredictOperation", log[1].path)
    assert.are.same({ operationName = VEO_OP }, cjson.decode(log[1].body))
  end)

  it("refuses cancel of a publisher model's operation before any request", function()
    local err = H.raises(vertexops.cancel, VEO_OP, nil, H.opts(server))
    assert.are.equal("ValueError", H.tags(err))
    assert.matches("no cancel method", err.message)
    assert.are.equal(0, #server:log())
  end)

  it("retries a fetchPredictOperation answered 502 as a GET is retried", function()
    server:create { name = VEO_OP }
    server:fault { match = "get", status = 502 }
    local op = vertexops.get(VEO_OP, nil, H.opts(server, { retry = { initial_delay = 0 } }))
    assert.are.equal(VEO_OP, op.name)
    assert.are.equal(2, #server:log("get"))
  end)
end)
