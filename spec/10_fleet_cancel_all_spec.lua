-- cancel_all: a listing streamed into a bounded window of cancels, then (wait = true) the wait for
-- them; the fake's listing (cursor page tokens, pageSize cap, bulk creation). (The CLI's
-- cancel-all: spec/11_cli_cancel_all_spec.lua.)
local cjson = require "cjson"
local vertexops = require "vertexops"
local safe = require "vertexops.safe"
local H = require "support.helper"

local function names_of(entries)
  local out = {}
  for _, e in ipairs(entries) do out[#out + 1] = e.name end
  table.sort(out)
  return out
end

-- the most requests the server had in flight at once (summed over connections: an upper bound)
local function peak_in_flight(log)
  local per = {}
  for _, e in ipairs(log) do per[e.connection] = math.max(per[e.connection] or 0, e.concurrent) end
  local sum = 0
  for _, v in pairs(per) do sum = sum + v end
  return sum
end

describe("the fake's listing", function()
  local fake = H.fake_client()
  local server, client
  before_each(function() server, client = fake.server, fake.client end)

  it("creates operations by the thousand in one control request", function()
    local made = server:create_many(5000, { done_after = 3600 })
    assert.are.equal(5000, made.count)
    assert.are.equal(H.NAME .. "1001", made.first)
    assert.are.equal(H.NAME .. "6000", made.last)
    assert.is_false(client:get(made.last).done == true)
  end)

  it("caps pageSize at 1000 and pages on with a token", function()
    server:create_many(1500, {})
    local page = client:list(H.PARENT, nil, { page_size = 5000 })
    assert.are.equal(1000, #page.operations)
    local rest = client:list(H.PARENT, nil, { page_size = 5000, page_token = page.next_page_token })
    assert.are.equal(500, #rest.operations)
    assert.is_nil(rest.next_page_token)
  end)

  it("keeps a page token valid while the operations it passed change state", function()
    server:create_many(30, { done_after = 3600 })
    local first = client:list(H.PARENT, nil, { page_size = 10, filter = "done=false" })
    for _, op in ipairs(first.operations) do client:cancel(op.name) end
    local second = client:list(H.PARENT, nil, { page_size = 10, filter = "done=false",
                                                page_token = first.next_page_token })
    -- the next ten, neither skipping ten (as an offset into the shrunk list would) nor repeating
    assert.are.equal(H.NAME .. "1011", second.operations[1].name)
    assert.are.equal(10, #second.operations)
  end)

  it("names operations by project number in number mode, reached by ID or number", function()
    server:config { project_number = "123456789012" }
    local op = server:create { done_after = 3600 }
    local numbered = "projects/123456789012/locations/us-central1/operations/1001"
    assert.are.equal(numbered, op.name)
    assert.are.equal(numbered, client:list(H.PARENT).operations[1].name)
    assert.are.equal(numbered, client:get(H.NAME .. "1001").name)
    assert.are.equal(numbered, client:get(numbered).name)
    assert.are.equal(H.NAME .. "1001", server:log("get")[1].name) -- the log: as the request gave it
    server:reset()
    assert.are.equal(H.NAME .. "1001", server:create {}.name)
  end)

  it("refuses a page token it did not give with 400", function()
    local err = H.raises(client.list, client, H.PARENT, nil, { retry = false, page_size = 1, page_token = "bogus" })
    assert.are.equal(400, err.code)
  end)
end)

describe("cancel_all", function()
  local fake = H.fake_client()
  local server, client
  before_each(function() server, client = fake.server, fake.client end)

  it("cancels every running operation of the parent, once each, and counts them", function()
    server:create_many(300, { done_after = 3600 })
    server:create_many(20, { done = true })
    local t = H.fake_time()
    local s = client:cancel_all(H.PARENT, nil, { clock = t.clock, sleep = t.sleep })
    assert.are.equal(300, s.listed)
    assert.are.equal(300, s.cancelled)
    assert.are.same({}, s.failed)
    local cancels, seen = server:log("cancel"), {}
    assert.are.equal(300, #cancels)
    for _, e in ipairs(cancels) do
      assert.is_nil(seen[e.name])
      seen[e.name] = true
    end
    assert.are.equal(#server:log(), s.requests)
    assert.are.equal(0, s.elapsed) -- read on the call's clock, which nothing moved
  end)

  it("lists with filter done=false and the largest page by default", function()
    server:create_many(3, {})
    client:cancel_all(H.PARENT)
    assert.are.equal("filter=done%3Dfalse&pageSize=1000", server:log("list")[1].query)
  end)

  it("keeps at most max_in_flight requests in flight, the page fetch among them", function()
    server:create_many(120, { done_after = 3600 })
    server:config { hold = 0.03 }
    local s = client:cancel_all(H.PARENT, nil, { max_in_flight = 8, page_size = 50 })
    assert.are.equal(120, s.cancelled)
    local log = server:log()
    assert.is_true(peak_in_flight(log) <= 8, "in flight: " .. peak_in_flight(log))
    assert.is_true(peak_in_flight(log) >= 6, "no concurrency: " .. peak_in_flight(log)) -- it does use the window
    assert.are.equal(1, server:connections())
  end)

  it("holds one page at a time: the next page is asked for once the last one is all sent", function()
    server:create_many(120, { done_after = 3600 })
    client:cancel_all(H.PARENT, nil, { max_in_flight = 4, page_size = 50 })
    local log, lists, cancels_before = server:log(), 0, {}
    for _, e in ipairs(log) do
      if e.call == "list" then
        lists = lists + 1
        cancels_before[lists] = 0
        for _, f in ipairs(log) do
          if f == e then break end
          if f.call == "cancel" then cancels_before[lists] = cancels_before[lists] + 1 end
        end
      end
    end
    -- the server logs requests as it takes them: up to max_in_flight - 1 cancels sent before a list
    -- may be taken after it, never more, and never a cancel of a page not yet listed
    assert.are.equal(3, #cancels_before)
    for k, n in ipairs(cancels_before) do
      local sent = (k - 1) * 50
      assert.is_true(n <= sent and n >= sent - 3, ("list %d came after %d cancels"):format(k, n))
    end
  end)

  it("reports progress as it goes", function()
    server:create_many(250, {})
    local calls = {}
    client:cancel_all(H.PARENT, nil, { progress = function(c) calls[#calls + 1] = c end, page_size = 100 })
    assert.is_true(#calls >= 3)
    local last = calls[#calls]
    assert.are.equal("cancel", last.phase)
    assert.are.equal(250, last.listed)
    assert.are.equal(250, last.cancelled)
    assert.are.equal(0, last.failed)
    assert.are.equal(0, last.in_flight)
    for i = 2, #calls do assert.is_true(calls[i].cancelled >= calls[i - 1].cancelled) end
  end)

  it("lists each failed cancel with its error object and cancels the rest", function()
    server:create_many(40, {})
    server:fault { match = "cancel", status = 400, times = 3 }
    local s = client:cancel_all(H.PARENT, nil, { max_in_flight = 1 })
    assert.are.equal(37, s.cancelled)
    assert.are.equal(3, #s.failed)
    assert.are.same({ H.NAME .. "1001", H.NAME .. "1002", H.NAME .. "1003" }, names_of(s.failed))
    for _, f in ipairs(s.failed) do
      assert.is_true(vertexops.is(f.error, "HttpError"))
      assert.are.equal(400, f.error.code)
    end
  end)

  it("retries a cancel on 503 (the POST rules) and not on 502", function()
    server:create_many(5, {})
    server:fault { match = "cancel", status = 503, times = 2 }
    local s = client:cancel_all(H.PARENT, nil, { max_in_flight = 1, retry = { initial_delay = 0.01 } })
    assert.are.equal(5, s.cancelled)
    assert.are.equal(5 + 2 + 1, s.requests)
    server:reset()
    server:create_many(5, {})
    server:fault { match = "cancel", status = 502 }
    s = client:cancel_all(H.PARENT, nil, { max_in_flight = 1, retry = { initial_delay = 0.01 } })
    assert.are.equal(1, #s.failed)
    assert.are.equal(502, s.failed[1].error.code)
    assert.are.equal(5 + 1, s.requests)
  end)

  it("raises a failed listing's error with the summary so far", function()
    server:create_many(30, {})
    -- the second page fails for good
    local ok, err = pcall(client.cancel_all, client, H.PARENT, nil, { page_size = 10, retry = false,
      progress = function(c) if c.listed == 10 and c.cancelled == 0 then server:fault { match = "list", status = 403 } end end })
    assert.is_false(ok)
    assert.is_true(vertexops.is(err, "HttpError"))
    assert.are.equal(403, err.code)
    assert.are.equal(10, err.summary.listed)
    assert.are.equal(10, err.summary.cancelled)
  end)

  it("refuses a page-token loop (ResponseTypeError with the summary)", function()
    server:create_many(3, {})
    server:fault { match = "list", next_page_token = "again", times = 1e9 }
    local err = H.raises(client.cancel_all, client, H.PARENT)
    assert.is_true(vertexops.is(err, "ResponseTypeError"))
    assert.is_table(err.summary)
  end)

  it("checks its options and the parent before any I/O", function()
    local function tag(opts, parent)
      local err = H.raises(client.cancel_all, client, parent or H.PARENT, nil, opts)
      -- the message names the option, or the parent
      assert.matches(next(opts) and "option '" .. next(opts) .. "'" or "parent ", err.message, 1, true)
      return H.tags(err)
    end
    assert.are.equal("ValueError", tag { max_in_flight = 0 })
    assert.are.equal("TypeError", tag { max_in_flight = 1.5 })
    assert.are.equal("TypeError", tag { wait = "yes" })
    assert.are.equal("ValueError", tag { wait_by = "psychic" })
    assert.are.equal("ValueError", tag({}, "projects/p/operations"))
    assert.are.same({}, server:log())
  end)

  it("is a module function and a vertexops.safe function", function()
    server:create_many(2, {})
    local s = vertexops.cancel_all(H.PARENT, nil, H.opts(server))
    assert.are.equal(2, s.cancelled)
    server:fault { match = "list", status = 403 }
    local res, err = safe.cancel_all(H.PARENT, nil, H.opts(server))
    assert.is_nil(res)
    assert.are.equal(403, err.code)
  end)

  -- a page of the listing, as the service sends it: entries are names, or raw JSON objects ("{...}")
  local function listing(entries)
    local ops = {}
    for i, e in ipairs(entries) do ops[i] = e:sub(1, 1) == "{" and e or cjson.encode { name = e } end
    return '{"operations":[' .. table.concat(ops, ","):gsub("\\/", "/") .. "]}"
  end
  local function sent(call)
    local out = {}
    for _, e in ipairs(server:log(call)) do out[#out + 1] = e.name end
    table.sort(out)
    return out
  end

  describe("a listing that repeats a name", function()
    it("cancels the name once, counting the repeat in duplicates, not in listed", function()
      local a = server:create { done_after = 3600 }
      local b = server:create { done_after = 3600 }
      server:fault { match = "list", body = listing { a.name, b.name, a.name, a.name } }
      local s = client:cancel_all(H.PARENT)
      assert.are.same({ a.name, b.name }, sent("cancel"))
      assert.are.equal(2, s.listed)
      assert.are.equal(2, s.cancelled)
      assert.are.equal(2, s.duplicates)
      assert.are.equal(s.listed, s.cancelled + #s.failed + #s.skipped)
    end)

    it("tells apart names alike as numbers (7 and 007; 2^53 and 2^53 + 1)", function()
      local ids = { "7", "007", "9007199254740992", "9007199254740993", "18446744073709551617", "1" }
      local names = {}
      for i, id in ipairs(ids) do names[i] = H.NAME .. id end
      names[#names + 1] = "projects/test-project/locations/us-central1/trainingPipelines/1/operations/1"
      server:fault { match = "list", body = listing(names) }
      local s = client:cancel_all(H.PARENT)
      assert.are.equal(#names, #server:log("cancel"))
      assert.are.equal(#names, s.listed)
      assert.are.equal(0, s.duplicates)
    end)

    for _, by in ipairs { "get", "list", "auto" } do
      it(("with wait = true, wait_by = %s, ends when each name has ended (no wait for a repeat)"):format(by), function()
        local t = H.virtual_time(server)
        local a = server:create { done_after = 3600 }
        local b = server:create { done_after = 3600 }
        server:fault { match = "list", body = listing { a.name, b.name, a.name } }
        local s = client:cancel_all(H.PARENT, nil, H.timed_opts(server, t, { wait = true, wait_by = by, timeout = 600 }))
        assert.are.equal(1, s.wait.rounds)
        assert.are.same({}, t.delays)
        table.sort(s.wait.cancelled)
        assert.are.same({ a.name, b.name }, s.wait.cancelled)
        assert.are.equal(1, s.duplicates)
      end)
    end
  end)

  describe("a listing's bad entries", function()
    it("fails an entry without a name or with a name the grammar refuses (ResponseTypeError), and goes on", function()
      local ok = server:create { done_after = 3600 }
      server:fault { match = "list", body = listing { '{"done":false}', H.NAME .. "../x", H.NAME .. "a%2Fb", ok.name } }
      local s = client:cancel_all(H.PARENT)
      assert.are.same({ ok.name }, sent("cancel"))
      assert.are.equal(1, s.cancelled)
      assert.are.equal(3, #s.failed)
      for _, f in ipairs(s.failed) do
        assert.are.equal("ResponseTypeError", H.tags(f.error), tostring(f.error))
      end
      assert.is_nil(s.failed[1].name)
      assert.matches("page 1 operations%[1%] has no name", s.failed[1].error.message)
      assert.are.equal(H.NAME .. "../x", s.failed[2].name)
      assert.are.equal("ValueError", H.tags(s.failed[2].error.cause)) -- what the grammar said
      assert.are.equal(4, s.listed)
      assert.are.equal(s.listed, s.cancelled + #s.failed + #s.skipped)
    end)
  end)

  describe("the parent's bounds", function()
    local VICTIM = "projects/victim-project/locations/us-central1/operations/7"
    local ELSEWHERE = "projects/test-project/locations/europe-west4/operations/8"
    local function foreign_listing()
      server:create { done_after = 3600 }
      server:create { name = VICTIM, done_after = 3600 }
      server:create { name = ELSEWHERE, done_after = 3600 }
      server:fault { match = "list", body = listing { H.NAME .. "1001", VICTIM, ELSEWHERE } }
    end

    it("never cancels another project's or location's operation: skipped as outside_parent", function()
      foreign_listing()
      local s = client:cancel_all(H.PARENT)
      assert.are.same({ H.NAME .. "1001" }, sent("cancel"))
      assert.are.same({ { name = VICTIM, reason = "outside_parent" }, { name = ELSEWHERE, reason = "outside_parent" } },
        s.skipped)
      assert.are.equal(3, s.listed)
      assert.are.equal(1, s.cancelled)
      assert.are.equal(s.listed, s.cancelled + #s.failed + #s.skipped)
    end)

    it("skips them the same with a region given", function()
      foreign_listing()
      local s = client:cancel_all(H.PARENT, "us-central1")
      assert.are.same({ H.NAME .. "1001" }, sent("cancel"))
      assert.are.same({}, s.failed)
      assert.are.equal(2, #s.skipped)
    end)

    describe("when the service names operations by project number", function()
      local NUMBER = "123456789012"
      local NUMBERED = "projects/" .. NUMBER .. "/locations/us-central1/operations/"
      before_each(function() server:config { project_number = NUMBER } end)

      it("cancels them, given the parent by project ID (the fake's number mode)", function()
        server:create_many(5, { done_after = 3600 })
        local s = client:cancel_all(H.PARENT)
        assert.are.equal(5, s.cancelled)
        assert.are.same({}, s.skipped)
        assert.are.equal(NUMBERED .. "1001", sent("cancel")[1])
        assert.are.equal(H.PARENT, server:log("list")[1].name) -- asked by ID, answered by number
      end)

      it("waits for them, by re-listing and by GET", function()
        for _, by in ipairs { "list", "get" } do
          server:reset()
          server:config { project_number = NUMBER }
          server:create_many(3, { done_after = 3600 })
          local s = client:cancel_all(H.PARENT, nil, { wait = true, wait_by = by })
          table.sort(s.wait.cancelled)
          assert.are.same({ NUMBERED .. "1001", NUMBERED .. "1002", NUMBERED .. "1003" }, s.wait.cancelled, by)
        end
        assert.are.equal(NUMBERED .. "1001", sent("get")[1])
      end)

      it("skips a second project number and another project ID in the same listing", function()
        server:create_many(2, { done_after = 3600 })
        local other_number = "projects/987654321098/locations/us-central1/operations/5"
        server:fault { match = "list", body = listing { NUMBERED .. "1001", other_number, VICTIM, NUMBERED .. "1002" } }
        local s = client:cancel_all(H.PARENT)
        assert.are.same({ NUMBERED .. "1001", NUMBERED .. "1002" }, sent("cancel"))
        assert.are.same({ other_number, VICTIM }, names_of(s.skipped))
        assert.are.equal(s.listed, s.cancelled + #s.failed + #s.skipped)
      end)

      it("takes an operation named by ID and by number as one: cancelled once", function()
        server:create_many(1, { done_after = 3600 })
        server:fault { match = "list", body = listing { NUMBERED .. "1001", H.NAME .. "1001" } }
        local s = client:cancel_all(H.PARENT)
        assert.are.same({ NUMBERED .. "1001" }, sent("cancel"))
        assert.are.equal(1, s.duplicates)
      end)

      it("takes a parent given by number as the number: another number is outside", function()
        server:create_many(1, { done_after = 3600 })
        local other_number = "projects/987654321098/locations/us-central1/operations/5"
        server:fault { match = "list", body = listing { other_number, NUMBERED .. "1001" } }
        local s = client:cancel_all("projects/" .. NUMBER .. "/locations/us-central1")
        assert.are.same({ NUMBERED .. "1001" }, sent("cancel"))
        assert.are.same({ other_number }, names_of(s.skipped))
      end)
    end)
  end)

  describe("with wait = true", function()
    it("tells which ended CANCELLED and which completed anyway", function()
      server:create_many(200, { done_after = 3600 })
      local late = server:create_many(50, { done_after = 3600, cancel = "late" })
      local s = client:cancel_all(H.PARENT, nil, { wait = true })
      assert.are.equal(200, #s.wait.cancelled)
      assert.are.equal(50, #s.wait.completed)
      assert.are.same({}, s.wait.failed)
      assert.are.equal(late.last, s.wait.completed[50])
    end)

    it("waits by re-listing when that costs fewer requests than a GET each", function()
      server:create_many(250, { done_after = 3600 })
      local s = client:cancel_all(H.PARENT, nil, { wait = true, page_size = 100 })
      assert.are.equal(3, s.wait.list_requests)
      assert.are.equal(0, s.wait.get_requests)
      assert.are.equal(0, #server:log("get"))
    end)

    it("waits with a GET each once a full listing is known to cost more", function()
      -- on the fake's virtual clock: the 5 end at one instant, whatever the machine's load (on the
      -- real clock their creations spread and they ended in different rounds: 16 GETs, not 20)
      local t = H.virtual_time(server)
      server:create_many(2000, { done = true })
      server:create_many(5, { done_after = 1, cancel = "ignore" }) -- they end 1 s on, cancelled or not
      local s = client:cancel_all(H.PARENT, nil,
        H.timed_opts(server, t, { wait = true, page_size = 100, polling = { initial_delay = 0.2 } }))
      assert.are.equal(5, #s.wait.completed)
      -- round 1 lists everything (21 pages); later rounds ask each of the 5 instead
      assert.are.equal(1 + 21, #server:log("list"))
      assert.are.equal(21, s.wait.list_requests)
      assert.is_true(s.wait.rounds >= 2)
      assert.are.equal(5 * (s.wait.rounds - 1), s.wait.get_requests)
    end)

    it("follows wait_by when given", function()
      server:create_many(20, { done_after = 3600 })
      local s = client:cancel_all(H.PARENT, nil, { wait = true, wait_by = "get" })
      assert.are.equal(20, s.wait.get_requests)
      assert.are.equal(20, #s.wait.cancelled)
    end)

    it("reports an operation that ended with another error as failed, with an OperationError", function()
      local op = server:create { done_after = 3600, cancel = "late", outcome = "error" }
      local s = client:cancel_all(H.PARENT, nil, { wait = true })
      assert.are.equal(op.name, s.wait.failed[1].name)
      assert.is_true(vertexops.is(s.wait.failed[1].error, "OperationError"))
    end)

    it("reports wait-phase progress", function()
      server:create_many(10, { done_after = 3600 })
      local phases = {}
      client:cancel_all(H.PARENT, nil, { wait = true, progress = function(c) phases[c.phase] = c end })
      assert.are.equal(0, phases.wait.pending)
      assert.are.equal(10, phases.wait.cancelled)
    end)
  end)

  describe("the deadline", function()
    it("bounds the cancels: TimeoutError with the summary, every listed operation accounted for", function()
      server:create_many(100, { done_after = 3600 })
      server:config { hold = 0.1 }
      local t0 = vertexops.clock()
      local err = H.raises(client.cancel_all, client, H.PARENT, nil, { timeout = 0.5, max_in_flight = 2 })
      local took = vertexops.clock() - t0
      assert.is_true(vertexops.is(err, "TimeoutError"))
      H.within(took, 0.5, "cancel_all") -- 100 cancels two at a time, each held 0.1 s, would take 5 s
      local s = err.summary
      assert.is_true(s.cancelled < 100)
      assert.are.equal(s.listed, s.cancelled + #s.failed)
      for _, f in ipairs(s.failed) do assert.is_true(vertexops.is(f.error, "TimeoutError")) end
    end)

    it("bounds the wait: the names still running come with the TimeoutError", function()
      -- on the fake's virtual clock: the listing and the cancel take no time of the 1 s deadline (on
      -- the real clock a busy machine could spend it before the cancel, and the summary had no wait)
      local t = H.virtual_time(server)
      local op = server:create { done_after = 3600, cancel = "ignore" }
      local err = H.raises(client.cancel_all, client, H.PARENT, nil, H.timed_opts(server, t, { wait = true, timeout = 1,
        polling = { initial_delay = 0.1 } }))
      local slept = 0
      for _, d in ipairs(t.delays) do slept = slept + d end
      assert.is_true(#t.delays > 0 and slept <= 1, ("slept %g s in %d sleeps"):format(slept, #t.delays))
      assert.is_true(vertexops.is(err, "TimeoutError"))
      assert.are.same({ op.name }, err.summary.wait.running)
      assert.are.equal(1, err.summary.cancelled)
    end)
  end)

  describe("non-blocking", function()
    it("runs under client:start(), each poll returning at once", function()
      server:create_many(20, { done_after = 3600, cancel = "late" })
      server:fault { match = "cancel", delay = H.HOLD, times = 20 } -- one window of cancels, held
      local r = client:start("cancel_all", H.PARENT, nil, { max_in_flight = 20, page_size = 25, wait = true })
      local polls, slowest = 0, 0
      while true do
        local t0 = vertexops.clock()
        local done = r:poll()
        slowest = math.max(slowest, vertexops.clock() - t0)
        polls = polls + 1
        if done then break end
        vertexops.sleep(0.002)
      end
      local _, s = r:result()
      assert.are.equal(20, s.cancelled)
      assert.are.equal(20, #s.wait.completed)
      assert.is_true(polls > 10, polls .. " polls")
      H.not_blocked(slowest, "the slowest poll") -- never waits for the held answers
    end)

    it("finishes under req:wait()", function()
      server:create_many(30, {})
      local s = client:start("cancel_all", H.PARENT, nil, { max_in_flight = 5 }):wait()
      assert.are.equal(30, s.cancelled)
    end)
  end)
end)
