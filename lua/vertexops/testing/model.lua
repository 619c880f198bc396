-- vertexops.testing.model: Vertex's long-running operations as the fake keeps them: made through
-- /_control/operations (check_spec, create, create_many), each settling by its spec as time
-- passes (settle), shown as Google's JSON (view), listed in pages (page_of), and the calls Vertex
-- answers on them (CALLS: list, get, delete, cancel, wait). A new resource the fake serves (jobs:
-- their own view and cancel) lands here beside operations, its routes in server.lua's ROUTES.
local check = require "vertexops.testing.check"
local reply = require "vertexops.testing.reply"
local state = require "vertexops.testing.state"

local ngx = ngx
local send, gerror = reply.send, reply.gerror
local number_in, one_of, first, set = check.number_in, check.one_of, check.first, check.set
local LIMITS = check.LIMITS

local M = {}

local now_rfc3339 = reply.rfc3339

--- Ends op when its spec says it has ended by now (a cancel honoured, its time or its gets reached).
function M.settle(op)
  if op.done then return end
  local t = state.now()
  if op.cancel_requested and op.cancel == "late" then
    op.done = op.outcome -- it finished before the cancel landed
  elseif op.cancel_requested and op.cancel == "honour"
      and not (op.cancel_after and t < op.cancel_at + op.cancel_after) then
    op.done = "cancelled"
  elseif op.done_after and t >= op.created + op.done_after then
    op.done = op.outcome
  elseif op.done_after_gets and op.gets >= op.done_after_gets then
    op.done = op.outcome
  end
  if op.done then op.updated = t end
end
local settle = M.settle

--- op as Google shows it (google.longrunning.Operation with GenericOperationMetadata), settled first.
function M.view(op)
  settle(op)
  local t = {
    name = op.name,
    metadata = {
      ["@type"] = "type.googleapis.com/google.cloud.aiplatform." .. (ngx.var.uri:match("^/[%w-]*/?v1/") and "v1" or "v1beta1")
        .. ".GenericOperationMetadata",
      genericMetadata = { createTime = now_rfc3339(op.created), updateTime = now_rfc3339(op.updated) },
    },
  }
  if op.progress and op.done_after then
    -- a finished job reports 100; a cancelled one stays where it was stopped
    local at = op.done == "cancelled" and op.updated or state.now()
    local pct = (op.done and op.done ~= "cancelled") and 100
      or math.floor(math.min(99, (at - op.created) / op.done_after * 100))
    t.metadata.progressPercentage = pct
  end
  if op.done then
    t.done = true
    if op.done == "cancelled" then
      t.error = { code = 1, message = "CANCELLED" }
    elseif op.done == "error" then
      t.error = op.error or { code = 13, message = "Internal error while running the job." }
    else
      t.response = { ["@type"] = "type.googleapis.com/google.protobuf.Empty" }
    end
  end
  return t
end
local view = M.view

-- Listing: each parent keeps its operations in creation order (state.lists[parent], an array of
-- op tables). A page token is a cursor -- the position of the last operation looked at -- so a
-- page costs O(page size) and stays valid while operations change state (a sweep that cancels
-- what it lists never skips or repeats one). A deleted operation stays in the array, marked
-- deleted; one created again under a taken name takes over the old one's place (replaced_by).
M.PAGE_DEFAULT, M.PAGE_MAX = reply.PAGE_DEFAULT, reply.PAGE_MAX -- AIP-158 (reply.page_size)

-- The parent an operation lists under: what is before its /operations/{id}, at any depth
-- (projects/P/locations/L, .../customJobs/42, reasoningEngines/R/sessions/S).
local function parent_of(name)
  return name:match("^(.+)/operations/[^/]+$")
end

