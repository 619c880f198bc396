-- vertexops.transport.cosocket: one HTTP/1.1 exchange over an nginx cosocket (ngx.socket.tcp), the transport
-- inside nginx phases (option transport = "cosocket"). The wire is C's: core.h1_request composes
-- the request, core.h1() parses the answer strictly, and the parser's classify is core.classify,
-- the function libcurl's path ends in -- so both transports return the same results and errors.
--
-- exchange(ngx, o, req, token) -> true, decoded[, headers] | false, err  (as handle:call)
--   req: a built request (core.build) with timeout / connect_timeout filled in by Client:_run;
--   o: the call's options (pool_size, pool_backlog, keepalive_timeout).
-- Connections are pooled by nginx per worker, one pool per scheme + host + port; one goes back
-- to its pool (setkeepalive) only after a whole answer the parser allows to keep, never after
-- an error or a partial read. Verification is always on, against lua_ssl_trusted_certificate;
-- the ca_file option does not apply (nginx has one trust store per http block). A host name
-- needs an nginx `resolver` directive; `localhost` is connected to as 127.0.0.1 without one.
local core = require "vertexops.core"
local options = require "vertexops.options"
local host_mod = require "vertexops.host"
local slots_new = require("vertexops.transport.slots").new
local errors = require "vertexops.errors"

local math_ceil, math_max, math_min, string_format = math.ceil, math.max, math.min, string.format
local tostring = tostring

local M = {}

local READ_SIZE = 65536
local POOL = options.POOL -- defaults of pool_size, pool_backlog, keepalive_timeout

local TAGS = core.TAGS -- the transport tag lists of csrc/error.c, as libcurl failures carry them
local TAGS_FAILED, TAGS_FAILED_TIMEOUT, TAGS_CONN, TAGS_TIMEOUT = TAGS.failed, TAGS.failed_timeout, TAGS.conn,
  TAGS.timeout

local function ms(s)
  return math_max(1, math_ceil(s * 1000))
end

