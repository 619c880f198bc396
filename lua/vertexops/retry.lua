-- vertexops.retry: where a retry is decided -- which failures each kind of call retries (the
-- Workflows connector's rules), the backoff, Retry-After and RetryInfo. Client:_run (lua/vertexops/client.lua)
-- asks; nothing here sleeps or sends.
local core = require "vertexops.core"

local rawget, type, tonumber = rawget, type, tonumber
local math_min, math_max, math_floor = math.min, math.max, math.floor
local os_time = os.time
local is, is_type = core.is, core.is_type

local M = {}

-- What each kind of call retries (Workflows: GET idempotent, everything else not).
local RETRY_ON = {
  GET = { codes = { [429] = true, [502] = true, [503] = true, [504] = true },
          tags = { "ConnectionError", "ConnectionFailedError", "TimeoutError" } },
  POST = { codes = { [429] = true, [503] = true }, tags = { "ConnectionFailedError" } },
}
RETRY_ON.DELETE = RETRY_ON.POST
-- Token endpoints: like GET, and every 5xx.
RETRY_ON.TOKEN = { codes = RETRY_ON.GET.codes, tags = RETRY_ON.GET.tags, all5xx = true }
M.RETRY_ON = RETRY_ON
-- The statuses of a proxy's answer to CONNECT that are worth another try (the error's proxy_status).
local PROXY_TRANSIENT = { [429] = true, [502] = true, [503] = true, [504] = true }
M.PROXY_TRANSIENT = PROXY_TRANSIENT

-- The delay before attempt n + 1 (n >= 1): initial * multiplier^(n-1), capped.
---@param p vertexops.RetryPolicy with every field filled (options.policy)
---@param n integer
---@return number seconds
local function backoff(p, n)
  return math_min(p.initial_delay * p.multiplier ^ (n - 1), p.max_delay)
end
M.backoff = backoff

-- Retry-After: delta seconds or an HTTP date. Returns seconds, or nil when absent or unreadable.
local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6,
                 Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12 }
--- Days since 1970-01-01 of the civil date y-m-d (Howard Hinnant's days_from_civil, proleptic
--- Gregorian): for the dates of Retry-After here and of STS's expireTime (auth/sts.lua).
local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = math_floor(y / 400)
  local yoe = y - era * 400
  local doy = math_floor((153 * (m + (m > 2 and -3 or 9)) + 2) / 5) + d - 1
  local doe = yoe * 365 + math_floor(yoe / 4) - math_floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end
M.days_from_civil = days_from_civil
local function header_delay(err, now)
  local h = type(err.headers) == "table" and err.headers["retry-after"]
  if type(h) ~= "string" then return nil end
  local secs = h:match("^%s*(%d+)%s*$")
  if secs then return tonumber(secs) end
  local d, mon, y, hh, mm, ss = h:match("^%a+, (%d+) (%a+) (%d+) (%d+):(%d+):(%d+) GMT$")
  if not (d and MONTHS[mon]) then return nil end
  local t = days_from_civil(tonumber(y), MONTHS[mon], tonumber(d)) * 86400
    + tonumber(hh) * 3600 + tonumber(mm) * 60 + tonumber(ss)
  return math_max(0, t - (now or os_time()))
end

-- A google.protobuf.Duration as JSON: "1.5s", "30s", "0.000000001s" (never negative here), or
-- {seconds = n, nanos = n} from another encoder. Seconds, or nil when unreadable.
local function duration(v)
  if type(v) == "string" then
    local whole, frac = v:match("^(%d+)(%.?%d*)s$")
    if not whole or #v > 40 or frac == "." then return nil end
    return tonumber(whole .. (frac ~= "" and frac or ""))
  elseif type(v) == "table" then
    local s, n = rawget(v, "seconds"), rawget(v, "nanos")
    s = type(s) == "string" and s:match("^%d+$") and tonumber(s) or s
    if type(s) ~= "number" or s < 0 or s ~= s then return nil end
    if type(n) == "number" and n >= 0 and n < 1e9 then s = s + n / 1e9 end
    return s
  end
end
M.duration = duration

-- google.rpc.RetryInfo.retryDelay among the error's details (core.classify decodes them). The
-- detail's @type names it as the ErrorInfo's does (core.is_type, csrc/response.c): the last
-- segment of the type URL is exactly "google.rpc.RetryInfo".
local function detail_delay(err)
  local details = err.details
  if type(details) ~= "table" then return nil end
  for i = 1, 64 do
    local d = rawget(details, i)
    if d == nil then break end
    local t = type(d) == "table" and rawget(d, "@type")
    if is_type(t, "google.rpc.RetryInfo") then
      return duration(rawget(d, "retryDelay"))
    end
  end
end

-- Seconds the server asked us to wait before retrying: Retry-After (delta seconds or an HTTP
-- date) or RetryInfo.retryDelay, the larger when both are given; nil when neither is readable.
-- (The caller still bounds the wait by the call's deadline.)
---@param err vertexops.Error
---@param now? number seconds since the epoch (default os.time())
---@return number? seconds
local function retry_after(err, now)
  if type(err) ~= "table" then return nil end
  local a, b = header_delay(err, now), detail_delay(err)
  if a and b then return math_max(a, b) end
  return a or b
end
M.retry_after = retry_after

--- Whether a failure of a call of this kind is retried.
---@param method "GET"|"POST"|"DELETE"|"TOKEN" the rules: the request's method, "GET" while waiting
---@param err vertexops.Error
---@return boolean
function M.retryable(method, err)
  local rule = RETRY_ON[method]
  if err.certificate == true then return false end -- a failed certificate verification stays failed
  -- a proxy that refused the tunnel: retried only when it says it is busy or its way on failed
  -- (429, 502, 503, 504), never for a refusal (401, 403, 407: credentials or rules stay as they are)
  local ps = err.proxy_status
  if ps ~= nil and not PROXY_TRANSIENT[ps] then return false end
  if err.code and is(err, "HttpError") then
    return rule.codes[err.code] == true or (rule.all5xx == true and err.code >= 500 and err.code <= 599)
  end
  for i = 1, #rule.tags do
    if is(err, rule.tags[i]) then return true end
  end
  return false
end

return M