local function register(op)
  local old = state.ops[op.name]
  state.ops[op.name] = op
  if old then
    old.replaced_by = op -- same name: the new one takes the old one's place in the listing
    return
  end
  local parent = parent_of(op.name)
  if not parent then return end -- a name without /operations/{id} lists nowhere
  local list = state.lists[parent]
  if not list then
    list = {}
    state.lists[parent] = list
  end
  list[#list + 1] = op
end

-- Project numbers (config{project_number = "123456789012"}): Vertex names operations with the
-- project NUMBER whatever the request said. In this mode an operation of the project ID
-- (config.project_id, default "test-project") is created and listed as projects/{number}/...,
-- and requests naming the ID reach the same operations (the ID parent lists them).
function M.numbered(name)
  local number = state.project_number
  if not number or not name then return name end
  local id = state.project_id or "test-project"
  local prefix = "projects/" .. id .. "/"
  if name:sub(1, #prefix) ~= prefix then return name end
  return "projects/" .. number .. "/" .. name:sub(#prefix + 1)
end
local numbered = M.numbered

-- spec fields: name | (project, location, id); done_after (s), done_after_gets (n),
-- outcome ("response" | "error"), error, progress (report progressPercentage in metadata),
-- cancel ("honour" | "ignore" | "late": completes anyway | "unimplemented"), cancel_after (s: an
-- honoured cancel ends the operation CANCELLED that long after the first cancel, as a real job
-- takes time to stop), wait ("longpoll" | "immediate" | "unimplemented"), done (true: already
-- finished); count (create_many). Returns nil, or the message of a 400.
function M.check_spec(spec)
  if type(spec) ~= "table" then return "an operation spec must be a JSON object" end
  local m = first(
    one_of(spec, "name", "string"), one_of(spec, "project", "string"), one_of(spec, "location", "string"),
    one_of(spec, "id", "string|number"),
    number_in(spec, "done_after", 0, 1e11), number_in(spec, "done_after_gets", 0, 1e11, true),
    number_in(spec, "cancel_after", 0, 1e11),
    one_of(spec, "outcome", nil, set("response", "error")), one_of(spec, "error", "table"),
    one_of(spec, "cancel", nil, set("honour", "ignore", "late", "unimplemented")),
    one_of(spec, "wait", nil, set("longpoll", "immediate", "unimplemented")),
    one_of(spec, "progress", "boolean"), one_of(spec, "done", "boolean"))
  if m then return m end
  if spec.count ~= nil then
    if not check.is_whole(spec.count) or spec.count < 1 or spec.count > LIMITS.create then
      return ("count must be an integer from 1 to %d (operations one request makes), got %s")
        :format(LIMITS.create, check.shown(spec.count))
    end
  end
  local n = spec.count or 1
  if state.made + n > LIMITS.operations then
    return ("the fake holds at most %d operations (%d made since the last reset): reset() first")
      :format(LIMITS.operations, state.made)
  end
end

local function spec_fields(spec, t)
  return {
    created = t, updated = t, gets = 0,
    done_after = spec.done_after, done_after_gets = spec.done_after_gets,
    outcome = spec.outcome or "response", error = spec.error,
    cancel = spec.cancel or "honour", wait = spec.wait or "longpoll", progress = spec.progress,
    cancel_after = spec.cancel_after,
    done = spec.done and (spec.outcome or "response") or nil,
  }
end

-- The next operation's name in spec's project and location: id, else the next number from 1001.
local function next_name(spec, id)
  state.seq = state.seq + 1
  return numbered(string.format("projects/%s/locations/%s/operations/%s",
    spec.project or "test-project", spec.location or "us-central1", id or tostring(1000 + state.seq)))
end

--- Makes one operation (a checked spec); returns it.
function M.create(spec)
  local name = next_name(spec, spec.id)
  local op = spec_fields(spec, state.now())
  op.name = spec.name and numbered(spec.name) or name
  register(op)
  return op
end

--- spec.count operations at once, sharing one spec (project, location, done_after, cancel, ...).
--- Each is a table holding its name only, until something changes it (a get, a cancel): every
--- other field is read from the shared spec through __index, so 100,000 of them stay small.
--- Returns {count, first, last} (names).
function M.create_many(spec)
  local shared = { __index = spec_fields(spec, state.now()) }
  local first_name, last
  for _ = 1, spec.count do
    last = setmetatable({ name = next_name(spec) }, shared)
    first_name = first_name or last.name
    register(last)
    last = last.name
  end
  return { count = spec.count, first = first_name, last = last }
end

--- One page of parent's operations from cursor on; returns the page (views) and the next cursor
--- (nil at the end). want_done: nil (all), true or false (the filter done=true / done=false).
function M.page_of(parent, cursor, size, want_done)
  local list = state.lists[parent] or {}
  return reply.page(#list, cursor, size, function(k)
    local op = list[k]
    while op.replaced_by do op = op.replaced_by end
    if op.deleted then return nil end
    settle(op)
    if want_done ~= nil and (op.done ~= nil) ~= want_done then return nil end
    return view(op)
  end)
end

-- the calls Vertex answers -------------------------------------------------------------------

local DONE_FILTER = { ["done=true"] = true, ["done = true"] = true, ["done=false"] = false, ["done = false"] = false }

-- GET {parent}/operations?pageSize&pageToken&filter. A fault's next_page_token
-- (ngx.ctx.next_page_token) replaces the one the page would carry.
local function list(parent)
  local args = ngx.req.get_uri_args()
  local size = reply.page_size(args)
  if not size then return gerror(400, "Invalid pageSize: must be a non-negative integer.") end
  local token = args.pageToken or ""
  local cursor = token == "" and 0 or tonumber(token:match("^c(%d+)$") or "")
  if not cursor and ngx.ctx.next_page_token then cursor = 0 end -- a token a fault made up: from the start
  if not cursor then return gerror(400, "Invalid page token.") end
  local page, next_cursor = M.page_of(parent, cursor, size, DONE_FILTER[args.filter])
  local body = { operations = page }
  if next_cursor then body.nextPageToken = "c" .. next_cursor end
  if ngx.ctx.next_page_token then body.nextPageToken = ngx.ctx.next_page_token end
  if #page == 0 and not body.nextPageToken then body = reply.OBJ end
  return send(200, body)
end

local function get(op)
  op.gets = op.gets + 1
  return send(200, view(op))
end

local function delete(op, name)
  state.ops[name] = nil
  op.deleted = true
  return send(200, reply.OBJ)
end

local function cancel(op)
  if op.cancel == "unimplemented" then
    return gerror(501, "Operation cancellation is not supported for this operation.")
  end
  op.cancel_requested = true
  op.cancel_at = op.cancel_at or state.now()
  return send(200, reply.OBJ)
end

-- A long-poll: holds until op is done or timeout seconds have passed, on the server's clock.
local function hold_until_done(op, timeout)
  if state.virtual then
    -- hold in virtual time: jump to the end of the operation or of the timeout
    local finish = op.done_after and op.created + op.done_after
    state.virtual = (finish and finish < state.virtual + timeout) and finish or state.virtual + timeout
    settle(op)
    return
  end
  local deadline = ngx.now() + timeout
  while not op.done and ngx.now() < deadline do
    -- a cancel that ends the operation later: sleep until then (1,000 long-polls of a load
    -- test cost one wake-up each, not one every 20 ms)
    local stop = op.cancel_at and op.cancel_after and op.cancel == "honour" and op.cancel_at + op.cancel_after
    ngx.sleep(stop and math.max(0.001, math.min(stop, deadline) - ngx.now()) or 0.02)
    settle(op)
  end
end

-- POST {name}:wait?timeout=Ns (at most 60 s, as Google's)
local function wait(op)
  if op.wait == "unimplemented" then return gerror(501, "Method not implemented.") end
  local timeout = tonumber((ngx.var.arg_timeout or ""):match("^([%d.]+)s$") or 0)
  if timeout <= 0 or timeout > 60 then timeout = 60 end
  settle(op)
  if op.wait == "longpoll" and not op.done then hold_until_done(op, timeout) end
  return send(200, view(op))
end

-- A call on one operation: a 404 when there is none by that name.
local function on_operation(answer)
  return reply.on_found("ops", "Operation", answer)
end

--- What answers each call on operations, given the name the route took from the path.
M.CALLS = {
  list = list,
  get = on_operation(get),
  delete = on_operation(delete),
  cancel = on_operation(cancel),
  wait = on_operation(wait),
}

return M
