-- vertexops.testing.jobs: Vertex jobs as the fake keeps them (customJobs, batchPredictionJobs,
-- pipelineJobs, tuningJobs, ... : COLLECTIONS), made through /_control/jobs (check_spec, create),
-- each with its state machine on the server's clock (settle): RUNNING, then its outcome after
-- done_after seconds; a cancel makes it CANCELLING, then CANCELLED cancel_after seconds later.
-- Shown as Google's JSON (view); the calls Vertex answers on them (CALLS: get, cancel) and
-- publisher models' :fetchPredictOperation (fetch_predict_operation), routed by server.lua's ROUTES.
local cjson = require("cjson.safe").new()
local check = require "vertexops.testing.check"
local reply = require "vertexops.testing.reply"
local state = require "vertexops.testing.state"
local model = require "vertexops.testing.model"

local ngx = ngx
local send, gerror = reply.send, reply.gerror
local number_in, one_of, first, set = check.number_in, check.one_of, check.first, check.set

local M = {}

--- The collections of jobs, and the prefix of their states (PipelineState for pipelines).
M.COLLECTIONS = {
  customJobs = "JOB_STATE_", hyperparameterTuningJobs = "JOB_STATE_", nasJobs = "JOB_STATE_",
  dataLabelingJobs = "JOB_STATE_", batchPredictionJobs = "JOB_STATE_", trainingPipelines = "PIPELINE_STATE_",
  pipelineJobs = "PIPELINE_STATE_", tuningJobs = "JOB_STATE_",
}
local COLLECTIONS = M.COLLECTIONS

-- outcome -> the state it ends in (after the prefix); pipelines have no EXPIRED or PARTIALLY_SUCCEEDED
local OUTCOMES = { succeeded = "SUCCEEDED", failed = "FAILED", expired = "EXPIRED",
                   partially_succeeded = "PARTIALLY_SUCCEEDED" }
local CANCEL_AFTER = 1 -- seconds from an honoured cancel to CANCELLED, by default

--- The job name in a path's rest (projects/P/locations/L/{collection}/ID), or nil.
function M.job_name(rest)
  local name, collection = rest:match("^(projects/[^/]+/locations/[^/]+/([%a]+)/[^/:]+)")
  if name and COLLECTIONS[collection] then return name end
  return nil
end

--- The collection's path in a path's rest (projects/P/locations/L/{collection}), or nil.
function M.list_name(rest)
  local collection = rest:match("^projects/[^/]+/locations/[^/]+/(%a+)$")
  if collection and COLLECTIONS[collection] then return rest end
  return nil
end

local now_rfc3339 = reply.rfc3339

--- Moves job along its state machine to where the clock says it is.
function M.settle(job)
  if job.ended then return end
  local t = state.now()
  if job.cancel_at and job.cancel == "honour" and t >= job.cancel_at + job.cancel_after then
    job.ended, job.updated = "CANCELLED", job.cancel_at + job.cancel_after
  elseif job.done_after and t >= job.created + job.done_after then
    job.ended, job.updated = OUTCOMES[job.outcome], job.created + job.done_after
  end
end
local settle = M.settle

local function state_of(job)
  settle(job)
  local s = job.ended or (job.cancel_at and job.cancel == "honour" and "CANCELLING") or "RUNNING"
  return job.prefix .. s
end

--- job as Google shows it: name, displayName, state, times, and error when it failed, expired
--- (code 4 DEADLINE_EXCEEDED) or was cancelled (code 1 CANCELLED).
function M.view(job)
  local s = state_of(job)
  local t = { name = job.name, displayName = job.display_name or "fake-job", state = s,
              createTime = now_rfc3339(job.created), startTime = now_rfc3339(job.created),
              updateTime = now_rfc3339(job.updated) }
  if job.ended then
    t.endTime = now_rfc3339(job.updated)
    if job.ended == "CANCELLED" then
      t.error = { code = 1, message = "CANCELED" }
    elseif job.ended == "FAILED" then
      t.error = job.error or { code = 13, message = "The replica workerpool0-0 exited with a non-zero status of 1." }
    elseif job.ended == "EXPIRED" then
      t.error = job.error or { code = 4, message = "The job ran past its deadline." }
    end
  end
  return t
end

-- spec fields: name (a job's name) | (project, location, collection, id); done_after (s: the job
-- ends by its outcome then), outcome ("succeeded" | "failed" | "expired" | "partially_succeeded"),
-- error (of a failed one), done (true: already ended by its outcome), cancel ("honour" | "ignore":
-- the cancel is accepted and nothing happens), cancel_after (s from the first cancel to CANCELLED,
-- default 1). Returns nil, or the message of a 400.
function M.check_spec(spec)
  if type(spec) ~= "table" then return "a job spec must be a JSON object" end
  local m = first(
    one_of(spec, "name", "string"), one_of(spec, "project", "string"), one_of(spec, "location", "string"),
    one_of(spec, "collection", nil, set("customJobs", "hyperparameterTuningJobs", "nasJobs", "dataLabelingJobs",
      "batchPredictionJobs", "trainingPipelines", "pipelineJobs", "tuningJobs")),
    one_of(spec, "id", "string|number"), number_in(spec, "done_after", 0, 1e11),
    number_in(spec, "cancel_after", 0, 1e11),
    one_of(spec, "outcome", nil, set("succeeded", "failed", "expired", "partially_succeeded")),
    one_of(spec, "error", "table"), one_of(spec, "cancel", nil, set("honour", "ignore")),
    one_of(spec, "done", "boolean"))
  if m then return m end
  if spec.name and not M.job_name(spec.name) then
    return "name must look like projects/{project}/locations/{location}/{collection}/{id} with a job collection"
  end
  local collection = spec.name and spec.name:match("^projects/[^/]+/locations/[^/]+/(%a+)/") or spec.collection
  if COLLECTIONS[collection or "customJobs"] == "PIPELINE_STATE_"
      and (spec.outcome == "expired" or spec.outcome == "partially_succeeded") then
    return "pipelines end SUCCEEDED, FAILED or CANCELLED (outcome " .. spec.outcome .. " is a job's)"
  end
  if state.made + 1 > check.LIMITS.operations then
    return ("the fake holds at most %d operations and jobs (%d made since the last reset): reset() first")
      :format(check.LIMITS.operations, state.made)
  end
