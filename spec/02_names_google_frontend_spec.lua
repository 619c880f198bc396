-- Fidelity to Google's front end: the fake advertises 100 HTTP/2 streams per connection and sends
-- GOAWAY after a number of requests (support/fake.lua M.DEFAULTS), its errors carry details
-- (ErrorInfo, QuotaFailure, RetryInfo), and Vertex AI answers under /v1/ (GA) as under /v1beta1/.
-- HTTP/2 connection faults (GOAWAY, REFUSED_STREAM) in the middle of cancel_many lose no cancel and
-- send none twice.
local vertexops = require "vertexops"
local core = require "vertexops.core"
local H = require "support.helper"

-- per connection: requests, and the most that were in flight at once
local function per_connection(log)
  local n, most, conns = {}, {}, 0
  for _, e in ipairs(log) do
    if not n[e.connection] then conns = conns + 1 end
    n[e.connection] = (n[e.connection] or 0) + 1
    most[e.connection] = math.max(most[e.connection] or 0, e.concurrent)
  end
  return conns, n, most
end

-- every name cancelled exactly once, every result ok; returns the cancel log
local function each_once(server, names, results)
  local log = server:log("cancel")
  local per = {}
  for _, e in ipairs(log) do per[e.name] = (per[e.name] or 0) + 1 end
  for i, name in ipairs(names) do
    assert.are.same({ ok = true }, results[i])
    assert.are.equal(1, per[name], name .. " cancelled " .. tostring(per[name]) .. " times")
  end
  assert.are.equal(#names, #log)
  return log
end

local function make(server, n)
  local names = {}
  for i = 1, n do names[i] = server:create {}.name end
  return names
end

describe("a server allowing 100 streams per connection", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  it("is what the fake advertises by default", function()
    assert.are.equal(100, server.settings.max_streams)
  end)

  it("takes a batch of 300 cancels at once over a bounded number of connections, each cancel once", function()
    local names = make(server, 300)
    server:reset_log()
    server:fault { match = "cancel", delay = 0.05, times = 300 }
    local c = vertexops.client(H.opts(server))
    local results = c:cancel_many(names, nil, { concurrency = 300 })
    each_once(server, names, results)
    local conns, _, most = per_connection(server:log("cancel"))
    assert.is_true(conns <= core.MAX_HOST_CONNECTIONS, conns .. " connections")
    for conn, m in pairs(most) do assert.is_true(m <= 100, m .. " streams at once on connection " .. conn) end
    assert.is_true(c:stats().connects <= core.MAX_HOST_CONNECTIONS, c:stats().connects .. " connects")
  end)

  it("takes a batch of 100 over one connection", function()
    local names = make(server, 100)
    server:reset_log()
    server:fault { match = "cancel", delay = 0.05, times = 100 }
    local results = vertexops.client(H.opts(server)):cancel_many(names, nil, { concurrency = 100 })
    each_once(server, names, results)
    assert.are.equal(1, server:connections())
  end)

  it("runs 250 started requests over a bounded number of connections", function()
    local names = make(server, 250)
    server:reset_log()
    server:fault { match = "get", delay = 0.05, times = 250 }
    local c = vertexops.client(H.opts(server))
    local reqs = {}
    for i = 1, #names do reqs[i] = c:start("get", names[i]) end
    for i = 1, #names do assert.are.equal(names[i], reqs[i]:wait().name) end
    assert.is_true(server:connections() <= core.MAX_HOST_CONNECTIONS, server:connections() .. " connections")
  end)
end)

describe("a server sending GOAWAY after 60 requests per connection", function()
  local server
  setup(function() server = H.fake.start { keepalive_requests = 60 } end)
  teardown(function() server:stop() end)

  it("loses no cancel of a batch of 300 and sends none twice", function()
    local names = make(server, 300)
    server:reset_log()
    server:fault { match = "cancel", delay = 0.02, times = 300 }
    local c = vertexops.client(H.opts(server))
    each_once(server, names, c:cancel_many(names, nil, { concurrency = 300 }))
    local conns, n = per_connection(server:log("cancel"))
    for conn, k in pairs(n) do assert.is_true(k <= 60, k .. " requests on connection " .. conn) end
    assert.is_true(conns >= 5, conns .. " connections")
  end)

  it("keeps sequential calls going across GOAWAY", function()
    local op = server:create {}
    server:reset_log()
    local c = vertexops.client(H.opts(server))
    for _ = 1, 150 do c:cancel(op.name) end
    assert.are.equal(150, #server:log("cancel"))
    assert.are.equal(3, server:connections())
  end)
end)

describe("Google's error details", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  it("exposes the ErrorInfo's reason, domain and metadata, and the decoded details", function()
    local err = H.raises(vertexops.get, H.NAME .. "missing", nil, H.opts(server))
    assert.are.equal(404, err.code)
    assert.are.equal("RESOURCE_NOT_FOUND", err.reason)
    assert.are.equal("aiplatform.googleapis.com", err.domain)
    assert.are.equal("aiplatform.googleapis.com", err.metadata.service)
    assert.are.equal("type.googleapis.com/google.rpc.ErrorInfo", err.details[1]["@type"])
  end)

  it("carries a QuotaFailure on 429", function()
    local op = server:create {}
    server:fault { match = "get", status = 429, reason = "RATE_LIMIT_EXCEEDED" }
    local err = H.raises(vertexops.get, op.name, nil, H.opts(server, { retry = false }))
    assert.are.equal("RATE_LIMIT_EXCEEDED", err.reason)
    assert.are.equal("type.googleapis.com/google.rpc.QuotaFailure", err.details[2]["@type"])
    assert.are.equal("project:test-project", err.details[2].violations[1].subject)
  end)

  it("leaves reason, domain and details out when the body has none", function()
    local op = server:create {}
    server:fault { match = "get", status = 500, body = "<html>oops</html>" }
    local err = H.raises(vertexops.get, op.name, nil, H.opts(server, { retry = false }))
    assert.are.equal(500, err.code)
    assert.is_nil(err.reason)
    assert.is_nil(err.domain)
    assert.is_nil(err.details)
  end)

  it("honours RetryInfo.retryDelay like Retry-After", function()
    local op = server:create {}
    local t = H.fake_time()
    server:fault { match = "cancel", status = 503, retry_delay = "2.5s" }
    assert.is_true(vertexops.cancel(op.name, nil, H.timed_opts(server, t)))
    assert.are.same({ 2.5 }, t.delays)
  end)

  it("waits the larger of Retry-After and RetryInfo.retryDelay", function()
    local op = server:create {}
    local t = H.fake_time()
    server:fault { match = "cancel", status = 429, retry_after = 7, retry_delay = "1s" }
    server:fault { match = "cancel", status = 429, retry_after = 1, retry_delay = "3.25s" }
    vertexops.cancel(op.name, nil, H.timed_opts(server, t))
    assert.are.same({ 7, 3.25 }, t.delays)
  end)

  it("stops at the deadline rather than wait a retryDelay past it", function()
    local op = server:create {}
    local t = H.fake_time()
    server:fault { match = "cancel", status = 503, retry_delay = "120s" }
    local err = H.raises(vertexops.cancel, op.name, nil, H.timed_opts(server, t, { timeout = 10 }))
    assert.are.equal("TimeoutError", H.tags(err))
    assert.are.equal(503, err.cause.code)
    assert.are.same({}, t.delays)
    assert.are.equal(1, #server:log("cancel"))
  end)

  it("falls back to the backoff when retryDelay is unreadable", function()
    local op = server:create {}
    local t = H.fake_time()
    server:fault { match = "cancel", status = 503, retry_delay = "soon" }
    server:fault { match = "cancel", status = 503, retry_delay = "-4s" }
    vertexops.cancel(op.name, nil, H.timed_opts(server, t))
    assert.are.same({ 1, 1.25 }, t.delays)
  end)

  -- cjson decodes a JSON list to a table with keys 1..n, an object to one with string keys
  describe("error.details that is no list", function()
    local INFO = '{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"R"}'
    local function classify(body)
      local ok, err = core.classify(400, "HTTP/1.1 400 Bad\r\n", body)
      assert.is_false(ok)
      assert.are.equal("HttpError", err.tags[1])
      return err
    end

    it("an empty object or an empty list sets no details", function()
      assert.is_nil(classify('{"error":{"details":{}}}').details)
      assert.is_nil(classify('{"error":{"details":[]}}').details)
    end)

    it("an object with the keys of a list is no list", function()
      local err = classify('{"error":{"details":{"1":' .. INFO .. '}}}')
      assert.is_nil(err.details)
      assert.is_nil(err.reason)
      err = classify('{"error":{"details":[' .. INFO .. '],"details":' .. INFO .. '}}') -- the last member counts
      assert.is_nil(err.details)
      err = classify('{"error":{"details":' .. INFO .. ',"d\\u0065tails":[' .. INFO .. ']}}')
      assert.are.equal("R", err.details[1].reason)
      assert.are.equal("R", err.reason)
    end)

    it("an ErrorInfo is read only under a type URL whose last segment is google.rpc.ErrorInfo", function()
      local function reason(type_url)
        return classify(('{"error":{"details":[{"@type":%q,"reason":"R"}]}}'):format(type_url)).reason
      end
      assert.are.equal("R", reason("type.googleapis.com/google.rpc.ErrorInfo"))
      assert.are.equal("R", reason("example.test/types/google.rpc.ErrorInfo"))
      assert.is_nil(reason("type.googleapis.com/x.google.rpc.ErrorInfo"))
      assert.is_nil(reason("x/evilgoogle.rpc.ErrorInfo"))
      assert.is_nil(reason("google.rpc.ErrorInfo"))
    end)
  end)
end)

describe("api_version", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  it("is v1beta1 by default", function()
    assert.are.equal("v1beta1", vertexops.DEFAULTS.api_version)
    local op = server:create {}
    vertexops.get(op.name, nil, H.opts(server))
    assert.are.equal("/v1beta1/" .. op.name, server:log()[1].path)
  end)

  it("v1 sends every call under /v1/, with the same answers", function()
    local c = vertexops.client(H.opts(server, { api_version = "v1" }))
    local op = server:create { done_after = 3600 }
    assert.is_true(c:cancel(op.name))
    assert.are.equal(op.name, c:get(op.name).name)
    assert.are.equal(op.name, c:wait_once(op.name, nil, 0.1).name)
    assert.are.equal(op.name, c:list(H.PARENT).operations[1].name)
    assert.are.same({ { ok = true } }, c:cancel_many({ op.name }))
    assert.is_true(c:delete(op.name))
    local paths = {}
    for _, e in ipairs(server:log()) do paths[#paths + 1] = e.method .. " " .. e.path end
    assert.are.same({
      "POST /v1/" .. op.name .. ":cancel", "GET /v1/" .. op.name, "POST /v1/" .. op.name .. ":wait",
      "GET /v1/" .. H.PARENT .. "/operations", "POST /v1/" .. op.name .. ":cancel", "DELETE /v1/" .. op.name,
    }, paths)
  end)

  it("a call's api_version overrides the client's", function()
    local op = server:create {}
    vertexops.client(H.opts(server, { api_version = "v1" })):get(op.name, nil, { api_version = "v1beta1" })
    assert.are.equal("/v1beta1/" .. op.name, server:log()[1].path)
  end)

  it("rejects another version or type before any I/O", function()
    local op = server:create {}
    for _, err in ipairs { H.raises(vertexops.get, op.name, nil, H.opts(server, { api_version = "v2" })),
                           H.raises(vertexops.client, { api_version = "/v1" }) } do
      assert.are.equal("ValueError", H.tags(err))
      assert.matches("option 'api_version'", err.message, 1, true)
    end
    assert.are.equal("TypeError", H.tags(H.raises(vertexops.get, op.name, nil, H.opts(server, { api_version = 1 }))))
    assert.are.equal(0, #server:log())
  end)

  it("is the CLI's --api-version", function()
    local op = server:create {}
    local out, ok = H.run(H.lua_command() .. " bin/vertexops get " .. op.name .. " --api-version v1 --ca-file "
      .. server.ca_file, { GOOGLE_OAUTH_ACCESS_TOKEN = "test-token", VERTEXOPS_ENDPOINT = server.endpoint,
                          GOOGLE_CLOUD_QUOTA_PROJECT = "" })
    assert.is_true(ok, out)
    assert.are.equal("/v1/" .. op.name, server:log()[1].path)
    local _, ok2, code = H.run(H.lua_command() .. " bin/vertexops get " .. op.name .. " --api-version v3",
      { GOOGLE_OAUTH_ACCESS_TOKEN = "test-token", VERTEXOPS_ENDPOINT = server.endpoint })
    assert.is_false(ok2)
    assert.are.equal(2, code)
  end)
end)

describe("routing header", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  it("names list's parent by ListOperationsRequest's field, name (as Google's operations clients do)", function()
    vertexops.list(H.PARENT, nil, H.opts(server))
    assert.are.equal("name=" .. H.PARENT:gsub("/", "%%2F"), server:log("list")[1].headers["x-goog-request-params"])
  end)
end)

describe("a hostile server", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  describe("HTTP/2 connection faults in the middle of cancel_many", function()
    it("GOAWAY every " .. H.fake.GOAWAY_AFTER .. " requests: no cancel lost, none sent twice", function()
      local names = {}
      for i = 1, 40 do names[i] = server:create {}.name end
      server:reset_log()
      server:fault { match = "cancel", delay = 0.02, times = 40 }
      local c = vertexops.client(H.opts(server, { endpoint = server.goaway_endpoint }))
      local log = each_once(server, names, c:cancel_many(names, nil, { concurrency = 10 }))
      local per_conn, conns = {}, 0
      for _, e in ipairs(log) do
        if not per_conn[e.connection] then conns = conns + 1 end
        per_conn[e.connection] = (per_conn[e.connection] or 0) + 1
        assert.is_true(per_conn[e.connection] <= H.fake.GOAWAY_AFTER)
      end
      assert.is_true(conns >= 40 / H.fake.GOAWAY_AFTER, conns .. " connections")
    end)

    -- nginx refuses (RST_STREAM REFUSED_STREAM) a stream that carries a body before the client has
    -- acknowledged its SETTINGS (http2_body_preread_size 0), and allows one stream per connection:
    -- libcurl opens a connection for each concurrent cancel, its first stream is refused, libcurl
    -- retries it on a fresh connection (up to 5 times), and gives up with curl error 56.
    -- A refused stream never reached the service: libcurl's giving up is a ConnectionFailedError,
    -- which a cancel retries (csrc/handle.c, vx_curl_gaveup). Every cancel goes through, once.
    it("REFUSED_STREAM for streams opened past the server's limit: no cancel lost, none sent twice", function()
      local names = {}
      for i = 1, 10 do names[i] = server:create {}.name end
      local c = vertexops.client(H.opts(server, { endpoint = server.narrow_endpoint }))
      c:get(names[1]) -- a connection whose SETTINGS are acknowledged
      server:reset_log()
      local results = c:cancel_many(names, nil, { concurrency = 10 })
      local per = {}
      for _, e in ipairs(server:log("cancel")) do per[e.name] = (per[e.name] or 0) + 1 end
      for i, name in ipairs(names) do
        assert.is_true(results[i].ok, tostring(results[i].err))
        assert.are.equal(1, per[name], name .. " cancelled " .. tostring(per[name]) .. " times")
      end
      local _, refused = server:error_log("narrow"):gsub("before settings were acknowledged", "")
      assert.is_true(refused > 0, "nginx refused no stream")
    end)
  end)
end)
