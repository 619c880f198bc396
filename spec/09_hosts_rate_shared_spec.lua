-- make test: once
-- Option rate shared by nginx's workers (docs/contract.md, "Pacing": rate.shared_dict): a real
-- nginx (examples/openresty/nginx.conf) with WORKERS workers, each running THREADS light threads
-- that call get as fast as their permits let them for DURATION seconds (spec/support/rate_worker.lua,
-- started by a timer in every worker), against the fake's quota of Q requests per PER seconds on
-- the real clock. Each worker gets operations of its own name, so the fake's log tells the
-- workers apart. Witnesses: the fake's log (times, names, quota_exceeded) and nginx's error log.
local H = require "support.helper"
local openresty = require "support.openresty"
local rate_worker = require "support.rate_worker"

local WORKERS, THREADS, DURATION = 3, 4, 3.5
local Q, PER = 120, 2

local CONF = {
  { "worker_processes 1;", "worker_processes " .. WORKERS .. ";" },
  { "lua_shared_dict vertexops 1m;", "lua_shared_dict vertexops 1m;\n  lua_shared_dict vertexops_rate 1m;\n"
    .. "  lua_shared_dict vertexops_tiny 64k;\n  lua_shared_dict vertexops_tiny2 64k;\n"
    .. "  lua_shared_dict vertexops_reload 64k;\n"
    .. '  init_worker_by_lua_block { require("support.rate_worker").start() }' },
}

