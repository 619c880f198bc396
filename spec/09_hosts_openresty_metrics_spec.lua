-- make test: once
-- vertexops.metrics inside nginx: examples/openresty/ with two workers (spec/support/openresty.lua)
-- counts every call its /probe (the example's /cancel: cancel_and_wait) makes into one
-- lua_shared_dict, and serves them on /metrics. The scrape's numbers against the fake's request log.
local H = require "support.helper"
local openresty = require "support.openresty"
local prom = require "support.prometheus"

describe("OpenResty /metrics (examples/openresty, two workers)", function()
  local fake = H.fake_server()
  local app, server

  setup(function() app = openresty.start_two_workers(fake.server) end)
  teardown(function() if app then app:stop() end end)
  before_each(function()
    server = fake.server
    app:result [[ require("vertexops.metrics").new { shared_dict = "vertexops_metrics" }:reset() ]]
  end)

  local function get(path) return app:get(path) end

  local function scrape()
    local body, code, headers = get("/metrics")
    assert.are.equal(200, code, body)
    assert.are.equal("text/plain; version=0.0.4; charset=utf-8", headers["content-type"])
    local doc = prom.parse(body)
    prom.check_histograms(doc)
    return doc, body
  end

  -- four cancel_and_wait that succeed (two 503s on the way), one of a missing operation (404), one
  -- whose wait gets a 500
  local function traffic()
    local ops = {}
    for i = 1, 5 do ops[i] = server:create {} end
    server:fault { match = "cancel", status = 503, times = 2, retry_after = "0" }
    for i = 1, 4 do
      local body, code = get("/probe?name=" .. ops[i].name)
      assert.are.equal(200, code, body)
    end
    local body, code = get("/probe?name=" .. H.NAME .. "424242")
    assert.are.equal(404, code, body)
    server:fault { match = "wait", status = 500 }
    body, code = get("/probe?name=" .. ops[5].name)
    assert.are.equal(500, code, body)
  end

  it("counts as many attempts of each call as the fake logged requests of it", function()
    traffic()
    local doc = scrape()
    local calls, total = {}, 0
    for _, e in ipairs(server:log()) do
      calls[e.call] = (calls[e.call] or 0) + 1
      total = total + 1
    end
    assert.are.equal(8, calls.cancel) -- 5 + 2 retries + the missing one
    for call, n in pairs(calls) do
      assert.are.equal(n, prom.value(doc, "vertexops_attempts_total", { call = call }), call)
    end
    assert.are.equal(total, prom.value(doc, "vertexops_attempts_total"))
  end)

  it("labels attempts and calls with the answers' status classes and the errors' tags", function()
    traffic()
    local doc = scrape()
    assert.are.equal(4, prom.value(doc, "vertexops_attempts_total", { call = "wait", status = "2xx", tag = "" }))
    assert.are.equal(2, prom.value(doc, "vertexops_attempts_total", { call = "cancel", status = "5xx", tag = "HttpError" }))
    assert.are.equal(1, prom.value(doc, "vertexops_attempts_total", { call = "cancel", status = "4xx", tag = "HttpError" }))
    assert.are.equal(5, prom.value(doc, "vertexops_attempts_total", { call = "cancel", status = "2xx", tag = "" }))
    assert.are.equal(1, prom.value(doc, "vertexops_attempts_total", { call = "wait", status = "5xx", tag = "HttpError" }))
    -- the example's calls are cancel_and_wait: one call each, its cancel's and wait's requests its attempts
    local cw = "cancel_and_wait"
    assert.are.equal(4, prom.value(doc, "vertexops_calls_total", { call = cw, status = "2xx", tag = "" }))
    assert.are.equal(1, prom.value(doc, "vertexops_calls_total", { call = cw, status = "4xx", tag = "HttpError" }))
    assert.are.equal(1, prom.value(doc, "vertexops_calls_total", { call = cw, status = "5xx", tag = "HttpError" }))
    assert.are.equal(6, prom.value(doc, "vertexops_calls_total"))
    assert.are.equal(6, prom.value(doc, "vertexops_call_duration_seconds_count"))
    assert.are.equal(2, prom.value(doc, "vertexops_retries_total", { call = "cancel", reason = "http_503" }))
    assert.are.equal(2, prom.value(doc, "vertexops_retries_total"))
  end)

  it("shows every worker's counts in each scrape, whichever worker answers it", function()
    traffic()
    local _, first = scrape()
    -- new connections: the kernel (reuseport) spreads them over both workers
    for _ = 1, 10 do
      local _, again = scrape()
      assert.are.equal(first, again)
    end
    local workers = app:result [[
      local n = 0
      for _, k in ipairs(ngx.shared.vertexops:get_keys(0)) do
        if k:match("^pid ") then n = n + 1 end
      end
      return n]]
    print(("(/probe was served by %d worker(s))"):format(workers))
  end)
end)
