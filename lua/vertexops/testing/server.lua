-- vertexops.testing.server: the fake Vertex AI operations service. It runs inside nginx (Debian's
-- lua module, LuaJIT), started and driven by vertexops.testing (lua/vertexops/testing/init.lua);
-- users' documentation: docs/fake.md.
--
-- Speaks the real REST paths (/v1beta1/..., /v1/... and the /ui/... prefix Google's Node client uses),
-- the real JSON shapes and Google's error envelope. State lives in state.lua (one worker):
-- operations, a request log and a queue of injected faults, all driven through /_control/.
--
-- FAULTS (POST /_control/faults with one fault table or a list; vertexops.testing: server:fault{...};
-- DELETE /_control/faults forgets those not taken yet: server:clear_faults()).
-- A fault is taken by the next request whose call matches, `times` times (default 1), and logged
-- like any request. Fields, each one fault kind (several may be combined where it makes sense):
--   match        "cancel" | "get" | "delete" | "list" | "wait" | "token" | "metadata" | "sts" | "iam" |
--                "subject_token" | "aws_token" | "aws_metadata" | "other" | "any"
--   times        how many requests it answers (default 1)
--   delay        seconds to hold the request first (then the rest of the fault, or the normal answer)
--   drop         "before": close the connection without an answer; "mid": 200, half a body, close
--   status       answer this HTTP status with Google's error envelope (message: its message)
--   headers      extra response headers {name = value} (with status, body or size)
--   retry_after  a Retry-After header, sent as given: seconds, "-5", "soon", an HTTP date, ...
--   retry_delay  with status: a google.rpc.RetryInfo detail whose retryDelay is this, sent as given
--                ("1.5s", "30s", "bogus", ...); reason: the ErrorInfo reason (default: the status name).
--                Every error carries an ErrorInfo, a 429 a QuotaFailure too (Google's envelopes)
--   body         the raw body (with status: of that error; without: of a 200); content_type
--   size         a body of that many bytes (spaces; with status: of that error, e.g. 404 + 40 MB);
--                at most 64 MiB, streamed (LIMITS: what every control input may hold)
--   json_depth   a JSON body nested that deep: a 200 operation whose metadata.injected is {"a":{"a":...}},
--                or with status, Google's error envelope whose details[1] is; json_kind = "array"
--                nests [[[...]]] instead
--   invalid_utf8 bytes that are not UTF-8 (\xff\xfe\xc3\x28): in the error message (with status),
--                else in a 200 operation's metadata.injected
--   header_size  one response header X-Fake-Padding of that many bytes
--   header_nul   a response header X-Fake-Nul holding a NUL byte (nginx refuses to send one: see
--                spec/support/fake.lua raw_server for the raw responder that does)
--   endless      a 200 whose body never ends (1 MiB chunks while the client reads; stops after
--                `endless` seconds, default 300)
--   trickle      a 200 whose body comes one byte per `trickle` seconds (stops after 300 bytes)
--   redirect     a 3xx (status, default 302) to this Location, e.g. another fake server's URL
--   next_page_token  list answers normally but with this nextPageToken (a paging loop when it repeats);
--                a list of tokens is cycled through, one per answer ({"a", "b"}: a, b, a, b, ...)
-- Faults needing no per-request trigger live in the server itself (vertexops.testing):
--   server.goaway_endpoint   HTTP/2 with keepalive_requests 5: GOAWAY after 5 requests on
--                            a connection (testing.GOAWAY_AFTER)
--   server.narrow_endpoint   HTTP/2 with http2_max_concurrent_streams 1 (REFUSED_STREAM for streams
--                            sent past the limit)
--   testing.silent_listener()  TCP accepted (by the kernel) but TLS never answered
--   fake.raw_server(bytes)     (spec/support/fake.lua) canned raw bytes over plain HTTP
-- 401 forever is {status = 401, times = 1e9}; a paging loop {match = "list", next_page_token = "again", times = 1e9}.
--
-- The service is split by concern, each module next to this one (docs/fake.md, "Inside the fake"):
--   server.lua   this entry (reset, handle, done: what nginx.conf calls) and ROUTES: which call a
--                method and path make, and what answers each call
--   state.lua    what the service holds (operations, log, faults, tokens, clock, settings); now()
--   model.lua    operations: specs, settling, Google's view, listing pages, list/get/delete/cancel/wait
--   jobs.lua     jobs (customJobs, pipelineJobs, ...): specs, state machines, get/cancel; publisher
--                models' :fetchPredictOperation
--   faults.lua   the fault queue and a handler per fault kind (the fields above)
--   tokens.lua   credentials: the OAuth token endpoint, the metadata server, the bearer check
--   sts.lua      Google's STS (/v1/token), IAM Credentials (generateAccessToken), a subject-token URL
--   aws.lua      AWS's instance metadata service with IMDSv2 (/latest/api/token, /latest/meta-data/)
--   control.lua  the control API (/_control/): a handler per path
--   quota.lua    a request quota per project and region, 429 RESOURCE_EXHAUSTED past it (off by default)
--   log.lua      the request log and the counters of stats()
--   check.lua    LIMITS and the checks of control input; reply.lua: JSON answers, Google's errors
local control = require "vertexops.testing.control"
local faults = require "vertexops.testing.faults"
local jobs = require "vertexops.testing.jobs"
local log = require "vertexops.testing.log"
local model = require "vertexops.testing.model"
local quota = require "vertexops.testing.quota"
local reply = require "vertexops.testing.reply"
local state = require "vertexops.testing.state"
local sts = require "vertexops.testing.sts"
local aws = require "vertexops.testing.aws"
local tokens = require "vertexops.testing.tokens"

local ngx = ngx
local _M = {}

-- What the fake caps (docs/fake.md, "Limits") and its page sizes, for code inside nginx.
_M.LIMITS = require("vertexops.testing.check").LIMITS
_M.PAGE_DEFAULT, _M.PAGE_MAX = model.PAGE_DEFAULT, model.PAGE_MAX

--- Back to a fresh server (POST /_control/reset does the same).
_M.reset = state.reset

-- routing ------------------------------------------------------------------------------------

-- Paths outside Vertex's API: each row a whole path and the call each method makes on it.
local PATHS = {
  ["/token"] = { POST = "token" },
  ["/computeMetadata/v1/instance/service-accounts/default/token"] = { GET = "metadata" },
  ["/v1/token"] = { POST = "sts" },            -- Google's STS (sts.lua)
  ["/v1/oauthtoken"] = { POST = "sts" },       -- its refresh of workforce users' tokens (sts.lua)
  ["/subject_token"] = { GET = "subject_token" }, -- an OIDC-style subject-token URL (sts.lua)
}

-- The prefixes of Vertex's API: /v1beta1/, /v1/, the /ui/ of Google's Node client, and a
-- template's /{region}/v1beta1/, /{region}/v1/.
local PREFIXES = { "^/v1beta1/(.*)$", "^/v1/(.*)$", "^/ui/(.*)$", "^/[%w-]+/v1beta1/(.*)$", "^/[%w-]+/v1/(.*)$" }

-- Vertex's methods below a prefix, tried in order: a pattern capturing the resource's name, and
-- the call each method makes on it. An operation is any name ending in /operations/{id}, as
-- Google's generic grammar has them: projects/P/locations/L/operations/O, nested under
-- collections (.../customJobs/42/operations/O), under a singleton (.../ragEngineConfig/operations/O)
-- or without a project (reasoningEngines/R/sessions/S/operations/O); a list's parent is anything
-- before /operations. Jobs (:cancel of customJobs, ...) land here as rows.
local OPERATION = ".+/operations/[^/:]+"
-- A row with `on` is answered by that table of calls (jobs.lua) instead of model.CALLS; with `only`,
-- only when that predicate accepts the name (a collection of jobs: jobs.COLLECTIONS).
local JOB = "projects/[^/]+/locations/[^/]+/%a+/[^/:]+"
local MODEL = "projects/[^/]+/locations/[^/]+/publishers/[^/]+/models/[^/:]+"
local ROUTES = {
  { "^(" .. JOB .. "):cancel$", POST = "cancel", on = jobs.CALLS, only = jobs.job_name },
  { "^(" .. JOB .. ")$", GET = "get", on = jobs.CALLS, only = jobs.job_name },
  { "^(projects/[^/]+/locations/[^/]+/%a+)$", GET = "list", on = jobs.CALLS, only = jobs.list_name },
  -- publisher models' operations are read with POST {model}:fetchPredictOperation: a "get"
  { "^(" .. MODEL .. "):fetchPredictOperation$", POST = "get", on = { get = jobs.fetch_predict_operation } },
  { "^(" .. OPERATION .. "):cancel$", POST = "cancel" },
  { "^(" .. OPERATION .. "):wait$", POST = "wait" },
  { "^([^:]+)/operations$", GET = "list" },
  { "^(" .. OPERATION .. ")$", GET = "get", DELETE = "delete" },
}

-- The call a request makes, the name in its path, and the table of calls that answers it (nil:
-- model.CALLS): call nil when no path matches, false when the path does but not its method.
local function route(method, path)
  local row = PATHS[path]
  if row then return row[method] or false, nil end
  local imds, what = aws.route(method, path) -- AWS's instance metadata service (aws.lua)
  if imds ~= nil then return imds, what end
  local email = sts.iam_email(path) -- IAM Credentials' generateAccessToken (sts.lua)
  if email then return method == "POST" and "iam" or false, email end
  local rest
  for _, prefix in ipairs(PREFIXES) do
    rest = path:match(prefix)
    if rest then break end
  end
  if not rest then return nil end
  for _, r in ipairs(ROUTES) do
    local name = rest:match(r[1])
    if name and not (r.only and not r.only(name)) then return r[method] or false, name, r.on end
  end
  return nil
end

-- What answers each call, given the name from the path: Vertex's calls on operations need an
-- accepted bearer token; the token endpoints (tokens.ENDPOINTS) issue them.
local CALLS = model.CALLS
local PUBLIC = {}
for _, endpoints in ipairs { tokens.ENDPOINTS, sts.ENDPOINTS, aws.ENDPOINTS } do
  for call, f in pairs(endpoints) do PUBLIC[call] = f end
end

-- entry points (nginx.conf) ------------------------------------------------------------------

--- The log phase: the request is over.
_M.done = log.done

--- The content phase: answers one request.
function _M.handle()
  ngx.req.read_body() -- HTTP/2 needs the body read, or the client sees a stream reset
  local path = ngx.var.uri
  local ctl = path:match("^/_control/(.*)$")
  if ctl then return control.handle(ctl) end

  local call, name, on = route(ngx.req.get_method(), path)
  log.request(call, name) -- the name as the request gave it
  name = model.numbered(name)
  local f = faults.take(call or "other")
  if f and faults.apply(f, call, name) then return end
  if state.hold then ngx.sleep(state.hold) end

  if call == nil then
    return reply.gerror(404, "The requested URL " .. path .. " was not found on this server.")
  elseif call == false then
    return reply.gerror(405, "Method not allowed.")
  elseif PUBLIC[call] then
    return PUBLIC[call](name)
  end
  local authorized, reason = tokens.authorized()
  if not authorized then return tokens.unauthorized(reason) end
  -- Google's quota is charged after authentication, before the call is answered
  if not quota.admit(call, name) then return log.exceeded() end
  return (on or CALLS)[call](name)
end

return _M
