-- vertexops.rate: the client-side request rate (option `rate = {requests = n, per = seconds}`):
-- at most n requests in any `per` seconds for one project and location, the key of Google's
-- quotas ("requests per minute per region"). Every request of a client asks for a permit here
-- before it is sent (Client:_run, lua/vertexops/client.lua: every attempt, retries included, of
-- every call, cancel_many and cancel_all too, on every transport).
--
-- The window slides, as the fake's quota counts (lua/vertexops/testing/quota.lua): a request may
-- go when fewer than n went in the `per` seconds before it, on the options' clock (the injected
-- one in specs: the virtual clock). Each key keeps a ring of the times of the last n requests it
-- let go. A request that must wait sleeps with host.sleep_for: under client:start() that hands
-- control back to the caller of poll() (a request waiting for a permit is simply not sent yet);
-- a permit that would come at or after the call's deadline is a TimeoutError, nothing sent.
local core = require "vertexops.core"
local host = require "vertexops.host"

local ipairs, type = ipairs, type
local string_format = string.format
local raise = require("vertexops.errors").raise

local M = {}

-- The window's default length (seconds), from the option schema (csrc/options.c: rate.per).
local function schema_per()
  for _, e in ipairs(core.OPTIONS) do
    if e.name == "rate" then
      for _, f in ipairs(e.fields) do
        if f.name == "per" then return f.default end
      end
    end
  end
end
M.PER = schema_per()

--- check(r): a merged `rate` table names its requests (ValueError before any I/O: a call's
--- {per = s} merges over its client's rate, so the check waits for the merge).
---@param r vertexops.Rate|false|nil
function M.check(r)
  if type(r) == "table" and r.requests == nil then
    raise("ValueError", "option 'rate' needs rate.requests (how many requests in rate.per seconds)")
  end
end

-- The project and location a built request is under: its URL's /projects/P/locations/L (a
-- request without them, none: it is not paced). Kept on the request (built requests are cached).
local function key_of(req)
  local key = req.rate_key
  if key == nil then
    local project, location = req.url:match("/projects/([^/?]+)/locations/([^/?:]+)")
    key = project and project .. "/" .. location or false
    req.rate_key = key
  end
  return key
end

-- The windows of a client, by requests/per (calls with another rate count on their own), then
-- by key. (Their times are on the calls' clock: a client's calls share one.)
local function windows(client, r)
  local by_rate = client.rate_windows
  if not by_rate then
    by_rate = {}
    client.rate_windows = by_rate
  end
  local id = string_format("%d/%.17g", r.requests, r.per or M.PER)
  local w = by_rate[id]
  if not w then
    w = {}
    by_rate[id] = w
  end
  return w
end

--- permit(client, o, req, deadline) -> nil when req may be sent now (it is counted), or a
--- TimeoutError when its permit would come at or after deadline (nothing counted). Sleeps (or,
--- under client:start(), yields) until then.
---@param client vertexops.Client
---@param o vertexops.Options
---@param req table a built request
---@param deadline number absolute, on o's clock
---@return vertexops.Error?
function M.permit(client, o, req, deadline)
  local r = o.rate
  if not r then return nil end
  local key = key_of(req)
  if not key then return nil end
  local clock = o.clock or core.clock
  local n, per = r.requests, r.per or M.PER
  local by_key = windows(client, r)
  local w = by_key[key]
  if not w then
    w = { n = 0, head = 1 } -- times of the requests let go: n of them, the oldest at head
    by_key[key] = w
  end
  while true do
    local now = clock()
    if w.n < n then
      w[(w.head + w.n - 1) % n + 1] = now
      w.n = w.n + 1
      return nil
    end
    local free = w[w.head] + per -- when the oldest leaves the window (as the fake computes it)
    if free <= now then
      w[w.head] = now
      w.head = w.head % n + 1
      return nil
    end
    if free >= deadline then
      return core.error({ "TimeoutError" }, string_format("%s did not finish within the call's timeout: option "
        .. "'rate' (%d requests per %g s for %s) lets its next request go only after it", req.call, n, per, key))
    end
    host.sleep_for(o, free - now)
  end
end

return M
