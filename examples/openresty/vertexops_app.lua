-- The handlers of examples/openresty/nginx.conf (install next to it, e.g. /etc/nginx/lua/).
local vertexops = require "vertexops"
local hooks = require "vertexops.hooks"
local metrics = require "vertexops.metrics"
local cjson = require "cjson.safe"

local ngx = ngx
local _M = {}

-- One recorder per worker, all counting into one lua_shared_dict (lua_shared_dict vertexops_metrics).
local recorder
local function get_metrics()
  if not recorder then recorder = metrics.new { shared_dict = "vertexops_metrics" } end
  return recorder
end

-- One client per nginx worker: its token cache is shared by every request the worker serves.
local client
local function get_client()
  if not client then
    client = vertexops.client {
      ca_file = os.getenv("VERTEXOPS_CA_FILE"), -- only for a test server with its own certificate
      timeout = 600,
      shared_dict = "vertexops", -- the workers share one token (lua_shared_dict vertexops)
      -- Idle connections kept per worker: as many as calls run at once, since each call in flight
      -- (a :wait long-poll above all) holds one; past it connections are closed after use.
      pool_size = 1024,
      hooks = get_metrics():hooks(), -- every call, attempt, retry and token fetch is counted
    }
  end
  return client
end

local function reply(status, doc)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode(doc))
end

-- GET /cancel?name=projects/P/locations/L/operations/ID[&strategy=auto|server|poll][&transport=cosocket|thread]
function _M.cancel()
  local name = ngx.var.arg_name
  if not name then return reply(400, { error = "name is required" }) end
  local waiting = ngx.shared.vertexops
  waiting:incr("waiting", 1, 0)
  local c = get_client()
  local strategy, transport = ngx.var.arg_strategy, ngx.var.arg_transport
  -- W3C trace context: the caller's traceparent (and tracestate) go on with every request to
  -- Vertex AI (a malformed one is dropped: as an option it would be a ValueError)
  local tp, ts = ngx.var.http_traceparent, ngx.var.http_tracestate
  if not hooks.valid_traceparent(tp) then tp, ts = nil, nil end
  if ts and not hooks.valid_tracestate(ts) then ts = nil end
  -- (no call options when none are asked for: the client's own, merged once, are used)
  local opts = (strategy or transport or tp) and { strategy = strategy, transport = transport, traceparent = tp,
    tracestate = ts } or nil
  local ok, op, cancelled = pcall(c.cancel_and_wait, c, name, nil, opts)
  waiting:incr("waiting", -1, 0)
  if not ok then
    local err = op
    return reply(vertexops.is(err, "HttpError") and err.code or 502,
      { error = { tags = err.tags, message = err.message } })
  end
  reply(200, { operation = op, cancelled = cancelled })
end

-- GET /metrics: the Prometheus text exposition format
function _M.metrics()
  ngx.header["Content-Type"] = metrics.CONTENT_TYPE
  ngx.print(get_metrics():render())
end

-- GET /status
function _M.status()
  reply(200, { waiting = ngx.shared.vertexops:get("waiting") or 0 })
end

return _M
