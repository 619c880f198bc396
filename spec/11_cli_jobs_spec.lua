-- The command line on jobs and publisher models' operations: cancel (--wait), get, wait, and the
-- calls they lack, through vertexops.cli.main in-process against the fake server.
-- Contract: README.md, "Command line"; docs/contract.md, "Jobs and publisher models' operations".
local cjson = require "cjson"
local H = require "support.helper"

local VEO_OP = "projects/test-project/locations/us-central1/publishers/google/models/veo-3.0-generate-001/operations/1"

describe("command line on jobs", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  -- runs main; returns stdout, stderr, status (not a terminal; options: the fake's, over ctx's)
  local function main(argv, ctx) return H.cli_main(server, argv, ctx) end

  it("cancels a job: status 0, one line, one POST :cancel with {}", function()
    local job = server:create_job {}
    local out, err, status = main { "cancel", job.name }
    assert.are.equal(0, status, err)
    assert.are.equal("cancel requested: " .. job.name .. "\n", out)
    local log = server:log()
    assert.are.equal(1, #log)
    assert.are.equal("/v1beta1/" .. job.name .. ":cancel", log[1].path)
    assert.are.equal("{}", log[1].body)
  end)

  it("cancels a job with --wait until it is CANCELLED, and shows it", function()
    local t = H.virtual_time(server)
    local job = server:create_job { cancel_after = 3 }
    local out, err, status = main({ "cancel", job.name, "--wait" }, { options = H.timed_opts(server, t) })
    assert.are.equal(0, status, err)
    assert.matches("name:     " .. job.name, out, 1, true)
    assert.matches("state:    JOB_STATE_CANCELLED", out, 1, true)
    assert.are.equal(1, #server:log("cancel"))
    assert.is_true(#server:log("get") >= 1)
  end)

  it("cancels with --wait --json: the job and cancelled = true", function()
    local t = H.virtual_time(server)
    local job = server:create_job { collection = "pipelineJobs" }
    local out, err, status = main({ "cancel", job.name, "--wait", "--json" }, { options = H.timed_opts(server, t) })
    assert.are.equal(0, status, err)
    local doc = cjson.decode(out)
    assert.is_true(doc.cancelled)
    assert.are.equal("PIPELINE_STATE_CANCELLED", doc.operation.state)
  end)

  it("says a job completed before the cancel took effect", function()
    local t = H.virtual_time(server)
    local job = server:create_job { cancel = "ignore", done_after = 2 }
    local out, err, status = main({ "cancel", job.name, "--wait" }, { options = H.timed_opts(server, t) })
    assert.are.equal(0, status, err)
    assert.matches("state:    JOB_STATE_SUCCEEDED", out, 1, true)
    assert.matches("completed before the cancel took effect", out, 1, true)
  end)

  it("gets a job as one JSON document with --json", function()
    local job = server:create_job { collection = "tuningJobs" }
    local out, err, status = main { "get", job.name, "--json" }
    assert.are.equal(0, status, err)
    local doc = cjson.decode(out)
    assert.are.equal(job.name, doc.name)
    assert.are.equal("JOB_STATE_RUNNING", doc.state)
  end)

  it("waits for a job on virtual time, its state on the progress display", function()
    local t = H.virtual_time(server)
    local job = server:create_job { done_after = 30 }
    local out, err, status = main({ "wait", job.name },
      { isatty = function(fd) return fd == 2 end, options = H.timed_opts(server, t) })
    assert.are.equal(0, status, err)
    assert.matches("state:    JOB_STATE_SUCCEEDED", out, 1, true)
    assert.matches("^\r\27%[Kwaiting%s+%d+s%s+JOB_STATE_RUNNING", err)
    assert.are.equal(0, #server:log("wait"))
  end)

  it("exits 8 (OperationError) when the job failed, the job in the JSON error", function()
    local t = H.virtual_time(server)
    local job = server:create_job { done_after = 5, outcome = "expired" }
    local out, _, status = main({ "wait", job.name, "--json" }, { options = H.timed_opts(server, t) })
    assert.are.equal(8, status)
    local doc = cjson.decode(out)
    assert.are.equal("JOB_STATE_EXPIRED", doc.error.operation.state)
  end)

  it("exits 2 for --strategy server on a job, with no request", function()
    local job = server:create_job {}
    local _, err, status = main { "wait", job.name, "--strategy", "server" }
    assert.are.equal(2, status)
    assert.matches("strategy \"server\"", err, 1, true)
    assert.are.equal(0, #server:log())
  end)

  it("gets a publisher model's operation through :fetchPredictOperation", function()
    server:create { name = VEO_OP, done = true }
    local out, err, status = main { "get", VEO_OP }
    assert.are.equal(0, status, err)
    assert.matches("state:    SUCCEEDED", out, 1, true)
    assert.matches(":fetchPredictOperation$", server:log()[1].path)
  end)

  it("cancel-all --kind customJobs cancels the running jobs of the collection", function()
    local t = H.virtual_time(server)
    for _ = 1, 2 do server:create_job {} end
    server:create_job { collection = "tuningJobs" }
    local out, err, status = main({ "cancel-all", H.PARENT, "--kind", "customJobs", "--wait", "--json" },
      { options = H.timed_opts(server, t) })
    assert.are.equal(0, status, err)
    local doc = cjson.decode(out)
    assert.are.equal(2, doc.cancelled)
    assert.are.equal(2, #doc.wait.cancelled)
    assert.are.equal(2, #server:log("cancel"))
    assert.matches("/customJobs$", server:log("list")[1].path)
  end)

  it("list --kind tuningJobs lists the jobs with their states", function()
    server:create_job { collection = "tuningJobs" }
    local out, err, status = main { "list", H.PARENT, "--kind", "tuningJobs" }
    assert.are.equal(0, status, err)
    assert.matches("^JOB_STATE_RUNNING  projects/", out)
    assert.matches("\n1 job\n$", out)
    out = main { "list", H.PARENT, "--kind", "tuningJobs", "--json" }
    assert.are.equal(1, #cjson.decode(out).jobs)
  end)

  it("exits 2 for a --kind that is not a collection of jobs, with no request", function()
    local _, err, status = main { "cancel-all", H.PARENT, "--kind", "models" }
    assert.are.equal(2, status)
    assert.matches("option 'kind'", err, 1, true)
    assert.are.equal(0, #server:log())
  end)

  it("exits 2 for cancel of a publisher model's operation and delete of a job, with no request", function()
    local _, err, status = main { "cancel", VEO_OP }
    assert.are.equal(2, status)
    assert.matches("no cancel method", err, 1, true)
    _, err, status = main { "delete", "projects/test-project/locations/us-central1/customJobs/1" }
    assert.are.equal(2, status)
    assert.matches("does not delete jobs", err, 1, true)
    assert.are.equal(0, #server:log())
  end)
end)