-- TLS sessions per pool, for resumption on new connections (this worker's).
local sessions = {}

-- TLS handshakes in progress per pool at most (this worker's). A full handshake costs the worker
-- about half a millisecond of CPU; a burst of 1,000 new connections handshaking at once would
-- hold its event loop for 100 ms and more (spec/09_hosts_openresty_load_spec.lua). Past this many, new
-- connections wait their turn (within the connect timeout and what is left of the call), and the
-- later ones resume the session of the first. A slot is held until its handshake ends, at most
-- until the handshake's own timeout: a light thread nginx killed mid-handshake (its nginx request
-- ended) never gives its slot back, and the slot is free again once that timeout has passed
-- (transport/slots.lua).
local HANDSHAKES = 8
M.HANDSHAKES = HANDSHAKES
local handshake_slots = {}
M.handshake_slots = handshake_slots

-- The TLS handshake of a new connection, finished by finish (ngx.now() time) at most, each step
-- (the wait for a slot, the handshake) within connect_ms too.
local function handshake(ngx, sock, pool, host, connect_ms, finish)
  local slots = handshake_slots[pool]
  if not slots then
    slots = slots_new(M.HANDSHAKES)
    handshake_slots[pool] = slots
  end
  ngx.update_time()
  local now = ngx.now()
  local left = finish - now
  if left <= 0 then return nil, "timeout" end
  local step = math_min(connect_ms / 1000, left)
  local key = slots:take(ngx, now + step, now + step)
  if not key then return nil, "timeout" end
  local function release() slots:give(key) end
  local holder = host_mod.hold(release)
  ngx.update_time()
  left = finish - ngx.now()
  if left <= 0 then
    host_mod.unhold(holder)
    release()
    return nil, "timeout"
  end
  -- the handshake's own time: the connect timeout, or what is left of the call when less
  local hs_ms = ms(math_min(connect_ms / 1000, left))
  slots.held[key] = ngx.now() + hs_ms / 1000
  sock:settimeouts(hs_ms, hs_ms, hs_ms)
  -- lua-resty-core 0.1.25 raises (an assertion) instead of returning nil, err when a handshake
  -- that completed at once failed its verification: that is a certificate verify failure too,
  -- never retried (it was told "handshake failed", and retried, when the handshake was quick)
  local called, session, herr = pcall(sock.sslhandshake, sock, sessions[pool], host, true)
  host_mod.unhold(holder)
  release()
  if not called then
    session, herr = nil, "certificate verify failed (the handshake completed at once and raised: "
      .. tostring(session) .. ")"
  end
  return session, herr
end

-- Counters of this worker's exchanges (specs, load tests): requests, connects (new connections),
-- reused (exchanges on a pooled connection), resends (after a pooled connection had died).
M.stats = { requests = 0, connects = 0, reused = 0, resends = 0 }

-- The error of a failed connect or TLS handshake (nothing was sent).
local function connect_error(what, target, err)
  local where = target.authority
  if err == "timeout" then
    return errors.result(TAGS_FAILED_TIMEOUT, string_format("%s to %s timed out", what, where))
  end
  if what == "TLS handshake" then
    -- a failed certificate verification is not transient (csrc/error.c classifies it)
    local cert = core.certificate_error(string_format("%s to %s failed: %s", what, where, tostring(err)))
    if cert then return false, cert end
  end
  local hint = ""
  if err:find("resolve", 1, true) then
    hint = " (cosockets resolve host names through nginx's 'resolver' directive)"
  elseif what == "TLS handshake" and err ~= "closed" then
    hint = " (nginx verifies the server against lua_ssl_trusted_certificate)"
  end
  return errors.result(TAGS_FAILED, string_format("%s to %s failed: %s%s", what, where, tostring(err), hint))
end

-- Connects (or takes a pooled connection) and does the TLS handshake, by finish (ngx.now() time):
-- each step gets connect_ms or what is left of the call, whichever is less. Returns sock, reused
-- or nil, err.
local function open(ngx, o, target, pool, connect_ms, finish, meter, t0)
  local sock = ngx.socket.tcp()
  ngx.update_time()
  local left = finish - ngx.now()
  if left <= 0 then
    local _, e = connect_error("connect", target, "timeout")
    return nil, e
  end
  local step_ms = ms(math_min(connect_ms / 1000, left))
  sock:settimeouts(step_ms, ms(left), ms(left))
  local host = target.host
  if host:lower() == "localhost" then host = "127.0.0.1" end
  -- an IPv6 literal goes to nginx in brackets (without them it reads "fd00:ec2::254" as host:port)
  if host:find(":", 1, true) then host = "[" .. host .. "]" end
  local size = o.pool_size or POOL.pool_size
  local backlog = o.pool_backlog or POOL.pool_backlog
  local ok, err = sock:connect(host, target.port, { pool = pool, pool_size = size, backlog = backlog })
  if not ok then
    sock:close()
    local _, e = connect_error("connect", target, err)
    return nil, e
  end
  local reused = sock:getreusedtimes() or 0
  if meter then
    ngx.update_time()
    meter.connect = reused == 0 and ngx.now() - t0 or 0
    meter.reused = reused > 0
  end
  if reused == 0 then
    M.stats.connects = M.stats.connects + 1
    if target.scheme == "https" then
      local session, herr = handshake(ngx, sock, pool, target.host, connect_ms, finish)
      if not session then
        sock:close()
        sessions[pool] = nil
        local _, e = connect_error("TLS handshake", target, herr)
        return nil, e
      end
      sessions[pool] = session
      if meter then
        ngx.update_time()
        meter.tls = ngx.now() - t0
      end
    end
  end
  return sock, reused > 0
end

-- Reads the answer into parser p; returns true or false, err (the connection must then be closed).
local function read(ngx, sock, p, finish, connect_ms, meter, t0)
  while true do
    local left = finish - ngx.now()
    if left <= 0 then
      return errors.result(TAGS_TIMEOUT, string_format("operation timed out with %d bytes of the answer received",
        p:received()))
    end
    sock:settimeouts(connect_ms, ms(left), ms(left))
    local data, err = sock:receiveany(READ_SIZE)
    if meter and not meter.first_byte and data then
      ngx.update_time()
      meter.first_byte = ngx.now() - t0
    end
    if data then
      local done, perr = p:feed(data)
      if done then return true end
      if done == nil then return false, perr end
    elseif err == "closed" then
      local done, perr = p:eof()
      if done then return true end
      return false, perr
    elseif err == "timeout" then
      return errors.result(TAGS_TIMEOUT, string_format("operation timed out with %d bytes of the answer received",
        p:received()))
    else
      return errors.result(TAGS_CONN, string_format("receiving the answer failed: %s", tostring(err)))
    end
  end
end

-- What an attempt's hooks see of a cosocket exchange (meter: lua/vertexops/hooks.lua), on nginx's
-- clock (ngx.now(), updated at each step: millisecond resolution): connect and tls from the
-- exchange's start (0 on a pooled connection), first_byte, total, bytes sent and received.
local function measure(ngx, meter, t0, p, sent)
  ngx.update_time()
  meter.transport = "cosocket"
  meter.total = ngx.now() - t0
  meter.bytes_sent = sent or 0
  if p then
    meter.bytes_received = p:received()
    meter.status = p:status()
  end
end

local function size(parts)
  local n = 0
  for i = 1, #parts do n = n + #parts[i] end
  return n
end

--- One exchange; see the top of this file. meter (optional): a table the exchange's timings,
--- sizes and status are written to (hooks, logs).
function M.exchange(ngx, o, req, token, meter)
  local parts, target = core.h1_request(req, token) -- raises for bad arguments, as handle:call
  if target.scheme == "https" and target.ip then
    errors.raise("ValueError", "transport 'cosocket' cannot verify a TLS certificate for an IP "
      .. "address (nginx checks host names only): use a host name in the endpoint (e.g. localhost), or "
      .. "transport 'curl' or 'thread'")
  end
  ngx.update_time()
  local total = req.timeout or core.EXCHANGE_TIMEOUT
  local finish = ngx.now() + total
  local connect_ms = ms(math_min(req.connect_timeout or core.CONNECT_TIMEOUT, total))
  local pool = "vertexops " .. target.scheme .. "://" .. target.authority
  M.stats.requests = M.stats.requests + 1
  local t0 = meter and ngx.now()
  for attempt = 1, 2 do
    local sock, reused = open(ngx, o, target, pool, connect_ms, finish, meter, t0)
    if not sock then
      if meter then measure(ngx, meter, t0) end
      return false, reused
    end
    if reused then M.stats.reused = M.stats.reused + 1 end
    local left = finish - ngx.now()
    if left <= 0 then
      sock:close()
      return errors.result(TAGS_FAILED_TIMEOUT, string_format("connecting to %s used up the %g s timeout",
        target.authority, total))
    end
    sock:settimeouts(connect_ms, ms(left), ms(left))
    local sent, serr = sock:send(parts)
    local p = core.h1()
    local ok, err
    if not sent then
      ok = false
      err = errors.new(serr == "timeout" and TAGS_TIMEOUT or TAGS_CONN,
        string_format("sending the request to %s failed: %s", target.authority, tostring(serr)))
    else
      ok, err = read(ngx, sock, p, finish, connect_ms, meter, t0)
    end
    if meter then measure(ngx, meter, t0, p, sent and size(parts) or 0) end
    if ok then
      local keep = p:keepalive()
      local a, b, c = p:classify(req.want_headers)
      p:close()
      if keep then
        sock:setkeepalive(ms(o.keepalive_timeout or POOL.keepalive_timeout), o.pool_size or POOL.pool_size)
      else
        sock:close()
      end
      return a, b, c
    end
    local received = p:received()
    p:close()
    sock:close()
    -- A pooled connection the server had closed while it idled: sent into the void, nothing came
    -- back. Sent once more on a new connection (as libcurl does), never twice.
    if not (reused and received == 0 and attempt == 1 and not core.is(err, "TimeoutError")) then
      return false, err
    end
    M.stats.resends = M.stats.resends + 1
  end
end

return M
