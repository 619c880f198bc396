-- vertexops.testing.server: the fake Vertex AI operations service. It runs inside nginx (Debian's
-- lua module, LuaJIT), started and driven by vertexops.testing (lua/vertexops/testing/init.lua);
-- users' documentation: docs/fake.md.
--
-- Speaks the real REST paths (/v1beta1/..., /v1/... and the /ui/... prefix Google's Node client uses),
-- the real JSON shapes and Google's error envelope. State lives in this module (one worker):
-- operations, a request log and a queue of injected faults, all driven through /_control/.
--
-- FAULTS (POST /_control/faults with one fault table or a list; vertexops.testing: server:fault{...};
-- DELETE /_control/faults forgets those not taken yet: server:clear_faults()).
-- A fault is taken by the next request whose call matches, `times` times (default 1), and logged
-- like any request. Fields, each one fault kind (several may be combined where it makes sense):
--   match        "cancel" | "get" | "delete" | "list" | "wait" | "token" | "metadata" | "other" | "any"
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
local cjson = require("cjson.safe").new()

local ngx = ngx
local _M = {}

local STATUS = {
  [400] = "INVALID_ARGUMENT", [401] = "UNAUTHENTICATED", [403] = "PERMISSION_DENIED",
  [404] = "NOT_FOUND", [409] = "ABORTED", [429] = "RESOURCE_EXHAUSTED", [499] = "CANCELLED",
  [500] = "INTERNAL", [501] = "UNIMPLEMENTED", [503] = "UNAVAILABLE", [504] = "DEADLINE_EXCEEDED",
}
local OBJ = {} -- cjson encodes an empty table as {}

local state

function _M.reset()
  state = { ops = {}, lists = {}, log = {}, faults = {}, tokens = { ["test-token"] = true }, seq = 0,
            virtual = nil, issued = 0,
            -- benchmarks: nolog (count requests and connections only), hold (seconds every
            -- Vertex answer waits, as a real service's processing time would)
            nolog = false, hold = nil, count = 0, conns = {}, nconns = 0,
            -- what the caps count (LIMITS): operations made, bytes of request bodies in the log,
            -- entries not logged past LIMITS.log_entries, bytes of queued faults
            made = 0, log_bytes = 0, log_dropped = 0, fault_bytes = 0,
            -- what the token endpoint accepts (set with /_control/oauth)
            oauth = { client_id = "test-client", client_secret = "test-secret", refresh_token = "test-refresh",
                      expires_in = 3600 } }
end

-- The server's clock: real time, or a virtual clock that only control requests move (specs that
-- simulate minutes of waiting without sleeping through them).
local function now()
  return state.virtual or ngx.now()
end
_M.reset()

local function now_rfc3339(t)
  return os.date("!%Y-%m-%dT%H:%M:%S", math.floor(t)) .. string.format(".%03dZ", (t % 1) * 1000)
end

local function send(status, body, headers)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json; charset=UTF-8"
  for k, v in pairs(headers or ngx.ctx.extra_headers or {}) do ngx.header[k] = v end
  ngx.print(type(body) == "string" and body or cjson.encode(body))
end

-- Google's error envelope. Like Google's front ends, every error carries details: an ErrorInfo
-- (reason, domain, metadata); a 429 a QuotaFailure too; a RetryInfo when extra.retry_delay is given
-- (a Duration string such as "1.5s", sent as given). extra.reason overrides the ErrorInfo reason.
local function gerror(status, message, headers, extra)
  extra = extra or {}
  local details = { {
    ["@type"] = "type.googleapis.com/google.rpc.ErrorInfo",
    reason = extra.reason or STATUS[status] or "UNKNOWN",
    domain = "aiplatform.googleapis.com",
    metadata = { service = "aiplatform.googleapis.com", method = extra.method },
  } }
  if status == 429 then
    details[#details + 1] = {
      ["@type"] = "type.googleapis.com/google.rpc.QuotaFailure",
      violations = { { subject = "project:test-project",
                       description = "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests." } },
    }
  end
  if extra.retry_delay then
    details[#details + 1] = { ["@type"] = "type.googleapis.com/google.rpc.RetryInfo", retryDelay = extra.retry_delay }
  end
  send(status, {
    error = { code = status, message = message, status = STATUS[status] or "UNKNOWN", details = details },
  }, headers)
end

-- operations ---------------------------------------------------------------------------------

local function settle(op)
  if op.done then return end
  local t = now()
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

local function view(op)
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
    local at = op.done == "cancelled" and op.updated or now()
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

-- Listing: each parent keeps its operations in creation order (state.lists[parent], an array of
-- op tables). A page token is a cursor -- the position of the last operation looked at -- so a
-- page costs O(page size) and stays valid while operations change state (a sweep that cancels
-- what it lists never skips or repeats one). A deleted operation stays in the array, marked
-- deleted; one created again under a taken name takes over the old one's place (replaced_by).
local PAGE_DEFAULT, PAGE_MAX = 50, 1000 -- pageSize 0/absent: 50; larger than 1000: 1000 (AIP-158)
_M.PAGE_DEFAULT, _M.PAGE_MAX = PAGE_DEFAULT, PAGE_MAX

local function parent_of(name)
  return name:match("^(projects/[^/]+/locations/[^/]+)/operations/[^/]+$")
end

local function register(op)
  local old = state.ops[op.name]
  state.ops[op.name] = op
  if old then
    old.replaced_by = op -- same name: the new one takes the old one's place in the listing
    return
  end
  local parent = parent_of(op.name)
  if not parent then return end -- nested operations (.../trainingPipelines/1/operations/2) list nowhere
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
local function numbered(name)
  local number = state.project_number
  if not number or not name then return name end
  local id = state.project_id or "test-project"
  local prefix = "projects/" .. id .. "/"
  if name:sub(1, #prefix) ~= prefix then return name end
  return "projects/" .. number .. "/" .. name:sub(#prefix + 1)
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

local function next_name(spec)
  state.seq = state.seq + 1
  return numbered(string.format("projects/%s/locations/%s/operations/%s",
    spec.project or "test-project", spec.location or "us-central1", tostring(1000 + state.seq)))
end

-- spec fields: name | (project, location, id); done_after (s), done_after_gets (n),
-- outcome ("response" | "error"), error, progress (report progressPercentage in metadata),
-- cancel ("honour" | "ignore" | "late": completes anyway | "unimplemented"), cancel_after (s: an
-- honoured cancel ends the operation CANCELLED that long after the first cancel, as a real job
-- takes time to stop), wait ("longpoll" | "immediate" | "unimplemented"), done (true: already finished)
local function create(spec)
  state.seq = state.seq + 1
  local name = numbered(spec.name or string.format("projects/%s/locations/%s/operations/%s",
    spec.project or "test-project", spec.location or "us-central1", spec.id or tostring(1000 + state.seq)))
  local op = spec_fields(spec, now())
  op.name = name
  register(op)
  return op
end

-- spec.count operations at once, sharing one spec (project, location, done_after, cancel, ...).
-- Each is a table holding its name only, until something changes it (a get, a cancel): every
-- other field is read from the shared spec through __index, so 100,000 of them stay small.
-- Returns {count, first, last} (names).
local function create_many(spec)
  local shared = { __index = spec_fields(spec, now()) }
  local first, last
  for _ = 1, spec.count do
    last = setmetatable({ name = next_name(spec) }, shared)
    first = first or last.name
    register(last)
    last = last.name
  end
  return { count = spec.count, first = first, last = last }
end

-- One page of parent's operations from cursor on; returns the page (views) and the next cursor
-- (nil at the end). want_done: nil (all), true or false (the filter done=true / done=false).
local function page_of(parent, cursor, size, want_done)
  local list = state.lists[parent] or {}
  local n, i, page = #list, cursor, {}
  local function matching(k)
    local op = list[k]
    while op.replaced_by do op = op.replaced_by end
    if op.deleted then return nil end
    settle(op)
    if want_done ~= nil and (op.done ~= nil) ~= want_done then return nil end
    return op
  end
  while i < n and #page < size do
    i = i + 1
    local op = matching(i)
    if op then page[#page + 1] = view(op) end
  end
  -- a next page only when one more operation matches: look ahead to it (the cursor stops just
  -- before it, so the next page does not look again at what this one skipped)
  while i < n do
    if matching(i + 1) then return page, i end
    i = i + 1
  end
  return page, nil
end

-- tokens: the OAuth endpoint and the metadata server ------------------------------------------

local function b64url_decode(s)
  s = s:gsub("-", "+"):gsub("_", "/")
  s = s .. string.rep("=", (4 - #s % 4) % 4)
  return ngx.decode_base64(s)
end

local function issue()
  state.issued = state.issued + 1
  local token = "ya29.fake-" .. state.issued
  state.tokens[token] = true
  local e = state.oauth.expires_in
  return { access_token = token, expires_in = state.oauth.expires_in_string and tostring(e) or e,
           token_type = "Bearer" }
end

local function oauth_error(err, description)
  return send(400, { error = err, error_description = description })
end

local function token_endpoint()
  local args = ngx.req.get_post_args()
  local grant = args.grant_type
  if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer" then
    local h, c, sig = (args.assertion or ""):match("^([%w_-]+)%.([%w_-]+)%.([%w_-]+)$")
    local header = h and cjson.decode(b64url_decode(h) or "")
    local claims = c and cjson.decode(b64url_decode(c) or "")
    if not (header and claims and sig) then return oauth_error("invalid_request", "Malformed JWT.") end
    if header.alg ~= "RS256" or header.typ ~= "JWT" then return oauth_error("invalid_grant", "Bad JWT header.") end
    if state.oauth.client_email and claims.iss ~= state.oauth.client_email then
      return oauth_error("invalid_grant", "Invalid JWT: unknown issuer.")
    end
    if type(claims.aud) ~= "string" or not claims.aud:match("/token$") or type(claims.scope) ~= "string"
      or type(claims.iat) ~= "number" or claims.exp ~= claims.iat + 3600 then
      return oauth_error("invalid_grant", "Invalid JWT claims.")
    end
  elseif grant == "refresh_token" then
    local o = state.oauth
    if args.client_id ~= o.client_id or args.client_secret ~= o.client_secret then
      return send(401, { error = "invalid_client", error_description = "The OAuth client was not found." })
    end
    if args.refresh_token ~= o.refresh_token then
      return oauth_error("invalid_grant", "Token has been expired or revoked.")
    end
  else
    return oauth_error("unsupported_grant_type", "Invalid grant_type: " .. tostring(grant))
  end
  return send(200, issue())
end

local function metadata_endpoint()
  if ngx.var.http_metadata_flavor ~= "Google" then
    ngx.status = 403
    ngx.header["Content-Type"] = "text/html"
    ngx.print("Missing required header: Metadata-Flavor")
    return
  end
  return send(200, issue(), { ["Metadata-Flavor"] = "Google" })
end

-- request handling ---------------------------------------------------------------------------

local function route(method, path)
  if path == "/token" then return method == "POST" and "token", nil end
  if path == "/computeMetadata/v1/instance/service-accounts/default/token" then
    return method == "GET" and "metadata", nil
  end
  local rest = path:match("^/v1beta1/(.*)$") or path:match("^/v1/(.*)$") or path:match("^/ui/(.*)$")
    or path:match("^/[%w-]+/v1beta1/(.*)$") or path:match("^/[%w-]+/v1/(.*)$") -- a template with /{region}
  if not rest then return nil end
  local name = rest:match("^(projects/[^/]+/locations/[^/]+/.*operations/[^/:]+):cancel$")
  if name then return method == "POST" and "cancel", name end
  name = rest:match("^(projects/[^/]+/locations/[^/]+/.*operations/[^/:]+):wait$")
  if name then return method == "POST" and "wait", name end
  name = rest:match("^(projects/[^/]+/locations/[^/]+)/operations$")
  if name then return method == "GET" and "list", name end
  name = rest:match("^(projects/[^/]+/locations/[^/]+/.*operations/[^/:]+)$")
  if name then
    return (method == "GET" and "get") or (method == "DELETE" and "delete") or false, name
  end
  return nil
end

-- What each queued fault costs (bytes of the control body that brought it), for LIMITS.fault_bytes.
local fault_cost = setmetatable({}, { __mode = "k" })

local function take_fault(call)
  for i, f in ipairs(state.faults) do
    if (f.match == nil or f.match == "any" or f.match == call) and (f.times or 1) > 0 then
      f.times = (f.times or 1) - 1
      if f.times <= 0 then
        table.remove(state.faults, i)
        state.fault_bytes = state.fault_bytes - (fault_cost[f] or 0)
      end
      return f
    end
  end
end

-- A JSON value nested depth levels deep: {"a":{"a":...1...}} or [[[...1...]]].
local function nested(depth, kind)
  if kind == "array" then return string.rep("[", depth) .. "1" .. string.rep("]", depth) end
  return string.rep('{"a":', depth) .. "1" .. string.rep("}", depth)
end

local INVALID_UTF8 = "\xff\xfe\xc3\x28"

-- The raw text of Google's error envelope, with details[1] given as raw JSON text (when given).
local function envelope(status, message, detail)
  return '{"error":{"code":' .. status .. ',"message":' .. cjson.encode(message) -- bytes >= 0x80 pass as they are
    .. ',"status":"' .. (STATUS[status] or "UNKNOWN") .. '"' .. (detail and ',"details":[' .. detail .. ']' or "")
    .. "}}"
end

-- Writes body chunks while the client reads; gives up after seconds (or when the client is gone).
local function endless(seconds)
  local chunk = string.rep("a", 1024 * 1024)
  ngx.print('{"name":"')
  local stop = ngx.now() + seconds
  while ngx.now() < stop do
    if not ngx.print(chunk) or not ngx.flush(true) then return end
  end
end

-- Applies a fault; returns true when the request has been answered (or dropped).
local function apply_fault(f, call, name)
  if f.delay then ngx.sleep(f.delay) end
  if f.drop == "before" then
    ngx.exit(444)
    return true
  elseif f.drop == "mid" then
    ngx.status = 200
    ngx.header["Content-Type"] = "application/json"
    ngx.header["Content-Length"] = 4096
    ngx.print('{"name": "projects/test-project/locations/us-central1/oper')
    ngx.flush(true)
    ngx.exit(ngx.ERROR)
    return true
  end
  if f.next_page_token then
    if call ~= "list" then return false end
    local token = f.next_page_token
    if type(token) == "table" then -- a list: cycled through, one per answer
      f.turn = (f.turn or 0) % #token + 1
      token = token[f.turn]
    end
    ngx.ctx.next_page_token = token
    return false -- served normally, with the token forced
  end
  -- headers common to every answer below
  local headers = {}
  for k, v in pairs(f.headers or {}) do headers[k] = v end
  if f.retry_after then headers["Retry-After"] = tostring(f.retry_after) end
  if f.header_size then headers["X-Fake-Padding"] = string.rep("p", f.header_size) end
  if f.header_nul then headers["X-Fake-Nul"] = "before\0after" end
  if f.redirect then
    ngx.status = f.status or 302
    headers.Location = f.redirect
    for k, v in pairs(headers) do ngx.header[k] = v end
    ngx.header["Content-Type"] = "text/html"
    ngx.print("<a href=\"" .. f.redirect .. "\">moved</a>")
    return true
  end
  local status = f.status or 200
  local body, ctype = f.body, f.content_type
  -- a 200 body: the operation's real view (or its name alone), with raw text put in its metadata
  local function operation_with(raw)
    local t = (name and state.ops[name]) and view(state.ops[name]) or { name = name }
    t.metadata = t.metadata or {}
    t.metadata.injected = "@INJECTED@"
    return (cjson.encode(t):gsub('"@INJECTED@"', function() return raw end))
  end
  if body then
    ctype = ctype or (f.status and "text/html" or "application/json")
  elseif f.size then
    body = false -- written in pieces below
  elseif f.json_depth then
    local deep = nested(f.json_depth, f.json_kind)
    body = f.status and envelope(status, "Injected failure.", deep) or operation_with(deep)
  elseif f.invalid_utf8 then
    body = f.status and envelope(status, "Injected failure " .. INVALID_UTF8 .. " in the message.")
      or operation_with('"' .. INVALID_UTF8 .. '"')
  elseif f.endless or f.trickle then
    ngx.status = status
    for k, v in pairs(headers) do ngx.header[k] = v end
    ngx.header["Content-Type"] = "application/json"
    if f.endless then
      endless(tonumber(f.endless) or 300)
    else
      for _ = 1, 300 do
        if not ngx.print("{") or not ngx.flush(true) then return true end
        ngx.sleep(f.trickle)
      end
    end
    return true
  elseif f.status then
    gerror(f.status, f.message or "Injected failure.", headers, { reason = f.reason, retry_delay = f.retry_delay })
    return true
  elseif next(headers) then
    ngx.ctx.extra_headers = headers -- served normally, with these headers
    return false
  else
    return false
  end
  ngx.status = status
  for k, v in pairs(headers) do ngx.header[k] = v end
  ngx.header["Content-Type"] = ctype or "application/json"
  if body then
    ngx.print(body)
  else
    -- streamed: each MiB flushed (waiting for the client) before the next, so nginx never holds
    -- more than one chunk of it, whatever the client reads
    local chunk = string.rep(" ", 1024 * 1024)
    local left = f.size
    while left > 0 do
      local n = math.min(left, #chunk)
      if not ngx.print(n == #chunk and chunk or chunk:sub(1, n)) or not ngx.flush(true) then break end
      left = left - n
    end
  end
  return true
end

local function serve(call, name)
  if call == "list" then
    local args = ngx.req.get_uri_args()
    local size = tonumber(args.pageSize or 0)
    if not size or size < 0 or size ~= math.floor(size) then
      return gerror(400, "Invalid pageSize: must be a non-negative integer.")
    end
    size = size == 0 and PAGE_DEFAULT or math.min(size, PAGE_MAX)
    local token = args.pageToken or ""
    local cursor = token == "" and 0 or tonumber(token:match("^c(%d+)$") or "")
    if not cursor and ngx.ctx.next_page_token then cursor = 0 end -- a token a fault made up: from the start
    if not cursor then return gerror(400, "Invalid page token.") end
    local want_done
    if args.filter == "done=true" or args.filter == "done = true" then want_done = true end
    if args.filter == "done=false" or args.filter == "done = false" then want_done = false end
    local page, next_cursor = page_of(name, cursor, size, want_done)
    local body = { operations = page }
    if next_cursor then body.nextPageToken = "c" .. next_cursor end
    if ngx.ctx.next_page_token then body.nextPageToken = ngx.ctx.next_page_token end
    if #page == 0 and not body.nextPageToken then body = OBJ end
    return send(200, body)
  end

  local op = state.ops[name]
  if not op then
    return gerror(404, "The Operation \"" .. name .. "\" was not found.", nil, { reason = "RESOURCE_NOT_FOUND" })
  end
  if call == "get" then
    op.gets = op.gets + 1
    return send(200, view(op))
  elseif call == "delete" then
    state.ops[name] = nil
    op.deleted = true
    return send(200, OBJ)
  elseif call == "cancel" then
    if op.cancel == "unimplemented" then
      return gerror(501, "Operation cancellation is not supported for this operation.")
    end
    op.cancel_requested = true
    op.cancel_at = op.cancel_at or now()
    return send(200, OBJ)
  elseif call == "wait" then
    if op.wait == "unimplemented" then return gerror(501, "Method not implemented.") end
    local timeout = tonumber((ngx.var.arg_timeout or ""):match("^([%d.]+)s$") or 0)
    if timeout <= 0 or timeout > 60 then timeout = 60 end
    settle(op)
    if op.wait == "longpoll" and not op.done then
      if state.virtual then
        -- hold in virtual time: jump to the end of the operation or of the timeout
        local finish = op.done_after and op.created + op.done_after
        state.virtual = (finish and finish < state.virtual + timeout) and finish or state.virtual + timeout
        settle(op)
      else
        local deadline = ngx.now() + timeout
        while not op.done and ngx.now() < deadline do
          -- a cancel that ends the operation later: sleep until then (1,000 long-polls of a load
          -- test cost one wake-up each, not one every 20 ms)
          local stop = op.cancel_at and op.cancel_after and op.cancel == "honour" and op.cancel_at + op.cancel_after
          ngx.sleep(stop and math.max(0.001, math.min(stop, deadline) - ngx.now()) or 0.02)
          settle(op)
        end
      end
    end
    return send(200, view(op))
  end
end

-- Caps on what one control request, or the request log, can make the fake hold (docs/fake.md,
-- "Limits"): a control request past one answers 400 {"error": "..."} naming it, and changes nothing.
local MiB = 1024 * 1024
local LIMITS = {
  create = 200000,        -- operations one POST /_control/operations makes (count)
  operations = 1000000,   -- operations made since the last reset
  log_entries = 100000,   -- requests kept in the log (later ones are counted: stats().log_dropped)
  log_body = 64 * 1024,   -- bytes of one request's body kept in the log (body_truncated beyond)
  log_bytes = 64 * MiB,   -- bytes of request bodies kept in the whole log
  faults = 10000,         -- faults queued
  fault_bytes = 64 * MiB, -- bytes of control bodies the queued faults came in
  size = 64 * MiB,        -- a size fault's body (streamed)
  json_depth = 1000000,   -- a json_depth fault's nesting
  header_size = MiB,      -- a header_size fault's header
  seconds = 3600,         -- delay, hold, endless, trickle
  tokens = 10000,         -- bearer tokens in tokens(list)
  token_length = 4096,    -- bytes of one of them
  clock = 1e11,           -- the virtual clock stays in [0, 1e11] seconds (year 5138)
}
_M.LIMITS = LIMITS

-- Requests in flight per connection (HTTP/2 multiplexing shows as more than one).
local inflight = {}

local function log_request(call, name)
  local conn = tonumber(ngx.var.connection)
  inflight[conn] = (inflight[conn] or 0) + 1
  ngx.ctx.counted = conn
  state.count = state.count + 1
  if not state.conns[conn] then
    state.conns[conn] = true
    state.nconns = state.nconns + 1
  end
  if state.nolog then return end
  if #state.log >= LIMITS.log_entries then -- counted (stats), not kept
    state.log_dropped = state.log_dropped + 1
    return
  end
  -- the body as sent, up to LIMITS.log_body bytes (and LIMITS.log_bytes in the whole log); a cut
  -- one is marked: body_truncated = true, body_size = its length as sent
  local body = ngx.req.get_body_data()
  local size = body and #body or (tonumber(ngx.var.content_length) or 0)
  local keep = math.max(0, math.min(size, LIMITS.log_body, LIMITS.log_bytes - state.log_bytes))
  local truncated = keep < size or (size > 0 and not body) -- not body: nginx kept it in a file
  body = body and (keep < #body and body:sub(1, keep) or body) or ""
  state.log_bytes = state.log_bytes + #body
  local entry = {
    concurrent = inflight[conn],
    method = ngx.req.get_method(),
    path = ngx.var.uri,
    query = ngx.var.args,
    call = call or nil,
    name = name,
    headers = ngx.req.get_headers(200),
    body = body,
    body_truncated = truncated or nil,
    body_size = truncated and size or nil,
    connection = tonumber(ngx.var.connection),
    protocol = ngx.var.server_protocol,
    scheme = ngx.var.scheme,
    time = now(),
  }
  state.log[#state.log + 1] = entry
end


local function is_number(v) return type(v) == "number" and v == v and v > -math.huge and v < math.huge end
local function is_whole(v) return is_number(v) and v == math.floor(v) end

-- Each check returns nil, or the message of a 400.
local function number_in(body, k, lo, hi, whole)
  local v = body[k]
  if v == nil then return nil end
  if not (whole and is_whole or is_number)(v) or v < lo or v > hi then
    return ("%s must be %s from %s to %s, got %s"):format(k, whole and "an integer" or "a number",
      string.format("%.14g", lo), string.format("%.14g", hi), cjson.encode(v) or tostring(v))
  end
end

local function one_of(body, k, kinds, set)
  local v = body[k]
  if v == nil then return nil end
  if set then
    if set[v] then return nil end
    local names = {}
    for name in pairs(set) do names[#names + 1] = '"' .. name .. '"' end
    table.sort(names)
    return ("%s must be one of %s, got %s"):format(k, table.concat(names, ", "), cjson.encode(v) or tostring(v))
  end
  if kinds:find(type(v), 1, true) then return nil end
  return ("%s must be a %s, got %s"):format(k, kinds:gsub("|", " or "), cjson.encode(v) or type(v))
end

local function first(...)
  for i = 1, select("#", ...) do
    local m = select(i, ...)
    if m then return m end
  end
end

local function set(...)
  local t = {}
  for _, v in ipairs { ... } do t[v] = true end
  return t
end

local MATCH = set("cancel", "get", "delete", "list", "wait", "token", "metadata", "other", "any")

local function check_spec(spec)
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
    if not is_whole(spec.count) or spec.count < 1 or spec.count > LIMITS.create then
      return ("count must be an integer from 1 to %d (operations one request makes), got %s")
        :format(LIMITS.create, cjson.encode(spec.count) or tostring(spec.count))
    end
  end
  local n = spec.count or 1
  if state.made + n > LIMITS.operations then
    return ("the fake holds at most %d operations (%d made since the last reset): reset() first")
      :format(LIMITS.operations, state.made)
  end
end

local function check_fault(f)
  if type(f) ~= "table" then return "a fault must be a JSON object" end
  local m = first(
    one_of(f, "match", nil, MATCH), number_in(f, "times", 0, math.huge),
    number_in(f, "delay", 0, LIMITS.seconds), one_of(f, "drop", nil, set("before", "mid")),
    number_in(f, "status", 100, 599, true), one_of(f, "headers", "table"),
    one_of(f, "retry_after", "string|number"), one_of(f, "reason", "string"), one_of(f, "message", "string"),
    one_of(f, "body", "string"), one_of(f, "content_type", "string"),
    number_in(f, "size", 0, LIMITS.size, true), number_in(f, "json_depth", 0, LIMITS.json_depth, true),
    one_of(f, "json_kind", nil, set("array", "object")), one_of(f, "invalid_utf8", "boolean"),
    number_in(f, "header_size", 0, LIMITS.header_size, true), one_of(f, "header_nul", "boolean"),
    f.endless ~= true and number_in(f, "endless", 0, LIMITS.seconds) or nil,
    number_in(f, "trickle", 0, LIMITS.seconds), one_of(f, "redirect", "string"),
    one_of(f, "next_page_token", "string|table"))
  if m then return m end
  for k, v in pairs(f.headers or {}) do
    local ok = type(k) == "string" and (type(v) == "string" or type(v) == "number" or type(v) == "table")
    for _, one in ipairs(type(v) == "table" and v or {}) do ok = ok and type(one) == "string" end
    if not ok then return "headers must map names to strings (or lists of strings)" end
  end
  if type(f.next_page_token) == "table" then
    if #f.next_page_token == 0 then return "next_page_token must be a string or a list of strings" end
    for _, t in ipairs(f.next_page_token) do
      if type(t) ~= "string" then return "next_page_token must be a string or a list of strings" end
    end
  end
end

local function check_clock(body)
  if type(body) ~= "table" then return "a clock body must be a JSON object" end
  local m = first(number_in(body, "virtual", 0, LIMITS.clock), number_in(body, "advance", -LIMITS.clock, LIMITS.clock),
    one_of(body, "real", "boolean"))
  if m then return m end
  local t = body.virtual or (not body.real and state.virtual)
  if body.advance and t and (t + body.advance < 0 or t + body.advance > LIMITS.clock) then
    return ("advance would take the virtual clock out of [0, %.14g] seconds"):format(LIMITS.clock)
  end
end

local OAUTH = { client_id = "string", client_secret = "string", refresh_token = "string", client_email = "string",
                expires_in = "string|number|boolean", expires_in_string = "boolean" }

local function check_oauth(body)
  if type(body) ~= "table" then return "oauth settings must be a JSON object" end
  for k in pairs(body) do
    if not OAUTH[k] then return "unknown oauth setting " .. tostring(k) end
    local m = one_of(body, k, OAUTH[k])
    if m then return m end
  end
end

local function check_tokens(body)
  if type(body) ~= "table" or next(body) ~= nil and #body == 0 then return "tokens must be a list of strings" end
  if #body > LIMITS.tokens then return ("at most %d tokens, got %d"):format(LIMITS.tokens, #body) end
  for _, t in ipairs(body) do
    if type(t) ~= "string" or #t == 0 or #t > LIMITS.token_length then
      return ("each token must be a string of 1 to %d bytes"):format(LIMITS.token_length)
    end
  end
end

-- project_number: digits; project_id: a project ID (false: back to the default)
local PROJECT = { project_number = { "^%d+$", "digits" }, project_id = { "^[a-z][a-z0-9-]*$", "a project ID" } }

local function check_config(body)
  if type(body) ~= "table" then return "config must be a JSON object" end
  local m = first(one_of(body, "nolog", "boolean"), number_in(body, "hold", 0, LIMITS.seconds))
  if m then return m end
  for _, k in ipairs { "project_number", "project_id" } do
    local v, shape = body[k], PROJECT[k]
    if v ~= nil and v ~= false and not (type(v) == "string" and v:match(shape[1]) and #v <= 30) then
      return k .. " must be " .. shape[2]
    end
  end
end

-- The control API's token, when nginx was started with one (vertexops.testing: start{control_token}).
local CONTROL_TOKEN = os.getenv("VERTEXOPS_FAKE_CONTROL_TOKEN")
if CONTROL_TOKEN == "" then CONTROL_TOKEN = nil end

local function control(path)
  if CONTROL_TOKEN and ngx.var.http_x_fake_control_token ~= CONTROL_TOKEN then
    return send(401, { error = "this fake's control API needs its token in the X-Fake-Control-Token header" })
  end
  local method = ngx.req.get_method()
  local raw = ngx.req.get_body_data()
  if not raw and ngx.req.get_body_file() then
    return send(400, { error = "control request body too large" })
  end
  local body = nil
  if raw and raw:match("%S") then
    local err
    body, err = cjson.decode(raw)
    if body == nil then return send(400, { error = "the body is not JSON: " .. tostring(err) }) end
  end
  local function refuse(message) return send(400, { error = message }) end
  if path == "ping" then
    return send(200, { ok = true })
  elseif path == "reset" then
    _M.reset()
    return send(200, { ok = true })
  elseif path == "operations" and method == "POST" then
    body = body or {}
    local m = check_spec(body)
    if m then return refuse(m) end
    state.made = state.made + (body.count or 1)
    if body.count then return send(200, create_many(body)) end
    return send(200, view(create(body)))
  elseif path == "faults" and method == "POST" then
    local list = type(body) == "table" and body[1] ~= nil and body or { body }
    if body == nil then list = {} end
    for _, f in ipairs(list) do
      local m = check_fault(f)
      if m then return refuse(m) end
    end
    if #state.faults + #list > LIMITS.faults then
      return refuse(("at most %d faults queued (%d are): clear_faults() or reset() first"):format(LIMITS.faults, #state.faults))
    end
    local cost = #(raw or "")
    if state.fault_bytes + cost > LIMITS.fault_bytes then
      return refuse(("queued faults hold at most %d bytes of control bodies: clear_faults() or reset() first")
        :format(LIMITS.fault_bytes))
    end
    state.fault_bytes = state.fault_bytes + cost
    for _, f in ipairs(list) do
      fault_cost[f] = cost / #list
      state.faults[#state.faults + 1] = f
    end
    return send(200, { ok = true })
  elseif path == "faults" and method == "DELETE" then
    state.faults, state.fault_bytes = {}, 0
    return send(200, { ok = true })
  elseif path == "clock" and method == "POST" then
    -- {virtual = t}: switch to a virtual clock at t; {advance = s}: move it; {real = true}: back
    body = body or {}
    local m = check_clock(body)
    if m then return refuse(m) end
    if body.real then state.virtual = nil end
    if body.virtual then state.virtual = body.virtual end
    if body.advance and state.virtual then state.virtual = state.virtual + body.advance end
    return send(200, { now = now() })
  elseif path == "config" and method == "POST" then
    body = body or {}
    local m = check_config(body)
    if m then return refuse(m) end
    if body.nolog ~= nil then state.nolog = body.nolog end
    if body.hold ~= nil then state.hold = body.hold > 0 and body.hold or nil end
    for k in pairs(PROJECT) do
      if body[k] ~= nil then state[k] = body[k] or nil end
    end
    return send(200, { ok = true })
  elseif path == "stats" then
    return send(200, { requests = state.count, connections = state.nconns, log_dropped = state.log_dropped })
  elseif path == "reset_log" then
    state.log, state.count, state.conns, state.nconns = {}, 0, {}, 0
    state.log_bytes, state.log_dropped = 0, 0
    return send(200, { ok = true })
  elseif path == "oauth" and method == "POST" then
    body = body or {}
    local m = check_oauth(body)
    if m then return refuse(m) end
    for k, v in pairs(body) do state.oauth[k] = v end
    return send(200, { ok = true })
  elseif path == "log" then
    return send(200, #state.log == 0 and "[]" or state.log)
  elseif path == "tokens" and method == "POST" then
    body = body or {}
    local m = check_tokens(body)
    if m then return refuse(m) end
    state.tokens = {}
    for _, t in ipairs(body) do state.tokens[t] = true end
    return send(200, { ok = true })
  end
  return send(404, { error = "no such control" })
end

-- log phase: the request is over
function _M.done()
  local conn = ngx.ctx.counted
  if conn then inflight[conn] = inflight[conn] - 1 end
end

function _M.handle()
  ngx.req.read_body() -- HTTP/2 needs the body read, or the client sees a stream reset
  local path = ngx.var.uri
  local ctl = path:match("^/_control/(.*)$")
  if ctl then return control(ctl) end

  local call, name = route(ngx.req.get_method(), path)
  log_request(call, name) -- the name as the request gave it
  name = numbered(name)
  local f = take_fault(call or "other")
  if f and apply_fault(f, call, name) then return end
  if state.hold then ngx.sleep(state.hold) end

  if call == nil then
    return gerror(404, "The requested URL " .. path .. " was not found on this server.")
  elseif call == false then
    return gerror(405, "Method not allowed.")
  elseif call == "token" then
    return token_endpoint()
  elseif call == "metadata" then
    return metadata_endpoint()
  end
  local auth = ngx.var.http_authorization or ""
  local token = auth:match("^Bearer (.+)$")
  if not token or not state.tokens[token] then
    return gerror(401, "Request had invalid authentication credentials. Expected OAuth 2 access "
      .. "token, login cookie or other valid authentication credential.", nil, { reason = "ACCESS_TOKEN_TYPE_UNSUPPORTED" })
  end
  return serve(call, name)
end

return _M
