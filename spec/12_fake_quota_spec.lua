-- The fake's request quota (docs/fake.md, "Quota"; lua/vertexops/testing/quota.lua): per project
-- and region, at most `requests` of Vertex's calls in any `per` seconds, on the server's clock
-- (virtual or real); past it Google's 429 RESOURCE_EXHAUSTED with ErrorInfo, QuotaFailure and
-- RetryInfo. Off by default. Witnesses: the answers, the request log, stats(), the virtual clock.
local core = require "vertexops.core"
local H = require "support.helper"

local PARENT = H.PARENT

local function type_of(d) return d["@type"]:match("[^/]+$") end

local function detail(err, t)
  for _, d in ipairs(err.details or {}) do
    if type_of(d) == t then return d end
  end
end

describe("the fake's quota", function()
  local fake = H.fake_server()
  local server, h
  before_each(function()
    server = fake.server
    h = core.handle()
  end)
  after_each(function() h:close() end)

  -- One GET of name with the server's token, no retry: ok, result_or_err.
  local function get(name)
    local req = core.build("get", name, nil, { endpoint = server.endpoint })
    req.ca_file = server.ca_file
    return h:call(req, "test-token")
  end

  local function gets(name, n)
    local out = {}
    for i = 1, n do out[i] = (get(name)) end
    return out
  end

  it("is off by default: every request is answered", function()
    assert.are.same({ off = true }, server:quota())
    local op = server:create {}
    assert.are.same({ true, true, true, true, true }, gets(op.name, 5))
    assert.are.equal(0, server:stats().quota_exceeded)
  end)

  it("answers a call past the quota as Google does: 429 RESOURCE_EXHAUSTED, ErrorInfo, QuotaFailure, RetryInfo", function()
    server:virtual_time(1000)
    server:quota { requests = 3, per = 60 }
    local op = server:create {}
    assert.are.same({ true, true, true }, gets(op.name, 3))
    local ok, err = get(op.name)
    assert.is_false(ok)
    assert.are.equal(429, err.code)
    assert.are.equal("RESOURCE_EXHAUSTED", err.status)
    assert.is_truthy(err.message:find("Quota exceeded for quota metric", 1, true), err.message)
    assert.are.equal("RATE_LIMIT_EXCEEDED", err.reason)
    assert.are.equal("googleapis.com", err.domain)
    assert.are.equal("us-central1", err.metadata.quota_location)
    assert.are.equal("3", err.metadata.quota_limit_value)
    local qf = assert(detail(err, "google.rpc.QuotaFailure"))
    assert.are.equal("projects/test-project", qf.violations[1].subject)
    assert.are.equal("60s", assert(detail(err, "google.rpc.RetryInfo")).retryDelay)
  end)

  it("counts on the virtual clock: a window of per seconds slides, RetryInfo says when a slot frees", function()
    server:virtual_time(1000)
    server:quota { requests = 3, per = 60 }
    local op = server:create {}
    assert.are.same({ true, true }, gets(op.name, 2)) -- at 1000
    server:advance(30)
    assert.are.same({ true, false }, gets(op.name, 2)) -- at 1030: the third, then past it
    server:advance(29.5)
    local ok, err = get(op.name) -- at 1059.5: the two of 1000 are in the window for 0.5 s more
    assert.is_false(ok)
    assert.are.equal("0.5s", detail(err, "google.rpc.RetryInfo").retryDelay)
    server:advance(0.5)
    assert.are.same({ true, true, false }, gets(op.name, 3)) -- at 1060: both slots of 1000 free
    local _, err2 = get(op.name)
    assert.are.equal("30s", detail(err2, "google.rpc.RetryInfo").retryDelay) -- the one of 1030
  end)

  it("counts each project and region on its own", function()
    server:virtual_time(1000)
    server:quota { requests = 1 }
    local a = server:create {}
    local b = server:create { location = "europe-west4" }
    local c = server:create { project = "other-project" }
    assert.are.same({ true, false }, gets(a.name, 2))
    assert.are.same({ true, false }, gets(b.name, 2))
    assert.are.same({ true, false }, gets(c.name, 2))
  end)

  it("counts a project's number and its ID as one project", function()
    server:virtual_time(1000)
    server:config { project_number = "123456", project_id = "test-project" }
    server:quota { requests = 1 }
    local op = server:create {}
    assert.is_true((get(op.name)))
    local by_id = op.name:gsub("^projects/123456/", "projects/test-project/")
    assert.is_false((get(by_id)))
  end)

  it("does not count refused requests", function()
    server:virtual_time(1000)
    server:quota { requests = 2, per = 60 }
    local op = server:create {}
    assert.are.same({ true, true, false, false, false }, gets(op.name, 5))
    server:advance(60) -- the two accepted leave the window: two slots, whatever was refused
    assert.are.same({ true, true, false }, gets(op.name, 3))
  end)

  it("marks each refused request in the log and counts them in stats()", function()
    server:virtual_time(1000)
    server:quota { requests = 1 }
    local op = server:create {}
    gets(op.name, 3)
    local log = server:log("get")
    assert.are.equal(3, #log)
    assert.is_nil(log[1].quota_exceeded)
    assert.is_true(log[2].quota_exceeded)
    assert.is_true(log[3].quota_exceeded)
    assert.are.equal(2, server:stats().quota_exceeded)
    assert.are.equal(2, server:quota().exceeded)
  end)

  it("counts cancel, list, delete and wait too", function()
    server:virtual_time(1000)
    server:quota { requests = 4 }
    local op = server:create {}
    local v = require "vertexops"
    local o = H.opts(server, { retry = false })
    v.cancel(op.name, nil, o)
    v.list(PARENT, nil, o)
    v.wait_once(op.name, nil, 0, o)
    v.delete(op.name, nil, o)
    local err = H.raises(v.list, PARENT, nil, o)
    assert.are.equal(429, err.code)
  end)

  it("is taken away by quota(false); reset() forgets it", function()
    server:virtual_time(1000)
    server:quota { requests = 1 }
    local op = server:create {}
    assert.are.same({ true, false }, gets(op.name, 2))
    server:quota(false)
    assert.are.same({ true, true }, gets(op.name, 2))
    server:quota { requests = 1 }
    server:reset()
    assert.are.same({ off = true }, server:quota())
  end)

  it("refuses a bad quota with 400 naming the field, changing nothing", function()
    for _, q in ipairs { { requests = 0 }, { requests = 1.5 }, { requests = "10" }, { per = 60 },
                         { requests = 1, per = 0 }, { requests = 1, colour = 1 } } do
      local err = H.raises(server.quota, server, q)
      assert.are.equal(400, err.code)
    end
    assert.are.same({ off = true }, server:quota())
  end)

  it("counts on the real clock when no virtual one is set", function()
    -- a window far longer than three gets take on a busy machine (0.5 s let one through at load 8)
    server:quota { requests = 2, per = 3 }
    local op = server:create {}
    assert.are.same({ true, true, false }, gets(op.name, 3))
    local after = core.clock() -- both admitted gets are older than this
    while core.clock() - after < 3.1 do core.sleep(0.05) end
    assert.are.same({ true }, gets(op.name, 1))
  end)

  it("lets a client that honours RetryInfo through: its retry waits the delay the 429 gave", function()
    local t = H.virtual_time(server, 1000)
    server:quota { requests = 1, per = 60 }
    local op = server:create {}
    local v = require "vertexops"
    v.get(op.name, nil, H.timed_opts(server, t))
    v.get(op.name, nil, H.timed_opts(server, t))
    assert.are.same({ 60 }, t.delays)
    assert.are.equal(3, #server:log("get"))
  end)
end)

describe("the fake's quota given to start()", function()
  it("is in force from the start and again after reset()", function()
    local server = H.fake.start { quota = { requests = 1, per = 3600 } }
    finally(function() server:stop() end)
    local o = H.opts(server, { retry = false })
    local op = server:create {}
    local v = require "vertexops"
    v.get(op.name, nil, o)
    assert.are.equal(429, H.raises(v.get, op.name, nil, o).code)
    server:reset()
    op = server:create {}
    v.get(op.name, nil, o)
    assert.are.equal(429, H.raises(v.get, op.name, nil, o).code)
  end)

  it("refuses a bad one before nginx starts: TypeError, ValueError", function()
    assert.is_true(core.is(H.raises(H.fake.start, { quota = 10 }), "TypeError"))
    assert.is_true(core.is(H.raises(H.fake.start, { quota = { requests = "x" } }), "TypeError"))
    assert.is_true(core.is(H.raises(H.fake.start, { quota = { requests = 0 } }), "ValueError"))
    assert.is_true(core.is(H.raises(H.fake.start, { quota = { requests = 5, per = -1 } }), "ValueError"))
  end)
end)
