-- metrics:hooks() as a client's only hooks make no garbage of their own per call, however many calls
-- are in flight at once (lua/vertexops/hooks.lua: a call's and an attempt's records are kept as
-- spares for the next calls, up to 1,024 of each; the call's record carries the two fields
-- Client:_run writes (requests, status), so no context table is made per call; the FFI clock is read as 32-bit words,
-- no int64 cdata per reading). Inside nginx, at 1,000 connections, up to 1,000 calls are in flight
-- in one worker: with 64 spares the records of the rest were made and collected per call, and the
-- hooks' garbage per request was twice what one connection showed (issue 19 §4).
-- Witness: collectgarbage("count") with the collector stopped, over rounds in which every call
-- starts (suspended mid-exchange in a coroutine), then every call ends; the exchange is
-- stubbed (Client:_run replaced on the instance by one that does what it does with an observer),
-- so only the hooks' and the recorder's allocations are counted. On LuaJIT the JIT is off while
-- counting: inside nginx a call's end runs in the interpreter (issue 19 §4), which sinks
-- no allocation. Before: 104-208 bytes a call with one in flight, 450-660 with 1,000; now 0 (below
-- 8: after other spec files Lua 5.4 may still grow a table of its own by a KB over the rounds).
-- Contract: docs/contract.md, "Metrics".
local vertexops = require "vertexops"
local metrics = require "vertexops.metrics"
local hooks_mod = require "vertexops.hooks"

local EMPTY = {}

-- a client with metrics:hooks() whose exchanges are stubbed: each attempt yields between its
-- start and its end (in flight), then ends with a 200 of 120 bytes
local function stubbed_client(m)
  local client = vertexops.client { token = "test-token", endpoint = "http://127.0.0.1:9", hooks = m:hooks() }
  client._run = function(self, o, req, _, _, ob, st)
    assert(ob == hooks_mod.observe(self, o))
    local _, a = ob:attempt_start(req, 1, true, st.t0)
    coroutine.yield()
    a.status, a.total, a.bytes_sent, a.bytes_received = 200, 0.002, 300, 120
    st.requests, st.status = 1, ob:attempt_end(a, true, EMPTY)
    return true, EMPTY
  end
  return client
end

-- bytes allocated per call over `rounds` rounds of `inflight` calls in flight at once (after as
-- many rounds of warm-up: spares made, the histogram's waiting list grown to its fold)
local function garbage_per_call(inflight, rounds)
  local m = metrics.new()
  local client = stubbed_client(m)
  local o = client:_options(nil)
  local req = client:_build("cancel", "projects/p/locations/us-central1/operations/1", nil, o)
  -- a round as nginx's event loop has them: every call starts (and waits for its answer), then
  -- every answer comes and its call ends
  local workers = {}
  for i = 1, inflight do
    workers[i] = coroutine.create(function()
      while true do
        client:_run_call(o, req, nil, "cancel", "projects/p/locations/us-central1/operations/1")
        coroutine.yield()
      end
    end)
  end
  local function round()
    for i = 1, inflight do assert(coroutine.resume(workers[i])) end
    for i = 1, inflight do assert(coroutine.resume(workers[i])) end
  end
  local jit = rawget(_G, "jit")
  for _ = 1, rounds + math.ceil(metrics._FOLD_AT / inflight) + 2 do round() end
  if jit then jit.off(); jit.flush() end
  collectgarbage()
  round() -- (a full collection shrinks the coroutines' stacks: they grow back here, not below)
  collectgarbage("stop")
  local before = collectgarbage("count")
  for _ = 1, rounds do round() end
  local after = collectgarbage("count")
  collectgarbage("restart")
  if jit then jit.on() end
  client:close()
  return (after - before) * 1024 / (inflight * rounds), m
end

describe("metrics:hooks() as a client's only hooks", function()
  it("make no garbage per call with one call in flight", function()
    local per = garbage_per_call(1, 2000)
    assert.is_true(per < 8, ("%.1f bytes per call"):format(per))
  end)

  it("make no garbage per call with 1,000 calls in flight at once", function()
    local per, m = garbage_per_call(1000, 3)
    assert.is_true(per < 8, ("%.1f bytes per call"):format(per))
    -- (and they counted: every call and attempt ended so far, a 200 each)
    local text = m:render()
    local calls = tonumber(text:match('vertexops_calls_total{call="cancel",status="2xx",tag=""} (%d+)'))
    assert.is_true(calls and calls >= 3000, text:sub(1, 2000))
  end)
end)
