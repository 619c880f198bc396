-- metrics:hooks() skips the start events and reuses one info table per event when it is an event's
-- only hook (lua/vertexops/hooks.lua, END_ONLY: what makes it cheap per request, issue 19 §4). These
-- check that nothing of that shows: a hook chained with it still sees every start and gets tables of
-- its own, and the counts stay the fake's request log. (A client's hooks and a call's run in a chain,
-- the client's first.)
local vertexops = require "vertexops"
local metrics = require "vertexops.metrics"
local prom = require "support.prometheus"
local H = require "support.helper"

-- A hooks table keeping every info it is given (rec[i] = {event, info}).
local function keeper()
  local rec = {}
  local function on(ev) return function(info) rec[#rec + 1] = { ev, info } end end
  return rec, { on_call = on("on_call"), on_attempt = on("on_attempt"), on_token = on("on_token") }
end

local function of(rec, ev, phase)
  local out = {}
  for _, e in ipairs(rec) do
    if e[1] == ev and e[2].phase == phase then out[#out + 1] = e[2] end
  end
  return out
end

describe("metrics:hooks() chained with other hooks", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  it("leaves the start events to a hook chained after it (on_call and on_attempt, with headers)", function()
    local op = server:create {}
    local m = metrics.new()
    local rec, own = keeper()
    own.on_attempt = function(info)
      rec[#rec + 1] = { "on_attempt", info }
      if info.phase == "start" then info.headers["x-chained"] = "yes" end
    end
    local t = H.fake_time()
    local client = vertexops.client(H.timed_opts(server, t, { hooks = m:hooks() }))
    client:cancel(op.name, nil, { hooks = own })
    assert.are.equal(1, #of(rec, "on_call", "start"))
    assert.are.equal(#server:log("cancel"), #of(rec, "on_attempt", "start"))
    assert.are.equal("yes", server:log("cancel")[1].headers["x-chained"])
    assert.are.equal(1, prom.value(prom.parse(m:render()), "vertexops_calls_total"))
  end)

  it("gives a chained hook a table of its own at each end, which it may keep", function()
    local m = metrics.new()
    local rec, own = keeper()
    local t = H.fake_time()
    local client = vertexops.client(H.timed_opts(server, t, { hooks = own }))
    local o = { hooks = m:hooks() }
    local ops = { server:create {}, server:create {} }
    for _, op in ipairs(ops) do client:cancel(op.name, nil, o) end
    pcall(client.cancel, client, H.NAME .. "424242", nil, o)
    local ends = of(rec, "on_attempt", "end")
    assert.are.equal(3, #ends)
    assert.are.same({ 200, 200, 404 }, { ends[1].status, ends[2].status, ends[3].status })
    assert.are_not.equal(ends[1], ends[2])
    assert.are_not.equal(ends[1].timings, ends[2].timings)
    local calls = of(rec, "on_call", "end")
    assert.are.same({ true, true, false }, { calls[1].ok, calls[2].ok, calls[3].ok })
  end)

  it("counts, alone, each attempt of each call the fake logged (one info table reused)", function()
    local m = metrics.new()
    local t = H.fake_time()
    local o = H.timed_opts(server, t, { hooks = m:hooks() })
    for _ = 1, 3 do vertexops.cancel(server:create {}.name, nil, o) end
    server:fault { match = "get", status = 503, times = 1, retry_after = "0" }
    vertexops.get(server:create {}.name, nil, o)
    local doc = prom.parse(m:render())
    prom.check_histograms(doc)
    assert.are.equal(#server:log("cancel"), prom.value(doc, "vertexops_attempts_total", { call = "cancel" }))
    assert.are.equal(#server:log("get"), prom.value(doc, "vertexops_attempts_total", { call = "get" }))
    assert.are.equal(1, prom.value(doc, "vertexops_attempts_total", { call = "get", status = "5xx", tag = "HttpError" }))
    assert.are.equal(4, prom.value(doc, "vertexops_calls_total"))
    assert.are.equal(4, prom.value(doc, "vertexops_calls_total", { status = "2xx", tag = "" }))
  end)
end)
