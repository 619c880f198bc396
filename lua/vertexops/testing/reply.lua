-- vertexops.testing.reply: how the fake answers: a JSON body, Google's error envelope (as a table
-- or as raw text with hostile details), the status names of google.rpc.Code.
local cjson = require("cjson.safe").new()
local state = require "vertexops.testing.state"

local ngx = ngx
local M = {}

M.STATUS = {
  [400] = "INVALID_ARGUMENT", [401] = "UNAUTHENTICATED", [403] = "PERMISSION_DENIED",
  [404] = "NOT_FOUND", [409] = "ABORTED", [429] = "RESOURCE_EXHAUSTED", [499] = "CANCELLED",
  [500] = "INTERNAL", [501] = "UNIMPLEMENTED", [503] = "UNAVAILABLE", [504] = "DEADLINE_EXCEEDED",
}
local STATUS = M.STATUS

M.OBJ = {} -- cjson encodes an empty table as {}

--- v as JSON text the way Google writes it: a '/' as it is (cjson writes it escaped, "\/", and has
--- no switch for it here; every "\/" of its text is such a '/': a backslash is written "\\").
function M.json(v)
  return (cjson.encode(v):gsub("\\/", "/"))
end

--- Answers status with body (a table, encoded; or text, sent as it is) as JSON, with headers
--- (else those a fault set for this request: ngx.ctx.extra_headers).
function M.send(status, body, headers)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json; charset=UTF-8"
  for k, v in pairs(headers or ngx.ctx.extra_headers or {}) do ngx.header[k] = v end
  ngx.print(type(body) == "string" and body or M.json(body))
end

--- Sets the status and the headers of an answer whose body the caller writes (a fault's).
function M.start(status, headers, content_type)
  ngx.status = status
  for k, v in pairs(headers) do ngx.header[k] = v end
  ngx.header["Content-Type"] = content_type
end

-- Google's error envelope. Like Google's front ends, every error carries details: an ErrorInfo
-- (reason, domain, metadata); a 429 a QuotaFailure too; a RetryInfo when extra.retry_delay is given
-- (a Duration string such as "1.5s", sent as given). extra.reason overrides the ErrorInfo reason,
-- extra.domain its domain, extra.metadata its metadata; extra.violation the QuotaFailure's (quota.lua).
function M.gerror(status, message, headers, extra)
  extra = extra or {}
  local details = { {
    ["@type"] = "type.googleapis.com/google.rpc.ErrorInfo",
    reason = extra.reason or STATUS[status] or "UNKNOWN",
    domain = extra.domain or "aiplatform.googleapis.com",
    metadata = extra.metadata or { service = "aiplatform.googleapis.com", method = extra.method },
  } }
  if status == 429 then
    details[#details + 1] = {
      ["@type"] = "type.googleapis.com/google.rpc.QuotaFailure",
      violations = { extra.violation or { subject = "project:test-project",
                       description = "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests." } },
    }
  end
  if extra.retry_delay then
    details[#details + 1] = { ["@type"] = "type.googleapis.com/google.rpc.RetryInfo", retryDelay = extra.retry_delay }
  end
  M.send(status, {
    error = { code = status, message = message, status = STATUS[status] or "UNKNOWN", details = details },
  }, headers)
end

--- The raw text of Google's error envelope, with details[1] given as raw JSON text (when given):
--- for bodies a table cannot hold (nesting past cjson's depth, bytes that are not UTF-8).
function M.envelope(status, message, detail)
  return '{"error":{"code":' .. status .. ',"message":' .. M.json(message) -- bytes >= 0x80 pass as they are
    .. ',"status":"' .. (STATUS[status] or "UNKNOWN") .. '"' .. (detail and ',"details":[' .. detail .. ']' or "")
    .. "}}"
end

--- A time of the server's clock as Google's JSON writes it (RFC 3339, UTC, milliseconds).
function M.rfc3339(t)
  return os.date("!%Y-%m-%dT%H:%M:%S", math.floor(t)) .. string.format(".%03dZ", (t % 1) * 1000)
end

--- A call on one resource of state[store] (ops, jobs), by the name the route took from the path:
--- answer(resource, name), or Google's 404 naming the kind ("Operation", "Job") when there is none.
function M.on_found(store, kind, answer)
  return function(name)
    local found = state[store][name]
    if not found then
      return M.gerror(404, "The " .. kind .. " \"" .. name .. "\" was not found.", nil, { reason = "RESOURCE_NOT_FOUND" })
    end
    return answer(found, name)
  end
end

-- Pages of a list (AIP-158): pageSize 0 or absent is PAGE_DEFAULT, a larger one than PAGE_MAX is
-- PAGE_MAX; the page token is a cursor.
M.PAGE_DEFAULT, M.PAGE_MAX = 50, 1000

--- The page size a list request asks for (args: its query), or nil when pageSize is not a
--- non-negative integer (the caller answers Google's 400).
function M.page_size(args)
  local size = tonumber(args.pageSize or 0)
  if not size or size < 0 or size ~= math.floor(size) then return nil end
  return size == 0 and M.PAGE_DEFAULT or math.min(size, M.PAGE_MAX)
end

--- One page of a list of n items from cursor on: matching(k) is the k-th item's view, or nil when
--- the list leaves it out. Returns the page and the next page's cursor (nil at the end): there is
--- a next page only when one more item matches (the cursor stops just before it, so the next page
--- does not look again at what this one skipped).
function M.page(n, cursor, size, matching)
  local i, page = cursor, {}
  while i < n and #page < size do
    i = i + 1
    page[#page + 1] = matching(i)
  end
  while i < n do
    if matching(i + 1) then return page, i end
    i = i + 1
  end
  return page, nil
end

return M
