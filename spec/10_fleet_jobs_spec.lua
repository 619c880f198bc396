-- cancel_all over a collection of jobs (opts.kind): the listing GET {parent}/{kind} with the default
-- filter of jobs not yet ended, a POST :cancel per job, the wait by listings or GETs until each
-- job's state is terminal; the fake's request log as witness.
-- Contract: docs/contract.md, "Jobs and publisher models' operations" and "cancel_all and what a listing holds".
local vertexops = require "vertexops"
local H = require "support.helper"

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- The query of a logged request as a table (values unescaped).
local function query(entry)
  local q = {}
  for k, v in (entry.query or ""):gmatch("([^&=]+)=([^&]*)") do q[k] = unescape(v) end
  return q
end

describe("cancel_all of jobs", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  local function opts(t, extra) return H.timed_opts(server, t, extra) end

  it("lists the collection with the default filter and cancels each running job once, with {}", function()
    local running = {}
    for i = 1, 3 do running[i] = server:create_job {}.name end
    server:create_job { done = true }                  -- ended: not listed by the filter
    server:create_job { collection = "tuningJobs" }   -- another collection
    local t = H.virtual_time(server)
    local s = vertexops.cancel_all(H.PARENT, nil, opts(t, { kind = "customJobs" }))
    assert.are.equal(3, s.listed)
    assert.are.equal(3, s.cancelled)
    assert.are.same({}, s.failed)
    local lists = server:log("list")
    assert.are.equal(1, #lists)
    assert.are.equal("/v1beta1/" .. H.PARENT .. "/customJobs", lists[1].path)
    assert.are.equal('state="JOB_STATE_QUEUED" OR state="JOB_STATE_PENDING" OR state="JOB_STATE_RUNNING" '
      .. 'OR state="JOB_STATE_PAUSED"', query(lists[1]).filter)
    local cancels = server:log("cancel")
    assert.are.equal(3, #cancels)
    for i, e in ipairs(cancels) do
      assert.are.equal("/v1beta1/" .. running[i] .. ":cancel", e.path)
      assert.are.equal("{}", e.body)
    end
  end)

  it("uses PIPELINE_STATE_ in the default filter of pipelines", function()
    server:create_job { collection = "pipelineJobs" }
    local t = H.virtual_time(server)
    local s = vertexops.cancel_all(H.PARENT, nil, opts(t, { kind = "pipelineJobs" }))
    assert.are.equal(1, s.cancelled)
    assert.matches('^state="PIPELINE_STATE_QUEUED" OR', query(server:log("list")[1]).filter)
  end)

  it("sends the caller's filter as given", function()
    server:create_job {}
    local t = H.virtual_time(server)
    local s = vertexops.cancel_all(H.PARENT, nil, opts(t, { kind = "customJobs", filter = 'state="JOB_STATE_RUNNING"' }))
    assert.are.equal(1, s.cancelled)
    assert.are.equal('state="JOB_STATE_RUNNING"', query(server:log("list")[1]).filter)
  end)

  it("pages the listing with page_size", function()
    for _ = 1, 5 do server:create_job {} end
    local t = H.virtual_time(server)
    local s = vertexops.cancel_all(H.PARENT, nil, opts(t, { kind = "batchPredictionJobs", page_size = 2 }))
    assert.are.equal(0, s.listed) -- customJobs were made: this collection is empty
    for _ = 1, 5 do server:create_job { collection = "batchPredictionJobs" } end
    server:reset_log()
    s = vertexops.cancel_all(H.PARENT, nil, opts(t, { kind = "batchPredictionJobs", page_size = 2 }))
    assert.are.equal(5, s.cancelled)
    assert.are.equal(3, s.pages)
    assert.are.equal(3, #server:log("list"))
  end)

  it("waits until each job is CANCELLED, CANCELLING first", function()
    for _ = 1, 3 do server:create_job { cancel_after = 5 } end
    local t = H.virtual_time(server)
    local s = vertexops.cancel_all(H.PARENT, nil, opts(t, { kind = "customJobs", wait = true }))
    assert.are.equal(3, #s.wait.cancelled)
    assert.are.same({}, s.wait.completed)
    assert.are.same({}, s.wait.failed)
    assert.is_true(s.wait.rounds >= 2) -- still CANCELLING after the first round
  end)

  it("tells jobs that completed anyway and jobs that failed from cancelled ones", function()
    local t = H.virtual_time(server) -- first: the jobs end 2 s after their creation on this clock
    local done = server:create_job { cancel = "ignore", done_after = 2 }.name
    local failed = server:create_job { cancel = "ignore", done_after = 2, outcome = "expired" }.name
    local cancelled = server:create_job {}.name
    local s = vertexops.cancel_all(H.PARENT, nil, opts(t, { kind = "customJobs", wait = true, wait_by = "get" }))
    assert.are.same({ cancelled }, s.wait.cancelled)
    assert.are.same({ done }, s.wait.completed)
    assert.are.equal(1, #s.wait.failed)
    assert.are.equal(failed, s.wait.failed[1].name)
    assert.are.equal("OperationError", H.tags(s.wait.failed[1].error))
    assert.are.equal("JOB_STATE_EXPIRED", s.wait.failed[1].error.job.state)
    assert.is_true(#server:log("get") >= 3) -- wait_by = "get": GET {job}
    assert.matches("/customJobs/%d+$", server:log("get")[1].path)
  end)

  it("refuses a kind that is not a collection of jobs before any request", function()
    local err = H.raises(vertexops.cancel_all, H.PARENT, nil, H.opts(server, { kind = "models" }))
    assert.are.equal("ValueError", H.tags(err))
    assert.matches("option 'kind'", err.message, 1, true)
    assert.are.equal(0, #server:log())
  end)
end)

describe("list of jobs", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  it("lists a collection: one GET {parent}/{kind}, the jobs checked, in both page fields", function()
    local a = server:create_job { collection = "tuningJobs" }
    local page = vertexops.list(H.PARENT, nil, H.opts(server, { kind = "tuningJobs" }))
    assert.are.equal(1, #page.jobs)
    assert.are.equal(a.name, page.jobs[1].name)
    assert.are.equal(page.jobs, page.operations)
    assert.is_nil(page.next_page_token)
    assert.are.equal("/v1beta1/" .. H.PARENT .. "/tuningJobs", server:log()[1].path)
  end)

  it("iterates every page with operations()", function()
    for _ = 1, 5 do server:create_job {} end
    local n = 0
    for j in vertexops.operations(H.PARENT, nil, H.opts(server, { kind = "customJobs", page_size = 2 })) do
      assert.are.equal("JOB_STATE_RUNNING", j.state)
      n = n + 1
    end
    assert.are.equal(5, n)
    assert.are.equal(3, #server:log("list"))
  end)

  it("raises ResponseTypeError for a listed job without a state", function()
    server:fault { match = "list", body = '{"customJobs": [{"name": "projects/p/locations/l/customJobs/1"}]}' }
    local err = H.raises(vertexops.list, H.PARENT, nil, H.opts(server, { kind = "customJobs" }))
    assert.are.equal("ResponseTypeError", H.tags(err))
    assert.matches("'customJobs'[1]", err.message, 1, true)
  end)

  it("raises ResponseTypeError when the collection's field is not a list", function()
    server:fault { match = "list", body = '{"customJobs": {"a": 1}}' }
    local err = H.raises(vertexops.list, H.PARENT, nil, H.opts(server, { kind = "customJobs" }))
    assert.are.equal("ResponseTypeError", H.tags(err))
  end)
end)