end

--- Makes one job (a checked spec); returns it.
function M.create(spec)
  state.seq = state.seq + 1
  local collection = spec.collection or "customJobs"
  local name = spec.name or string.format("projects/%s/locations/%s/%s/%s", spec.project or "test-project",
    spec.location or "us-central1", collection, spec.id or tostring(1000 + state.seq))
  name = model.numbered(name)
  collection = name:match("^projects/[^/]+/locations/[^/]+/(%a+)/")
  local t = state.now()
  local job = {
    name = name, prefix = COLLECTIONS[collection], created = t, updated = t,
    done_after = spec.done_after, outcome = spec.outcome or "succeeded", error = spec.error,
    cancel = spec.cancel or "honour", cancel_after = spec.cancel_after or CANCEL_AFTER,
  }
  if spec.done then job.ended = OUTCOMES[job.outcome] end
  local old = state.jobs[name]
  state.jobs[name] = job
  if old then
    old.replaced_by = job -- same name: the new one takes the old one's place in the listing
  else
    local list_name = name:match("^(projects/[^/]+/locations/[^/]+/%a+)/")
    local list = state.job_lists[list_name] or {}
    state.job_lists[list_name] = list
    list[#list + 1] = job
  end
  return job
end

-- the calls Vertex answers ------------------------------------------------------------------

-- GET {job}
local function get(job)
  return send(200, M.view(job))
end

-- POST {job}:cancel: {} at once; a job that has ended answers 400 FAILED_PRECONDITION (Vertex's).
local function cancel(job)
  settle(job)
  if job.ended then
    return send(400, { error = { code = 400, status = "FAILED_PRECONDITION",
      message = ("Cannot cancel the job %s in state %s."):format(job.name, job.prefix .. job.ended) } })
  end
  job.cancel_at = job.cancel_at or state.now()
  job.updated = state.now()
  return send(200, reply.OBJ)
end

-- The states a filter keeps: `state="S"` terms joined by OR (what cancel_all sends); nil: every
-- job; false: a filter the fake does not read.
local function filter_states(filter)
  if filter == nil or filter == "" then return nil end
  local states, rest = {}, filter
  while true do
    local s, after = rest:match('^%s*state%s*=%s*"([%u_]+)"%s*(.*)$')
    if not s then return false end
    states[s] = true
    if after == "" then return states end
    rest = after:match("^OR%s+(.*)$")
    if not rest then return false end
  end
end

-- GET {parent}/{collection}?filter&pageSize&pageToken: jobs in creation order, the answer's list
-- under the collection's name (AIP-158 pages: 50 by default, at most 1000; a cursor token).
local function list(list_name)
  local args = ngx.req.get_uri_args()
  local size = reply.page_size(args)
  if not size then return gerror(400, "Invalid pageSize: must be a non-negative integer.") end
  local states = filter_states(args.filter)
  if states == false then
    return gerror(400, "The fake filters jobs only by state=\"...\" terms joined by OR, got: " .. tostring(args.filter))
  end
  local token = args.pageToken or ""
  local cursor = token == "" and 0 or tonumber(token:match("^j(%d+)$") or "")
  if not cursor then return gerror(400, "Invalid page token.") end
  local all = state.job_lists[list_name] or {}
  local page, next_cursor = reply.page(#all, cursor, size, function(k)
    local job = all[k]
    while job.replaced_by do job = job.replaced_by end
    return (not states or states[state_of(job)]) and M.view(job) or nil
  end)
  local body = {}
  if #page > 0 then body[list_name:match("(%a+)$")] = page end
  if next_cursor then body.nextPageToken = "j" .. next_cursor end
  return send(200, next(body) and body or reply.OBJ)
end

-- A call on one job: a 404 when there is none by that name.
local function on_job(answer)
  return reply.on_found("jobs", "Job", answer)
end

--- What answers each call on jobs, given the name the route took from the path.
M.CALLS = { get = on_job(get), cancel = on_job(cancel), list = list }

--- POST {model}:fetchPredictOperation {"operationName": name}: the operation (made with
--- server:create{name = ".../publishers/google/models/M/operations/O"}), as GET shows operations.
function M.fetch_predict_operation(model_name)
  local body = cjson.decode(ngx.req.get_body_data() or "")
  local op_name = type(body) == "table" and body.operationName
  if type(op_name) ~= "string" then
    return gerror(400, "Invalid JSON payload: operationName is required.")
  end
  if op_name:sub(1, #model_name + 12) ~= model_name .. "/operations/" then
    return gerror(400, "operationName " .. op_name .. " is not an operation of " .. model_name .. ".")
  end
  local op = state.ops[model.numbered(op_name)]
  if not op then
    return gerror(404, "The Operation \"" .. op_name .. "\" was not found.", nil, { reason = "RESOURCE_NOT_FOUND" })
  end
  op.gets = op.gets + 1
  return send(200, model.view(op))
end

return M
