-- vertexops.testing.log: the request log (every request but control ones, as /_control/log shows
-- it) and the counters stats() reads: requests, connections, requests in flight per connection.
local check = require "vertexops.testing.check"
local state = require "vertexops.testing.state"
local tokens = require "vertexops.testing.tokens"

local ngx = ngx
local LIMITS = check.LIMITS

local M = {}

-- Requests in flight per connection (HTTP/2 multiplexing shows as more than one).
local inflight = {}

-- Counts the request on its connection; returns the number of the connection.
local function count(conn)
  inflight[conn] = (inflight[conn] or 0) + 1
  ngx.ctx.counted = conn
  state.count = state.count + 1
  if not state.conns[conn] then
    state.conns[conn] = true
    state.nconns = state.nconns + 1
  end
end

-- The body as sent, up to LIMITS.log_body bytes (and LIMITS.log_bytes in the whole log); a cut
-- one is marked: truncated = true, size = its length as sent.
local function kept_body()
  local body = ngx.req.get_body_data()
  local size = body and #body or (tonumber(ngx.var.content_length) or 0)
  local keep = math.max(0, math.min(size, LIMITS.log_body, LIMITS.log_bytes - state.log_bytes))
  local truncated = keep < size or (size > 0 and not body) -- not body: nginx kept it in a file
  body = body and (keep < #body and body:sub(1, keep) or body) or ""
  state.log_bytes = state.log_bytes + #body
  return body, truncated, size
end

--- Logs the request (counted always; kept unless config{nolog} or past LIMITS.log_entries).
--- call and name: what server.lua's routing made of it (name as the request gave it).
-- The subject of the client certificate the request's connection presented (start{mtls = true}), or nil.
local function client_subject()
  if ngx.var.https ~= "on" then return nil end
  local dn = ngx.var.ssl_client_s_dn
  if dn == nil or dn == "" then return nil end
  return dn
end

function M.request(call, name)
  local conn = tonumber(ngx.var.connection)
  count(conn)
  if state.nolog then return end
  if #state.log >= LIMITS.log_entries then -- counted (stats), not kept
    state.log_dropped = state.log_dropped + 1
    return
  end
  local body, truncated, size = kept_body()
  -- an API key is logged as what the server made of it (api_key: "accepted" or "refused"), its
  -- header as "(redacted)": the log (and /_control/log) never holds the key itself
  local headers = ngx.req.get_headers(200)
  local api_key = tokens.api_key(headers)
  if api_key then headers["x-goog-api-key"] = "(redacted)" end
  local entry = {
    concurrent = inflight[conn],
    method = ngx.req.get_method(),
    path = ngx.var.uri,
    query = ngx.var.args,
    call = call or nil,
    name = name,
    headers = headers,
    api_key = api_key,
    body = body,
    body_truncated = truncated or nil,
    body_size = truncated and size or nil,
    connection = conn,
    protocol = ngx.var.server_protocol,
    scheme = ngx.var.scheme,
    client_cert = client_subject(),
    time = state.now(),
  }
  state.log[#state.log + 1] = entry
  ngx.ctx.entry = entry
end

--- The request was refused by the quota (quota.lua): its log entry says quota_exceeded = true,
--- and stats() counts it (logged or not).
function M.exceeded()
  state.exceeded = state.exceeded + 1
  local entry = ngx.ctx.entry
  if entry then entry.quota_exceeded = true end
end

--- The log phase: the request is over.
function M.done()
  local conn = ngx.ctx.counted
  if conn then inflight[conn] = inflight[conn] - 1 end
end

--- {requests, connections, log_dropped, quota_exceeded} since the start or the last reset / clear.
function M.stats()
  return { requests = state.count, connections = state.nconns, log_dropped = state.log_dropped,
           quota_exceeded = state.exceeded }
end

--- Empties the log and the counters.
function M.clear()
  state.log, state.count, state.conns, state.nconns = {}, 0, {}, 0
  state.log_bytes, state.log_dropped, state.exceeded = 0, 0, 0
end

return M
