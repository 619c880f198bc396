-- Retries and deadlines, Workflows connector semantics. An injected clock records the delays.
local vertexops = require "vertexops"
local H = require "support.helper"

local BACKOFF = { 1, 1.25, 1.5625, 1.953125, 2.44140625 }

describe("retry", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  local function opts(t, extra) return H.timed_opts(server, t, extra) end

  it("retries 429 and 503 on cancel until it succeeds", function()
    local op = server:create {}
    local t = H.fake_time()
    server:fault { match = "cancel", status = 429 }
    server:fault { match = "cancel", status = 503 }
    assert.is_true(vertexops.cancel(op.name, nil, opts(t)))
    assert.are.same({ 1, 1.25 }, t.delays)
    assert.are.equal(3, #server:log("cancel"))
  end)

  it("raises the last HttpError after exactly 5 retries of 503", function()
    local op = server:create {}
    local t = H.fake_time()
    server:fault { match = "cancel", status = 503, times = 100 }
    local err = H.raises(vertexops.cancel, op.name, nil, opts(t))
    assert.are.equal(503, err.code)
    assert.are.same(BACKOFF, t.delays)
    assert.are.equal(6, #server:log("cancel"))
  end)

  it("caps the delay at max_delay", function()
    local op = server:create {}
    local t = H.fake_time()
    server:fault { match = "get", status = 503, times = 100 }
    H.raises(vertexops.get, op.name, nil, opts(t, { retry = { initial_delay = 40, multiplier = 2 } }))
    assert.are.same({ 40, 60, 60, 60, 60 }, t.delays)
  end)

  it("honours Retry-After in seconds instead of the backoff", function()
    local op = server:create {}
    local t = H.fake_time()
    server:fault { match = "cancel", status = 429, retry_after = 7 }
    vertexops.cancel(op.name, nil, opts(t))
    assert.are.same({ 7 }, t.delays)
  end)

  it("honours Retry-After as an HTTP date", function()
    local op = server:create {}
    local t = H.fake_time()
    server:fault { match = "cancel", status = 503, retry_after = os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 30) }
    vertexops.cancel(op.name, nil, opts(t))
    assert.is_true(t.delays[1] >= 28 and t.delays[1] <= 31, "delay " .. tostring(t.delays[1]))
  end)

  it("honours a RetryInfo detail only when its type URL ends in /google.rpc.RetryInfo", function()
    local op = server:create {}
    local function envelope(type_url)
      return ('{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":%q,"retryDelay":"30s"}]}}')
        :format(type_url)
    end
    for _, c in ipairs {
      { "type.googleapis.com/google.rpc.RetryInfo", 30 },
      { "example.test/types/google.rpc.RetryInfo", 30 },
      { "x/evilgoogle.rpc.RetryInfo", 1 },
      { "x/y.google.rpc.RetryInfo", 1 },
      { "google.rpc.RetryInfo", 1 },
    } do
      local t = H.fake_time()
      server:fault { match = "cancel", status = 429, content_type = "application/json", body = envelope(c[1]) }
      assert.is_true(vertexops.cancel(op.name, nil, opts(t)))
      assert.are.same({ c[2] }, t.delays, c[1])
    end
  end)

  it("does not retry cancel on 502 or 504", function()
    for _, code in ipairs { 502, 504 } do
      server:reset()
      local op = server:create {}
      local t = H.fake_time()
      server:fault { match = "cancel", status = code }
      assert.are.equal(code, H.raises(vertexops.cancel, op.name, nil, opts(t)).code)
      assert.are.same({}, t.delays)
    end
  end)

  it("retries get on 502 and 504", function()
    local op = server:create {}
    local t = H.fake_time()
    server:fault { match = "get", status = 502 }
    server:fault { match = "get", status = 504 }
    assert.are.equal(op.name, vertexops.get(op.name, nil, opts(t)).name)
    assert.are.same({ 1, 1.25 }, t.delays)
  end)

  it("does not retry 4xx other than 429", function()
    local t = H.fake_time()
    H.raises(vertexops.get, H.NAME .. "missing", nil, opts(t))
    assert.are.same({}, t.delays)
    assert.are.equal(1, #server:log())
  end)

  it("does not retry cancel on a dropped connection (it may have landed)", function()
    local op = server:create {}
    local t = H.fake_time()
    server:fault { match = "cancel", drop = "before" }
    assert.are.equal("ConnectionError", H.tags(H.raises(vertexops.cancel, op.name, nil, opts(t))))
    assert.are.equal(1, #server:log("cancel"))
  end)

  it("retries get on a dropped connection", function()
    local op = server:create {}
    local t = H.fake_time()
    server:fault { match = "get", drop = "before" }
    assert.are.equal(op.name, vertexops.get(op.name, nil, opts(t)).name)
    assert.are.equal(2, #server:log("get"))
  end)

  it("retries get on a request timeout", function()
    local op = server:create {}
    local t = H.fake_time()
    -- the retry opens a new connection (the timed-out one is closed): a TLS handshake and the
    -- answer, in well under a second even on a busy machine (0.3 s was too short for them there)
    server:fault { match = "get", delay = 30 }
    assert.are.equal(op.name, vertexops.get(op.name, nil, opts(t, { request_timeout = 2 })).name)
    assert.are.same({ 1 }, t.delays)
  end)

  it("retries cancel on a refused connection, then raises ConnectionFailedError", function()
    local t = H.fake_time()
    local err = H.raises(vertexops.cancel, H.NAME .. "1", nil, {
      endpoint = "http://127.0.0.1:" .. H.closed_port(), token = "t", clock = t.clock, sleep = t.sleep })
    assert.is_true(vertexops.is(err, "ConnectionFailedError"))
    assert.are.same(BACKOFF, t.delays)
  end)

  it("starts no retry past the timeout deadline: TimeoutError", function()
    local op = server:create {}
    local t = H.fake_time()
    server:fault { match = "cancel", status = 503, times = 100 }
    local err = H.raises(vertexops.cancel, op.name, nil, opts(t, { timeout = 3 }))
    assert.are.equal("TimeoutError", H.tags(err))
    assert.are.same({ 1, 1.25 }, t.delays) -- the third delay would end at 3.8125 s > 3 s
    assert.are.equal(3, #server:log("cancel"))
    assert.are.equal(503, err.cause.code)
  end)

  it("raises TimeoutError when Retry-After points past the deadline", function()
    local op = server:create {}
    local t = H.fake_time()
    server:fault { match = "cancel", status = 429, retry_after = 120 }
    local err = H.raises(vertexops.cancel, op.name, nil, opts(t, { timeout = 60 }))
    assert.are.equal("TimeoutError", H.tags(err))
    assert.are.same({}, t.delays)
  end)

  it("does not retry at all with retry = false", function()
    local op = server:create {}
    local t = H.fake_time()
    server:fault { match = "cancel", status = 503 }
    assert.are.equal(503, H.raises(vertexops.cancel, op.name, nil, opts(t, { retry = false })).code)
    assert.are.same({}, t.delays)
  end)

  it("takes max_retries from the options", function()
    local op = server:create {}
    local t = H.fake_time()
    server:fault { match = "get", status = 503, times = 100 }
    H.raises(vertexops.get, op.name, nil, opts(t, { retry = { max_retries = 2 } }))
    assert.are.same({ 1, 1.25 }, t.delays)
  end)

  it("merges a call's retry table into the client's", function()
    local op = server:create {}
    local t = H.fake_time()
    local c = vertexops.client(opts(t, { retry = { initial_delay = 2 } }))
    server:fault { match = "get", status = 503, times = 100 }
    H.raises(c.get, c, op.name, nil, { retry = { max_retries = 2 } })
    assert.are.same({ 2, 2.5 }, t.delays)
  end)
end)
