-- wait and cancel_and_wait on Vertex jobs and on publisher models' operations: polled (they have no
-- :wait), each terminal state, request counts on the fake server's virtual clock.
-- Contract: docs/contract.md, "Jobs and publisher models' operations" and "wait strategies".
local vertexops = require "vertexops"
local cjson = require "cjson"
local H = require "support.helper"

-- Polling a 10-minute job: GET at 0, then after 1, 1.25, ... (x1.25, capped at 60) seconds, as an
-- operation polled with strategy "poll" (spec/09_wait_spec.lua).
local POLL_GETS_10MIN = 26
local VEO = "projects/test-project/locations/us-central1/publishers/google/models/veo-3.0-generate-001"
local VEO_OP = VEO .. "/operations/7f3e"

describe("waiting for jobs", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  local function opts(t, extra) return H.timed_opts(server, t, extra) end

  it("polls a 10-minute job with GETs only under strategy auto, on the polling schedule", function()
    local t = H.virtual_time(server)
    local job = server:create_job { done_after = 600 }
    local final = vertexops.wait(job.name, nil, opts(t))
    assert.are.equal("JOB_STATE_SUCCEEDED", final.state)
    assert.are.equal(POLL_GETS_10MIN, #server:log("get"))
    assert.are.equal(0, #server:log("wait"))
    assert.are.equal(POLL_GETS_10MIN, #server:log())
    assert.are.same({ 1, 1.25, 1.5625 }, { t.delays[1], t.delays[2], t.delays[3] })
  end)

  it("returns a job that ended PARTIALLY_SUCCEEDED", function()
    local t = H.virtual_time(server)
    local job = server:create_job { collection = "batchPredictionJobs", done_after = 2, outcome = "partially_succeeded" }
    local final = vertexops.wait(job.name, nil, opts(t))
    assert.are.equal("JOB_STATE_PARTIALLY_SUCCEEDED", final.state)
  end)

  it("returns a job that ended CANCELLED", function()
    local t = H.virtual_time(server)
    local job = server:create_job { cancel_after = 3 }
    vertexops.cancel(job.name, nil, opts(t))
    local final = vertexops.wait(job.name, nil, opts(t))
    assert.are.equal("JOB_STATE_CANCELLED", final.state)
  end)

  for _, case in ipairs {
    { outcome = "failed", state = "JOB_STATE_FAILED" },
    { outcome = "expired", state = "JOB_STATE_EXPIRED" },
    { outcome = "failed", state = "PIPELINE_STATE_FAILED", collection = "pipelineJobs" },
  } do
    it("raises OperationError with the job as err.operation and err.job when it ended " .. case.state, function()
      local t = H.virtual_time(server)
      local job = server:create_job { collection = case.collection, done_after = 5, outcome = case.outcome }
      local err = H.raises(vertexops.wait, job.name, nil, opts(t))
      assert.are.equal("OperationError", H.tags(err))
      assert.are.equal(case.state, err.job.state)
      assert.are.equal(err.job, err.operation)
      assert.matches(case.state, err.message, 1, true)
    end)
  end

  it("returns a pipeline that ended PIPELINE_STATE_SUCCEEDED", function()
    local t = H.virtual_time(server)
    local job = server:create_job { collection = "trainingPipelines", done_after = 5 }
    assert.are.equal("PIPELINE_STATE_SUCCEEDED", vertexops.wait(job.name, nil, opts(t)).state)
  end)

  it("raises ValueError for strategy server on a job, with zero requests", function()
    local t = H.virtual_time(server)
    local job = server:create_job {}
    for _, f in ipairs { vertexops.wait, vertexops.cancel_and_wait } do
      local err = H.raises(f, job.name, nil, opts(t, { strategy = "server" }))
      assert.are.equal("ValueError", H.tags(err))
      assert.matches("strategy \"server\"", err.message, 1, true)
    end
    assert.are.equal(0, #server:log())
  end)

  it("raises ValueError for wait_once on a job, with zero requests", function()
    local err = H.raises(vertexops.wait_once, "projects/test-project/locations/us-central1/customJobs/1", nil, 5,
      H.opts(server))
    assert.are.equal("ValueError", H.tags(err))
    assert.are.equal(0, #server:log())
  end)

  it("raises TimeoutError naming the job past the deadline, with the last job seen", function()
    local t = H.virtual_time(server)
    local job = server:create_job { done_after = 600 }
    local err = H.raises(vertexops.wait, job.name, nil, opts(t, { timeout = 30 }))
    assert.are.equal("TimeoutError", H.tags(err))
    assert.matches("job " .. job.name .. " was not done", err.message, 1, true)
    assert.are.equal("JOB_STATE_RUNNING", err.operation.state)
  end)

  it("calls progress with each job seen", function()
    local t = H.virtual_time(server)
    local job = server:create_job { done_after = 3 }
    local states = {}
    vertexops.wait(job.name, nil, opts(t, { progress = function(j) states[#states + 1] = j.state end }))
    assert.are.equal("JOB_STATE_RUNNING", states[1])
    assert.are.equal("JOB_STATE_SUCCEEDED", states[#states])
  end)
end)

describe("cancel_and_wait on jobs", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  local function opts(t, extra) return H.timed_opts(server, t, extra) end

  it("returns job, true once the job went CANCELLING then CANCELLED: one POST :cancel, then GETs", function()
    local t = H.virtual_time(server)
    local job = server:create_job { collection = "tuningJobs", cancel_after = 5, done_after = 600 }
    local states = {}
    local final, cancelled = vertexops.cancel_and_wait(job.name, nil,
      opts(t, { progress = function(j) states[#states + 1] = j.state end }))
    assert.is_true(cancelled)
    assert.are.equal("JOB_STATE_CANCELLED", final.state)
    assert.are.equal("JOB_STATE_CANCELLING", states[1])
    local log = server:log()
    assert.are.equal("cancel", log[1].call)
    assert.are.equal("{}", log[1].body)
    assert.are.equal(1, #server:log("cancel"))
    -- GETs at 0, 1, 2.25, 3.81, 5.76 (cancelled from 5 on)
    assert.are.equal(5, #server:log("get"))
    assert.are.equal(6, #log)
  end)

  it("returns job, false when the job completed before the cancel took effect", function()
    local t = H.virtual_time(server)
    local job = server:create_job { cancel = "ignore", done_after = 2 }
    local final, cancelled = vertexops.cancel_and_wait(job.name, nil, opts(t))
    assert.is_false(cancelled)
    assert.are.equal("JOB_STATE_SUCCEEDED", final.state)
  end)

  it("raises OperationError when the job failed before the cancel took effect", function()
    local t = H.virtual_time(server)
    local job = server:create_job { cancel = "ignore", done_after = 2, outcome = "failed",
                                    error = { code = 9, message = "quota" } }
    local err = H.raises(vertexops.cancel_and_wait, job.name, nil, opts(t))
    assert.are.equal("OperationError", H.tags(err))
    assert.are.equal("JOB_STATE_FAILED", err.job.state)
    assert.matches("code 9: quota", err.message, 1, true)
  end)
end)

describe("waiting for publisher models' operations", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  local function opts(t, extra) return H.timed_opts(server, t, extra) end

  it("polls POST :fetchPredictOperation until done under strategy auto", function()
    local t = H.virtual_time(server)
    server:create { name = VEO_OP, done_after = 10 }
    local op = vertexops.wait(VEO_OP, nil, opts(t))
    assert.is_true(op.done)
    local gets = server:log("get")
    -- at 0, 1, 2.25, 3.81, 5.76, 8.2, 11.25
    assert.are.equal(7, #gets)
    assert.are.equal(7, #server:log())
    for _, e in ipairs(gets) do
      assert.are.equal("POST", e.method)
      assert.are.equal("/v1beta1/" .. VEO .. ":fetchPredictOperation", e.path)
      assert.are.same({ operationName = VEO_OP }, cjson.decode(e.body))
    end
  end)

  it("raises OperationError when the operation ended with an error", function()
    local t = H.virtual_time(server)
    server:create { name = VEO_OP, done_after = 2, outcome = "error" }
    local err = H.raises(vertexops.wait, VEO_OP, nil, opts(t))
    assert.are.equal("OperationError", H.tags(err))
    assert.are.equal(VEO_OP, err.operation.name)
  end)

  it("raises ValueError for strategy server and for cancel_and_wait, with zero requests", function()
    local t = H.virtual_time(server)
    server:create { name = VEO_OP }
    local err = H.raises(vertexops.wait, VEO_OP, nil, opts(t, { strategy = "server" }))
    assert.are.equal("ValueError", H.tags(err))
    err = H.raises(vertexops.cancel_and_wait, VEO_OP, nil, opts(t))
    assert.are.equal("ValueError", H.tags(err))
    assert.matches("no cancel method", err.message)
    assert.are.equal(0, #server:log())
  end)
end)
