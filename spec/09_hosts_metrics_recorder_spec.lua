-- metrics:hooks() as a client's only hooks: lua/vertexops/hooks.lua records their call and attempt
-- ends straight into the recorder (no info table, no dispatch loop, spare records of calls and
-- attempts; issue 19 §4, the hooks' cost inside nginx). These check that nothing of that shows: a
-- histogram's bucket found without a loop is the one a search of the bounds finds, the recorder's
-- errors are still caught, counted and logged once, a hooks table whose functions are not all the
-- recorder's is called as any other, and a reused attempt record carries nothing of the one before.
local vertexops = require "vertexops"
local metrics = require "vertexops.metrics"
local prom = require "support.prometheus"
local H = require "support.helper"

-- the first i with v <= bounds[i], #bounds + 1 when none (what a histogram's buckets mean)
local function search(bounds, v)
  for i, b in ipairs(bounds) do
    if v <= b then return i end
  end
  return #bounds + 1
end

describe("metrics' bucket finder", function()
  it("finds the bucket a search of the bounds finds, at each bound, between them and past the last", function()
    for _, bounds in ipairs { metrics.DEFAULT_BUCKETS, { 5 }, { 0, 1 }, { 0.1, 0.2, 0.3 }, { 1, 2, 3, 4, 5, 6, 7, 8 },
                              { 1e-9, 0.5, 1e9 } } do
      local find = metrics._bucket_finder(bounds)
      local values = { 0, -1, 1 / 0, 1e300 }
      for _, b in ipairs(bounds) do
        values[#values + 1] = b
        values[#values + 1] = b * (1 + 1e-15) + 1e-300
        values[#values + 1] = b * (1 - 1e-15)
        values[#values + 1] = b / 2
      end
      for _, v in ipairs(values) do
        assert.are.equal(search(bounds, v), find(v), ("bounds %s, value %.17g"):format(table.concat(bounds, ","), v))
      end
    end
  end)
end)

describe("metrics:hooks() as a client's only hooks", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  it("count a recorder's errors in client:stats(), and the calls go on", function()
    local op = server:create {}
    local m = metrics.new()
    m.store.series = function() error("store broken") end
    local client = vertexops.client(H.opts(server, { hooks = m:hooks() }))
    assert.is_true(client:cancel(op.name))
    assert.is_true(client:cancel(op.name))
    assert.are.equal(2, #server:log("cancel"))
    local st = client:stats()
    assert.are.equal(4, st.hook_errors) -- 2 calls x (on_attempt + on_call), ends only
    assert.matches("^on_call: .*store broken", st.last_hook_error)
    client:close()
  end)

  it("log a recorder's error once per hook function, at warn", function()
    local op = server:create {}
    local m = metrics.new()
    m.store.series = function() error("store broken") end
    local lines = {}
    local client = vertexops.client(H.opts(server, { hooks = m:hooks(),
      log = function(level, line) if line:find("hook_error", 1, true) then lines[#lines + 1] = level .. " " .. line end end }))
    for _ = 1, 3 do client:cancel(op.name) end
    table.sort(lines)
    assert.are.equal(2, #lines)
    assert.matches("^warn vertexops hook_error hook=on_attempt ", lines[1])
    assert.matches("^warn vertexops hook_error hook=on_call ", lines[2])
    client:close()
  end)

  it("call a function put in place of the recorder's on_attempt, and still count the calls", function()
    local op = server:create {}
    local m = metrics.new()
    local seen = {}
    local h = m:hooks()
    local client = vertexops.client(H.opts(server, { hooks = { on_call = h.on_call,
      on_attempt = function(info) seen[#seen + 1] = info.phase end } }))
    client:cancel(op.name)
    assert.are.same({ "start", "end" }, seen)
    local doc = prom.parse(m:render())
    assert.are.equal(1, prom.value(doc, "vertexops_calls_total", { call = "cancel" }))
    assert.are.equal(0, prom.value(doc, "vertexops_attempts_total", { call = "cancel" }))
    client:close()
  end)

  it("count an attempt that got no answer after one that did with its own status and tag", function()
    local op = server:create {}
    local m = metrics.new()
    local t = H.fake_time()
    local client = vertexops.client(H.timed_opts(server, t, { hooks = m:hooks(), retry = false }))
    client:cancel(op.name)
    server:fault { match = "cancel", drop = "before", times = 1 }
    assert.has_error(function() client:cancel(op.name) end)
    local doc = prom.parse(m:render())
    prom.check_histograms(doc)
    local failed = prom.samples(doc, "vertexops_attempts_total")
    local labels = {}
    for _, s in ipairs(failed) do labels[#labels + 1] = s.labels.status .. "/" .. s.labels.tag .. "=" .. s.value end
    table.sort(labels)
    assert.are.equal(2, #labels, table.concat(labels, " "))
    assert.are.equal("2xx/=1", labels[2])
    assert.matches("^/%a+Error=1$", labels[1])
    client:close()
  end)
end)
