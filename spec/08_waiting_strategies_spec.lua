-- wait, cancel_and_wait: strategies, endings and request counts, on the fake server's virtual clock.
local vertexops = require "vertexops"
local H = require "support.helper"

-- Polling a 10-minute operation: GET at 0, then after 1, 1.25, ... (x1.25, capped at 60) seconds.
local POLL_GETS_10MIN = 26 -- 1 + 19 growing delays (273.6 s) + 6 delays of 60 s (633.6 s)

describe("wait", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  local function opts(t, extra) return H.timed_opts(server, t, extra) end

  describe("strategy poll", function()
    it("polls a 10-minute operation with GET on the Workflows schedule", function()
      local t = H.virtual_time(server)
      local op = server:create { done_after = 600 }
      local final = vertexops.wait(op.name, nil, opts(t, { strategy = "poll" }))
      assert.is_true(final.done)
      assert.are.equal(POLL_GETS_10MIN, #server:log("get"))
      assert.are.equal(0, #server:log("wait"))
      assert.are.equal(POLL_GETS_10MIN - 1, #t.delays)
      assert.are.same({ 1, 1.25, 1.5625 }, { t.delays[1], t.delays[2], t.delays[3] })
      assert.are.equal(60, t.delays[#t.delays])
    end)

    it("takes the polling policy from the options", function()
      local t = H.virtual_time(server)
      local op = server:create { done_after = 10 }
      vertexops.wait(op.name, nil, opts(t, { strategy = "poll", polling = { initial_delay = 5, multiplier = 1 } }))
      assert.are.same({ 5, 5 }, t.delays)
    end)
  end)

  describe("strategy server", function()
    it("long-polls a 10-minute operation with :wait, 50 s at a time", function()
      local t = H.virtual_time(server)
      local op = server:create { done_after = 600 }
      local final = vertexops.wait(op.name, nil, opts(t, { strategy = "server" }))
      assert.is_true(final.done)
      local waits = server:log("wait")
      assert.are.equal(12, #waits)
      assert.are.equal("timeout=50s", waits[1].query)
      assert.are.equal(0, #server:log("get"))
      assert.are.same({}, t.delays)
    end)

    it("asks for no more than the time that remains", function()
      local t = H.virtual_time(server)
      local op = server:create { done_after = 30 }
      local err = H.raises(vertexops.wait, op.name, nil, opts(t, { strategy = "server", timeout = 20 }))
      assert.are.equal("TimeoutError", H.tags(err))
      assert.are.equal("timeout=19s", server:log("wait")[1].query)
    end)

    it("raises the HttpError when the server has no :wait", function()
      local t = H.virtual_time(server)
      local op = server:create { wait = "unimplemented", done_after = 5 }
      local err = H.raises(vertexops.wait, op.name, nil, opts(t, { strategy = "server" }))
      assert.are.equal(501, err.code)
    end)
  end)

  describe("strategy auto (the default)", function()
    it("uses :wait when the server has it", function()
      local t = H.virtual_time(server)
      local op = server:create { done_after = 600 }
      vertexops.wait(op.name, nil, opts(t))
      assert.are.equal(12, #server:log("wait"))
      assert.are.equal(0, #server:log("get"))
    end)

    it("falls back to polling for good when :wait is UNIMPLEMENTED", function()
      local t = H.virtual_time(server)
      local op = server:create { done_after = 600, wait = "unimplemented" }
      vertexops.wait(op.name, nil, opts(t))
      assert.are.equal(1, #server:log("wait"))
      assert.are.equal(POLL_GETS_10MIN, #server:log("get"))
    end)

    it("falls back to polling when :wait answers 404", function()
      local t = H.virtual_time(server)
      local op = server:create { done_after = 3 }
      server:fault { match = "wait", status = 404 }
      assert.is_true(vertexops.wait(op.name, nil, opts(t)).done)
      assert.are.equal(1, #server:log("wait"))
      assert.are.equal(4, #server:log("get")) -- at 0, 1, 2.25 and 3.8125 s: done
    end)

    it("pauses for the polling delay when :wait answers at once: no request storm", function()
      local t = H.virtual_time(server)
      local op = server:create { done_after = 600, wait = "immediate" }
      vertexops.wait(op.name, nil, opts(t))
      assert.are.equal(POLL_GETS_10MIN, #server:log("wait"))
      assert.are.same({ 1, 1.25, 1.5625 }, { t.delays[1], t.delays[2], t.delays[3] })
    end)
  end)

  describe("endings", function()
    it("returns at once for an operation that is already done", function()
      local t = H.virtual_time(server)
      local op = server:create { done = true }
      assert.is_true(vertexops.wait(op.name, nil, opts(t)).done)
      assert.are.equal(1, #server:log())
    end)

    it("raises OperationError carrying the operation when it failed", function()
      local t = H.virtual_time(server)
      local op = server:create { done_after = 5, outcome = "error", error = { code = 13, message = "boom" } }
      local err = H.raises(vertexops.wait, op.name, nil, opts(t))
      assert.are.equal("OperationError", H.tags(err))
      assert.are.equal(13, err.operation.error.code)
      assert.matches("boom", err.message)
    end)

    it("raises TimeoutError with the last operation and the elapsed time at the deadline", function()
      local t = H.virtual_time(server)
      local op = server:create {}
      local err = H.raises(vertexops.wait, op.name, nil, opts(t, { timeout = 120, strategy = "poll" }))
      assert.are.equal("TimeoutError", H.tags(err))
      assert.are.equal(op.name, err.operation.name)
      assert.are.equal(120, err.elapsed)
      assert.matches("120%.0 s", err.message)
    end)

    it("raises TimeoutError at the deadline with the server strategy too", function()
      local t = H.virtual_time(server)
      local op = server:create {}
      local err = H.raises(vertexops.wait, op.name, nil, opts(t, { timeout = 120 }))
      assert.are.equal("TimeoutError", H.tags(err))
      assert.is_true(err.elapsed <= 120)
    end)

    it("accepts a timeout of one year", function()
      local t = H.virtual_time(server)
      local op = server:create { done_after = 100 }
      assert.is_true(vertexops.wait(op.name, nil, opts(t, { timeout = 31536000 })).done)
      local err = H.raises(vertexops.wait, op.name, nil, opts(t, { timeout = 31536001 }))
      assert.are.equal("ValueError", H.tags(err))
      assert.matches("option 'timeout'", err.message, 1, true)
    end)

    it("keeps waiting through transient failures while time remains", function()
      local t = H.virtual_time(server)
      local op = server:create { done_after = 60 }
      server:fault { match = "get", status = 503, times = 8 } -- more than one call's 5 retries
      assert.is_true(vertexops.wait(op.name, nil, opts(t, { strategy = "poll" })).done)
      assert.is_true(#server:log("get") > 9)
    end)

    it("raises TimeoutError at once when a RetryInfo reaches past the deadline", function()
      local t = H.virtual_time(server)
      local op = server:create { done_after = 100000 }
      server:fault { match = "any", status = 429, retry_delay = "3600s", times = 1e9 }
      local err = H.raises(vertexops.wait, op.name, nil, opts(t, { strategy = "poll", timeout = 600 }))
      assert.are.equal("TimeoutError", H.tags(err))
      assert.are.equal(1, #server:log("get"))
      assert.are.same({}, t.delays)
      assert.are.equal(429, err.cause.code)
      assert.matches("retry after 3600 s", err.message, 1, true)
    end)

    it("raises TimeoutError at once when a Retry-After reaches past the deadline, :wait strategy too", function()
      local t = H.virtual_time(server)
      local op = server:create { done_after = 100000 }
      server:fault { match = "any", status = 429, retry_after = 3600, times = 1e9 }
      local err = H.raises(vertexops.wait, op.name, nil, opts(t, { timeout = 600 }))
      assert.are.equal("TimeoutError", H.tags(err))
      assert.are.equal(1, #server:log())
      assert.are.same({}, t.delays)
      assert.are.equal(429, err.cause.code)
    end)

    it("polls no sooner than a Retry-After once the retries are spent", function()
      local t = H.virtual_time(server)
      local op = server:create { done_after_gets = 1 }
      server:fault { match = "get", status = 429, retry_after = 30, times = 2 }
      local final = vertexops.wait(op.name, nil, opts(t, { strategy = "poll", retry = { max_retries = 1 },
        polling = { initial_delay = 1 } }))
      assert.is_true(final.done)
      assert.are.equal(3, #server:log("get"))
      -- the call's own retry waits 30 s; its retries spent, the wait pauses 30 s too, not the 1 s poll
      assert.are.same({ 30, 30 }, t.delays)
    end)

    it("ends on a failure that is not transient", function()
      local t = H.virtual_time(server)
      local err = H.raises(vertexops.wait, H.NAME .. "missing", nil, opts(t, { strategy = "poll" }))
      assert.are.equal(404, err.code)
    end)

    it("reports progress after every answer", function()
      local t = H.virtual_time(server)
      local op = server:create { done_after = 4, progress = true }
      local seen = {}
      vertexops.wait(op.name, nil, opts(t, { strategy = "poll", progress = function(o, info)
        seen[#seen + 1] = { o.metadata.progressPercentage, info.requests }
      end }))
      assert.are.same({ 0, 1 }, seen[1])
      assert.are.same({ 100, #seen }, seen[#seen])
    end)
  end)
end)

describe("cancel_and_wait", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  local function opts(t, extra) return H.timed_opts(server, t, extra) end

  it("returns the operation and true when it ended CANCELLED", function()
    local t = H.virtual_time(server)
    local op = server:create { done_after = 3600 }
    local final, cancelled = vertexops.cancel_and_wait(op.name, nil, opts(t))
    assert.is_true(cancelled)
    assert.are.equal(1, final.error.code)
    assert.are.equal("cancel", server:log()[1].call)
  end)

  it("returns the operation and false when it completed despite the cancel", function()
    local t = H.virtual_time(server)
    local op = server:create { done_after = 3600, cancel = "late" }
    local final, cancelled = vertexops.cancel_and_wait(op.name, nil, opts(t))
    assert.is_false(cancelled)
    assert.is_table(final.response)
  end)

  it("raises OperationError when it ended with another error", function()
    local t = H.virtual_time(server)
    local op = server:create { done_after = 10, cancel = "ignore", outcome = "error" }
    local err = H.raises(vertexops.cancel_and_wait, op.name, nil, opts(t))
    assert.are.equal("OperationError", H.tags(err))
    assert.are.equal(13, err.operation.error.code)
  end)

  it("raises the HttpError of a server that does not support cancel", function()
    local t = H.virtual_time(server)
    local op = server:create { cancel = "unimplemented" }
    local err = H.raises(vertexops.cancel_and_wait, op.name, nil, opts(t))
    assert.are.equal(501, err.code)
    assert.are.equal("UNIMPLEMENTED", err.status)
  end)

  it("counts the cancel in the timeout", function()
    local t = H.virtual_time(server)
    local op = server:create { cancel = "ignore" }
    server:fault { match = "cancel", status = 503 }
    local err = H.raises(vertexops.cancel_and_wait, op.name, nil, opts(t, { timeout = 100 }))
    assert.are.equal("TimeoutError", H.tags(err))
    assert.is_true(err.elapsed <= 100)
  end)
end)