describe("option rate shared by nginx's workers (rate.shared_dict)", function()
  local box = H.fake_server()
  local server, app
  local run = 0
  setup(function() app = openresty.start(box.server, { conf = CONF }) end)
  teardown(function() app:stop() end)
  before_each(function() server = box.server end)

  -- Runs the job in every worker; returns what each reported, by worker id, and the ops' names.
  local function load(rate)
    run = run + 1
    return rate_worker.load(app, server, { run = run, workers = WORKERS, threads = THREADS,
      duration = DURATION, rate = rate, requests = Q, per = PER })
  end

  -- The most requests the fake accepted in any PER seconds (a sliding window over the log), and
  -- how many it accepted; how many it refused.
  local function busiest(log)
    local times = H.quota_log(log).times
    return H.busiest(times, PER), #times
  end
  local function refused(log) return H.quota_log(log).refused end

  local function by_name(log) return H.quota_log(log).by_name end

  it("makes the clients of one window wait for each other, on the options' clock", function()
    local op = server:create {}
    local res = app:result([[
      local now, delays = 1000, {}
      local function opts() return T.opts { rate = { requests = 1, per = 60, shared_dict = "vertexops_rate" },
        clock = function() return now end, sleep = function(s) delays[#delays + 1] = s; now = now + s end } end
      local a, b = vertexops.client(opts()), vertexops.client(opts())
      a:get(args.name)
      b:get(args.name) -- another client (as another worker would): waits for a's request to leave
      return { delays = delays, now = now }]], { name = op.name })
    assert.are.equal(1, #res.delays)
    -- the window is counted in buckets of 60 / 40 s: a request holds its place 60 to 61.5 s, and
    -- this worker (past its share) waits DEFER (0.3) of a bucket more, plus a jitter of up to a
    -- tenth of one: 60 + 1.4 * 1.5
    assert.is_true(res.delays[1] >= 60 and res.delays[1] <= 62.1, res.delays[1])
    assert.are.equal(2, #server:log("get"))
  end)

  it("ends the call with TimeoutError, nothing sent, when the shared window's permit would come after the deadline", function()
    local op = server:create {}
    local doc = app:run([[
      local now = 5000
      local o = T.opts { rate = { requests = 1, per = 60, shared_dict = "vertexops_rate" }, timeout = 10,
                         clock = function() return now end, sleep = function(s) now = now + s end }
      vertexops.client(o):get(args.name)
      return vertexops.client(o):get(args.name)]], { name = op.name })
    assert.is_false(doc.ok)
    assert.are.same({ "TimeoutError" }, doc.error.tags)
    assert.is_truthy(doc.error.message:find("shared through 'vertexops_rate'", 1, true), doc.error.message)
    assert.are.equal(1, #server:log("get"))
  end)

  it("keeps its window through a reload of nginx: the new workers go on counting in it", function()
    local op = server:create {}
    -- the built-in clock (CLOCK_MONOTONIC, one for the host): the workers before and after share it
    local CODE = [[
      local c = vertexops.client(T.opts { rate = { requests = 2, per = 60, shared_dict = "vertexops_reload" },
        timeout = args.timeout })
      local ok, err = pcall(c.get, c, args.name)
      return { pid = ngx.worker.pid(), ok = ok, tag = not ok and err.tags[1] or nil }]]
    local before = app:result(CODE, { name = op.name, timeout = 10 })
    local again = app:result(CODE, { name = op.name, timeout = 10 })
    assert.is_true(before.ok and again.ok)
    app:reload() -- (SIGHUP: the dict's zone, same name and size, is kept)
    local after = app:result(CODE, { name = op.name, timeout = 1 })
    assert.is_true(after.pid ~= before.pid and after.pid ~= again.pid, "a new worker answered")
    -- the window's two places are taken for 60 s: the new worker's permit would come after its
    -- deadline, so nothing is sent (a window lost in the reload would have let it go at once)
    assert.are.same({ ok = false, tag = "TimeoutError" }, { ok = after.ok, tag = after.tag })
    assert.are.equal(2, #server:log("get"))
  end)

  it("degrades to a local window, with a warning, when the dict is full", function()
    local op = server:create {}
    local res = app:result([[
      local tiny = ngx.shared.vertexops_tiny
      for size = 1, 300, 7 do -- every slab size full
        local i = 0
        repeat i = i + 1 until not tiny:safe_set(size .. " " .. i, string.rep("x", size))
      end
      local now, delays = 9000, {}
      local c = vertexops.client(T.opts { rate = { requests = 6, per = 60, shared_dict = "vertexops_tiny" },
        clock = function() return now end, sleep = function(s) delays[#delays + 1] = s; now = now + s end })
      for _ = 1, 3 do c:get(args.name) end -- the local window: 6 / 3 workers (none seen yet) a minute
      return { delays = delays }]], { name = op.name })
    assert.are.same({ 60 }, res.delays)
    assert.are.equal(3, #server:log("get"))
    local log = app:error_log()
    local _, warnings = log:gsub("option rate.shared_dict 'vertexops_tiny': the dict is full", "")
    assert.are.equal(1, warnings, log)
  end)

  it("degrades to requests / the participants last counted in the dict", function()
    local op = server:create {}
    local res = app:result([[
      local now, delays = 20000, {}
      local c = vertexops.client(T.opts { rate = { requests = 6, per = 60, shared_dict = "vertexops_tiny2" },
        clock = function() return now end, sleep = function(s) delays[#delays + 1] = s; now = now + s end })
      c:get(args.name) -- through the dict: this worker counts itself, the one participant
      local tiny = ngx.shared.vertexops_tiny2
      for size = 1, 300, 7 do
        local i = 0
        repeat i = i + 1 until not tiny:safe_set(size .. " " .. i, string.rep("x", size))
      end
      now = now + 5 -- a bucket of its own: the dict must store it, and cannot
      -- the local window: 6 / 1 a minute, after a window of silence (what the dict let go before
      -- it failed may still reach Google: rate.lua)
      for _ = 1, 7 do c:get(args.name) end
      return { delays = delays }]], { name = op.name })
    assert.are.same({ 60, 60 }, res.delays)
    assert.are.equal(8, #server:log("get"))
  end)

  it("keeps the workers together within the quota, fills it, and starves no worker", function()
    local reports, names = load { requests = Q, per = PER, shared_dict = "vertexops_rate" }
    local log = server:log("get")
    local most, total = busiest(log)
    local counts = by_name(log)
    print(("\nshared: %d accepted in %g s, busiest %g s: %d, per worker: %d %d %d, refused %d"):format(
      total, DURATION, PER, most, counts[names[1]] or 0, counts[names[2]] or 0, counts[names[3]] or 0, refused(log)))
    local t0, split = log[1].time, {}
    for _, e in ipairs(log) do
      local k = math.floor((e.time - t0) / PER) * 10 + (e.name == names[1] and 1 or e.name == names[2] and 2 or 3)
      split[k] = (split[k] or 0) + 1
    end
    local parts = {}
    for k, v in pairs(split) do parts[#parts + 1] = k .. "=" .. v end
    table.sort(parts)
    print(table.concat(parts, " "))
    assert.are.equal(0, refused(log))
    assert.is_true(most <= Q, most)
    -- the quota filled: Q at once, then Q each PER seconds, less a bucket's slack and the tail
    assert.is_true(total >= 0.85 * Q * DURATION / PER, total)
    for i = 1, WORKERS do
      local mine = counts[names[i]] or 0
      -- no worker starved: at least half an even share over the run (0.7 of one was measured once
      -- in make test beside other loads; the issue's 0.8 is a target for make bench's fleet rows)
      assert.is_true(mine >= 0.5 * total / WORKERS, ("worker %d: %d of %d"):format(i, mine, total))
      for tag in pairs(reports[i].errors) do assert.are.equal("TimeoutError", tag) end
    end
  end)

  it("without a shared dict, each worker's own window overshoots the quota (what the dict prevents)", function()
    load { requests = Q, per = PER }
    local log = server:log("get")
    print(("\nlocal: refused %d of %d"):format(refused(log), #log))
    assert.is_true(refused(log) > 0)
  end)

  it("degrades to a local window at rate / workers, with one warning a worker, when the dict is missing", function()
    local reports, names = load { requests = Q, per = PER, shared_dict = "no_such_dict" }
    local log = server:log("get")
    local most, total = busiest(log)
    local counts = by_name(log)
    print(("\ndegraded: %d accepted, busiest %d, per worker: %d %d %d, refused %d"):format(
      total, most, counts[names[1]] or 0, counts[names[2]] or 0, counts[names[3]] or 0, refused(log)))
    assert.are.equal(0, refused(log))
    assert.is_true(most <= Q, most)
    for i = 1, WORKERS do
      for tag in pairs(reports[i].errors) do assert.are.equal("TimeoutError", tag) end
      assert.is_true((counts[names[i]] or 0) >= Q / WORKERS, counts[names[i]])
    end
    local warnings = 0
    local seen = "option rate.shared_dict 'no_such_dict': no lua_shared_dict"
    for _ in app:error_log():gmatch(seen) do warnings = warnings + 1 end
    assert.are.equal(WORKERS, warnings)
  end)
end)
