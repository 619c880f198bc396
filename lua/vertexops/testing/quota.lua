-- vertexops.testing.quota: a request quota like Google's, per project and region (Vertex's
-- "resource management requests per minute per region"): at most `requests` of Vertex's calls
-- (cancel, get, delete, list, wait) accepted in any `per` seconds for one project and location,
-- counted on the server's clock (state.now(): the virtual clock as well as the real one). Off by
-- default; set by POST /_control/quota (vertexops.testing: server:quota{...}, start{quota = ...}).
--
-- Past it a call is answered as Google answers: 429 RESOURCE_EXHAUSTED whose details are an
-- ErrorInfo (reason RATE_LIMIT_EXCEEDED, the quota's metric, limit and location), a QuotaFailure
-- (the violation: the consumer project) and a RetryInfo whose retryDelay is the time until the
-- window frees a request. A refused request is not counted against the quota (it used none).
-- The window slides: the times of the requests accepted in the last `per` seconds, per key, in a
-- ring of at most `requests` entries.
local check = require "vertexops.testing.check"
local reply = require "vertexops.testing.reply"
local state = require "vertexops.testing.state"

local number_in, one_of, first = check.number_in, check.one_of, check.first

local M = {}

-- What the quota bounds: requests per window, at most this many (each a number held per key).
M.MAX_REQUESTS = 1000000
M.DEFAULT_PER = 60

-- The calls the quota counts: Vertex's methods on operations (not the token endpoints).
M.COUNTED = { cancel = true, get = true, delete = true, list = true, wait = true }

--- A quota body's fields: nil, or the message of a 400. {requests = n, per = seconds} sets it,
--- {off = true} takes it away.
function M.check(body)
  if type(body) ~= "table" then return "a quota must be a JSON object" end
  local m = first(one_of(body, "off", "boolean"), number_in(body, "requests", 1, M.MAX_REQUESTS, true),
    number_in(body, "per", 0.001, check.LIMITS.seconds * 24))
  if m then return m end
  if not body.off and body.requests == nil then return "a quota needs requests (or off = true)" end
  for k in pairs(body) do
    if k ~= "off" and k ~= "requests" and k ~= "per" then return "unknown quota field " .. tostring(k) end
  end
end

--- Sets the quota (a checked body); every window starts empty. Returns the quota now in force.
function M.set(body)
  if body.off then
    state.quota = nil
  else
    state.quota = { requests = body.requests, per = body.per or M.DEFAULT_PER, windows = {}, exceeded = 0 }
  end
  return M.show()
end

--- The quota in force: {requests, per, exceeded} (exceeded: calls refused since it was set), or {off = true}.
function M.show()
  local q = state.quota
  if not q then return { off = true } end
  return { requests = q.requests, per = q.per, exceeded = q.exceeded }
end

-- The project and location a call's name is under (numbered: model.numbered's form).
local function key_of(name)
  local project, location = (name or ""):match("^projects/([^/]+)/locations/([^/]+)")
  return project, location
end

--- Asks the quota for one call on name (as model.numbered made it). Returns true when it is
--- accepted (and counts it); else answers the 429 and returns false.
function M.admit(call, name)
  local q = state.quota
  if not q or not M.COUNTED[call] then return true end
  local project, location = key_of(name)
  if not project then return true end
  local key = project .. "/" .. location
  local w = q.windows[key]
  if not w then
    w = { n = 0, head = 1 } -- ring of accepted times: n of them, the oldest at head
    q.windows[key] = w
  end
  local now = state.now()
  if w.n < q.requests then
    w[(w.head + w.n - 1) % q.requests + 1] = now
    w.n = w.n + 1
    return true
  end
  local oldest = w[w.head]
  if oldest + q.per <= now then -- the oldest left the window: its slot is this request's
    w[w.head] = now
    w.head = w.head % q.requests + 1
    return true
  end
  q.exceeded = q.exceeded + 1
  local wait = oldest + q.per - now
  local consumer = "projects/" .. project
  reply.gerror(429, ("Quota exceeded for quota metric 'Resource management (CRUD) requests' and limit "
    .. "'Resource management (CRUD) requests per minute per region' of service 'aiplatform.googleapis.com' "
    .. "for consumer '%s'."):format(consumer), nil, {
    reason = "RATE_LIMIT_EXCEEDED", domain = "googleapis.com",
    metadata = {
      service = "aiplatform.googleapis.com", consumer = consumer, quota_location = location,
      quota_metric = "aiplatform.googleapis.com/resource_management_requests",
      quota_limit = "ResourceManagementRequestsPerMinutePerProjectPerRegion",
      quota_limit_value = tostring(q.requests),
    },
    violation = { subject = consumer, description = ("Quota exceeded: at most %d requests per %.14g s for %s "
      .. "in %s."):format(q.requests, q.per, consumer, location) },
    -- a Duration as Google writes one (seconds, decimals), rounded up to the millisecond: never early
    retry_delay = (("%.3f"):format(math.max(math.ceil(wait * 1000) / 1000, 0.001)):gsub("%.?0+$", "")) .. "s",
  })
  return false
end

return M
