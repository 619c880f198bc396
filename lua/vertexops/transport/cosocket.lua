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
local table_concat, tostring, type = table.concat, tostring, type

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

-- The tunnel through an HTTPS proxy (px: lua/vertexops/proxy.lua's parse): CONNECT host:port, with
-- Proxy-Authorization: Basic when px has credentials, the answer read by the strict HTTP/1.1 parser
-- (core.h1("CONNECT")) within connect_ms and finish. Returns true, or nil and the error: a non-2xx
-- answer is a ConnectionFailedError (nothing reached the service) with proxy_status, as the libcurl
-- path's (csrc/handle.c). Messages name the proxy as px.shown: never its credentials.
local function tunnel(ngx, sock, px, target, connect_ms, finish)
  local host = target.host
  if host:find(":", 1, true) then host = "[" .. host .. "]" end
  local authority = host .. ":" .. target.port
  local lines = { "CONNECT ", authority, " HTTP/1.1\r\nHost: ", authority, "\r\n" }
  if px.user then
    lines[#lines + 1] = "Proxy-Authorization: Basic " .. ngx.encode_base64(px.user .. ":" .. px.password) .. "\r\n"
  end
  lines[#lines + 1] = "\r\n"
  ngx.update_time()
  local stop = math_min(finish, ngx.now() + connect_ms / 1000)
  local function failed(what, err)
    if err == "timeout" then
      return nil, errors.new(TAGS_FAILED_TIMEOUT, string_format("the CONNECT to %s through the proxy %s timed out",
        authority, px.shown))
    end
    return nil, errors.new(TAGS_FAILED, string_format("%s the proxy %s (CONNECT to %s) failed: %s", what, px.shown,
      authority, tostring(err)))
  end
  local left = stop - ngx.now()
  if left <= 0 then return failed("sending to", "timeout") end
  sock:settimeouts(ms(left), ms(left), ms(left))
  local sent, serr = sock:send(lines)
  if not sent then return failed("sending to", serr) end
  local p = core.h1("CONNECT")
  while true do
    ngx.update_time()
    left = stop - ngx.now()
    if left <= 0 then
      p:close()
      return failed("reading the answer of", "timeout")
    end
    sock:settimeouts(ms(left), ms(left), ms(left))
    local data, err = sock:receiveany(READ_SIZE)
    local done, perr
    if data then
      done, perr = p:feed(data)
    elseif err == "closed" then
      done, perr = p:eof()
    else
      p:close()
      return failed("reading the answer of", err)
    end
    if done == nil or (done == false and not data) then
      p:close()
      return failed("reading the answer of", perr and perr.message or "closed")
    end
    if done then break end
  end
  local status, head = p:result()
  p:close()
  if status < 200 or status > 299 then
    local reason = head:match("^HTTP/1%.%d %d%d%d ?([^\r]*)") or ""
    return nil, errors.new(TAGS_FAILED, string_format("the proxy refused the tunnel: it answered CONNECT with %d%s "
      .. "(proxy %s, CONNECT to %s)", status, reason ~= "" and " " .. reason or "", px.shown, authority),
      { proxy_status = status })
  end
  return true
end

-- The client certificate as nginx takes it (cdata of ngx.ssl's parse_pem_*), parsed once per PEM text
-- (lua/vertexops/mtls.lua reads the files once per client).
local parsed_certs, nparsed = {}, 0
local function client_cert(cert_pem, key_pem)
  local both = parsed_certs[cert_pem]
  both = both and both[key_pem]
  if both then return both[1], both[2] end
  local ok, ssl = pcall(require, "ngx.ssl")
  if not ok then
    errors.raise("AuthError", "option 'client_cert' needs ngx.ssl (lua-resty-core) inside nginx: " .. tostring(ssl))
  end
  local cert, err = ssl.parse_pem_cert(cert_pem)
  if not cert then errors.raise("AuthError", "option 'client_cert': nginx cannot read the certificate: " .. tostring(err)) end
  local key, kerr = ssl.parse_pem_priv_key(key_pem)
  if not key then errors.raise("AuthError", "option 'client_key': nginx cannot read the private key: " .. tostring(kerr)) end
  if nparsed >= 16 then parsed_certs, nparsed = {}, 0 end
  local by_key = parsed_certs[cert_pem] or {}
  parsed_certs[cert_pem] = by_key
  by_key[key_pem], nparsed = { cert, key }, nparsed + 1
  return cert, key
end

-- A short digest naming a secret or a certificate in a pool name (not the thing itself).
local digests, ndigests = {}, 0
local function digest(ngx, s)
  local d = digests[s]
  if not d then
    d = ngx.md5(s):sub(1, 16)
    if ndigests >= 64 then digests, ndigests = {}, 0 end
    digests[s], ndigests = d, ndigests + 1
  end
  return d
end

-- The pool of a connection: everything that makes one different -- scheme, host and port (the SNI
-- name is the host), the proxy (its host and port, and a digest of its credentials: a tunnel opened
-- with one user's is never lent to another's) and the client certificate (a digest of its text and
-- its key's). Two configurations never share a socket, nor a TLS session (kept per pool).
local function pool_name(ngx, target, px, cert, key)
  local name = "vertexops " .. target.scheme .. "://" .. target.authority
  if px then
    name = name .. " via " .. px.authority
    if px.user then name = name .. " as " .. digest(ngx, px.user .. "\0" .. px.password) end
  end
  if cert then name = name .. " cert " .. digest(ngx, cert .. "\0" .. (key or "")) end
  return name
end
M.pool_name = pool_name

-- What a built request sends, kept per request table (weak keys): core.h1_request's parts joined into
-- one string (data: a send of one string costs nginx about 2,000 instructions less than a send of
-- the list, which it walks twice through the Lua API; issue 19 §4) and its target,
-- the pool of a connection without proxy or client certificate, the host connected to and the
-- connect options. A built request is cached and shared by its client and never changed
-- (Client:_build, hooks.lua's with_headers copies it), so its bytes are written -- and the request
-- and the token checked (vx_readrequest: TypeError, ValueError, AuthError) -- by its first exchange,
-- and again only when the token (a fresh one) or a field core.h1_request reads is another: not on
-- every exchange (about 11,000 of the nginx worker's 58,000 instructions per cancel, callgrind).
-- data holds the token, as the token's own Lua string does (neither can be wiped: docs/contract.md),
-- and is let go with the wire, when the token is another; exchanges running side by side share it
-- (send copies it before it can yield).
local wires = setmetatable({}, { __mode = "k" })
M.wires = wires

local function wire_of(ngx, req, token)
  local w = wires[req]
  local tok = token
  if tok == nil then tok = req.token end
  local headers = req.headers
  if w and w.token == tok and w.url == req.url and w.method == req.method and w.headers == headers
    and w.body == req.body and w.nheaders == #headers then
    return w
  end
  local parts, target = core.h1_request(req, token) -- raises for bad arguments, as handle:call
  local host = target.host
  if host:lower() == "localhost" then host = "127.0.0.1" end
  -- an IPv6 literal goes to nginx in brackets (without them it reads "fd00:ec2::254" as host:port)
  if host:find(":", 1, true) then host = "[" .. host .. "]" end
  local data = table_concat(parts)
  w = { token = tok, url = req.url, method = req.method, headers = headers, nheaders = #headers, body = req.body,
        data = data, target = target, host = host, pool = pool_name(ngx, target), bytes = #data }
  wires[req] = w
  return w
end

-- The options of sock:connect for pool, pool_size and pool_backlog (one table per wire while they stay).
local function connect_opts(w, pool, size, backlog)
  local c = w.copts
  if not c or c.pool ~= pool or c.pool_size ~= size or c.backlog ~= backlog then
    c = { pool = pool, pool_size = size, backlog = backlog }
    if pool == w.pool then w.copts = c end
  end
  return c
end

-- Connects (or takes a pooled connection) and does the TLS handshake, by finish (ngx.now() time):
-- each step gets connect_ms or what is left of the call, whichever is less. Through a proxy (net.px)
-- the connection goes to the proxy and is tunnelled with CONNECT before the handshake; with a
-- client certificate (net.cert, net.key) it is given to the handshake. Returns sock, reused or
-- nil, err.
local function open(ngx, o, w, pool, connect_ms, finish, net, meter, t0, now)
  local target = w.target
  local sock = ngx.socket.tcp()
  if not now then
    ngx.update_time()
    now = ngx.now()
  end
  local left = finish - now
  if left <= 0 then
    local _, e = connect_error("connect", target, "timeout")
    return nil, e
  end
  local step_ms = ms(math_min(connect_ms / 1000, left))
  sock:settimeouts(step_ms, ms(left), ms(left))
  local px = net.px
  local host, port = w.host, target.port
  if px then
    host, port = px.host:gsub("^%[(.*)%]$", "%1"), px.port
    if host:lower() == "localhost" then host = "127.0.0.1" end
    if host:find(":", 1, true) then host = "[" .. host .. "]" end
  end
  local ok, err = sock:connect(host, port,
    connect_opts(w, pool, o.pool_size or POOL.pool_size, o.pool_backlog or POOL.pool_backlog))
  if not ok then
    sock:close()
    local _, e = connect_error("connect", px and { authority = "the proxy " .. px.shown } or target, err)
    return nil, e
  end
  local reused = sock:getreusedtimes() or 0
  if meter and not meter.lean then -- (a pooled connection's is 0: no clock read, two FFI calls fewer per exchange)
    if reused == 0 then
      ngx.update_time()
      meter.connect = ngx.now() - t0
    else
      meter.connect = 0
    end
    meter.reused = reused > 0
  end
  if reused == 0 then
    M.stats.connects = M.stats.connects + 1
    if target.scheme == "https" then
      if px then
        local tunnelled, terr = tunnel(ngx, sock, px, target, connect_ms, finish)
        if not tunnelled then
          sock:close()
          return nil, terr
        end
      end
      if net.cert then
        local cert, key = client_cert(net.cert, net.key)
        local set, serr = sock:setclientcert(cert, key)
        if not set then
          sock:close()
          local _, e = errors.result("AuthError", "option 'client_cert': nginx refused the client certificate: "
            .. tostring(serr))
          return nil, e
        end
      end
      local session, herr = handshake(ngx, sock, pool, target.host, connect_ms, finish)
      if not session then
        sock:close()
        sessions[pool] = nil
        local _, e = connect_error("TLS handshake", target, herr)
        return nil, e
      end
      sessions[pool] = session
      if meter and not meter.lean then
        ngx.update_time()
        meter.tls = ngx.now() - t0
      end
    end
  end
  return sock, reused > 0
end

-- Answer parsers kept for this worker's next exchanges (p:take() or p:finish() resets them, keeping their
-- buffers): one made and collected per exchange -- a userdata with a finalizer and three buffers --
-- was a good part of the worker's garbage per cancel. One is taken from here once the request is
-- sent, and given back after an answer read whole (others are closed; an exchange nginx killed
-- mid-read leaves its parser to the collector). As many are kept as a busy worker has exchanges in flight (PARSERS:
-- 1,000 connections of a gateway); past the first PARSERS_FULL, a parser keeps buffers of at most
-- PARSER_KEEP bytes each (a cancel's answer is a few hundred), so a burst of large answers leaves
-- at most PARSERS_FULL parsers with large buffers (up to 1 MiB each, vx_bufreset).
local PARSERS, PARSERS_FULL, PARSER_KEEP = 1024, 64, 16384
local parsers, nparsers = {}, 0

local function take_parser()
  if nparsers == 0 then return core.h1() end
  local p = parsers[nparsers]
  parsers[nparsers], nparsers = nil, nparsers - 1
  return p
end

-- A parser p:take() or p:finish() has read out and reset: kept for the next exchange (closed past
-- PARSERS).
local function keep_parser(p)
  if nparsers >= PARSERS then return p:close() end
  nparsers = nparsers + 1
  parsers[nparsers] = p
end

-- Reads the answer into parser p. Returns false, err (the connection must then be closed); true,
-- status, keepalive, then the classified answer, when its last bytes completed it (p:take: the
-- parser is reset already); or true alone, for an answer the connection's end completed (p:eof:
-- p:finish is still to be asked). set: the ngx.now() at which the socket's timeouts were last set
-- to what was left then: while nginx's clock still reads that (nothing yielded since), they stand.
-- want: p:finish's want_headers. (Its keep is decided when the answer completes: nothing yields
-- from there until keep_parser, so the count of parsers kept is the one it will join.)
local function read(ngx, sock, p, finish, connect_ms, meter, t0, set, want)
  local first = true -- (this answer's first bytes still to come: a resent request's answer has its own)
  while true do
    local now = ngx.now()
    local left = finish - now
    if left <= 0 then
      return errors.result(TAGS_TIMEOUT, string_format("operation timed out with %d bytes of the answer received",
        p:received()))
    end
    if now ~= set then
      sock:settimeouts(connect_ms, ms(left), ms(left))
      set = nil
    end
    local data, err = sock:receiveany(READ_SIZE)
    if data then
      if meter then
        -- (counted here: no C call in measure; the status comes with the answer's end, p:take)
        if first then
          first = false
          if not meter.lean and not meter.first_byte then
            ngx.update_time()
            meter.first_byte = ngx.now() - t0
          end
        end
        meter.bytes_received = (meter.bytes_received or 0) + #data
      end
      local done, status, reuse, a, b, c = p:take(data, want, nparsers >= PARSERS_FULL and PARSER_KEEP or nil)
      if done then return true, status, reuse, a, b, c end
      if done == nil then return false, status end -- (status: the error)
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

-- Whether this nginx's cosockets take a client certificate (tcpsock:setclientcert: lua-nginx-module
-- 0.10.23 with lua-resty-core 0.1.25, Debian's; asked once per worker). A module field, so that a
-- spec can stand for an nginx without it.
local has_clientcert
function M.clientcert_supported(ngx)
  if has_clientcert == nil then
    local sock = ngx.socket.tcp()
    has_clientcert = type(sock.setclientcert) == "function"
    sock:close()
  end
  return has_clientcert
end


-- What an attempt's hooks see of a cosocket exchange (meter: lua/vertexops/hooks.lua), on nginx's
-- clock (ngx.now(), updated at each step: millisecond resolution): connect and tls from the
-- exchange's start (0 on a pooled connection), first_byte (none of the three for a meter.lean:
-- metrics alone watch), total (not for a meter.own_total: they read it off their own clock), bytes sent and
-- received, the status: final, the answer's (after any 1xx) that p:take gave with its last bytes,
-- else the parser's as far as it read (nil before a status line).
local function measure(ngx, meter, t0, p, sent, final)
  meter.transport = "cosocket"
  if not meter.own_total then -- (metrics alone time the attempt on their own clock: no update here)
    ngx.update_time()
    meter.total = ngx.now() - t0
  end
  meter.bytes_sent = sent or 0
  if p then
    meter.bytes_received = meter.bytes_received or 0 -- (counted by read: what p:received() says)
    -- (the answer's own from p:take, the parser reset; else the parser's, as far as it read)
    meter.status = final or p:status()
  else
    meter.status = nil
  end
end

local NO_NET = {} -- (never written)

--- One exchange; see the top of this file. meter (optional): a table the exchange's timings,
--- sizes and status are written to (hooks, logs).
function M.exchange(ngx, o, req, token, meter)
  local w = wire_of(ngx, req, token)
  local data, target = w.data, w.target
  local https = target.scheme == "https"
  if https and target.ip then
    errors.raise("ValueError", "transport 'cosocket' cannot verify a TLS certificate for an IP "
      .. "address (nginx checks host names only): use a host name in the endpoint (e.g. localhost), or "
      .. "transport 'curl' or 'thread'")
  end
  ngx.update_time()
  local now = ngx.now()
  local total = req.timeout or core.EXCHANGE_TIMEOUT
  local finish = now + total
  local connect_ms = ms(math_min(req.connect_timeout or core.CONNECT_TIMEOUT, total))
  -- what Client:_network decided for this exchange (req may be shared: read before any yield)
  local net, pool = NO_NET, w.pool
  if https and (req.proxy_target or req.client_cert or req.client_key) then
    net = { px = req.proxy_target, cert = req.client_cert, key = req.client_key }
    if net.cert and not M.clientcert_supported(ngx) then
      errors.raise("AuthError", "option 'client_cert' needs tcpsock:setclientcert (lua-nginx-module 0.10.23 and "
        .. "lua-resty-core 0.1.25 or later) inside nginx; use transport 'thread' or 'curl'")
    end
    pool = pool_name(ngx, target, net.px, net.cert, net.key)
  end
  M.stats.requests = M.stats.requests + 1
  local t0 = meter and now
  for attempt = 1, 2 do
    local sock, reused = open(ngx, o, w, pool, connect_ms, finish, net, meter, t0, attempt == 1 and now or nil)
    if not sock then
      if meter then measure(ngx, meter, t0) end
      return false, reused
    end
    -- a pooled connection is there at once (nothing yielded: the timeouts open set stand); a new
    -- one took time
    local set = now
    if reused then
      M.stats.reused = M.stats.reused + 1
      if attempt == 2 then set = nil end
    else
      ngx.update_time()
      set = nil
    end
    if not set then
      set = ngx.now()
      local left = finish - set
      if left <= 0 then
        sock:close()
        return errors.result(TAGS_FAILED_TIMEOUT, string_format("connecting to %s used up the %g s timeout",
          target.authority, total))
      end
      sock:settimeouts(connect_ms, ms(left), ms(left))
    end
    local sent, serr = sock:send(data)
    local p = take_parser()
    local ok, err, keep, a, b, c -- (err: the error, or the status of an answer p:take finished)
    local want = req.want_headers
    if not sent then
      ok = false
      err = errors.new(serr == "timeout" and TAGS_TIMEOUT or TAGS_CONN,
        string_format("sending the request to %s failed: %s", target.authority, tostring(serr)))
    else
      ok, err, keep, a, b, c = read(ngx, sock, p, finish, connect_ms, meter, t0, set, want)
    end
    if meter then measure(ngx, meter, t0, p, sent and w.bytes or 0, ok and err) end
    if ok then
      -- (the connection's reuse, the answer and the parser's reset came with the answer's last
      -- bytes, p:take: one C call for them all, each C call ending a LuaJIT trace inside nginx;
      -- issue 19 §4. An answer the connection's end completed asks p:finish for them.)
      if err == nil then keep, a, b, c = p:finish(want, nparsers >= PARSERS_FULL and PARSER_KEEP or nil) end
      keep_parser(p)
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
