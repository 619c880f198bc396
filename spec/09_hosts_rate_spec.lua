-- make test: once
-- Option rate inside nginx (docs/contract.md, "Pacing"): the cosocket transport's requests take
-- their permits like libcurl's, and a request waiting for one sleeps (ngx.sleep, or the injected
-- sleep) instead of being sent. Witnesses: the fake's log and the sleeps the handler recorded.
local H = require "support.helper"
local openresty = require "support.openresty"

describe("option rate in nginx", function()
  local fake = H.fake_server()
  local server, app
  setup(function() app = openresty.start(fake.server) end)
  teardown(function() app:stop() end)
  before_each(function() server = fake.server end)

  it("paces the cosocket transport's requests per project and location", function()
    local op = server:create {}
    local other = server:create { location = "europe-west4" }
    local res = app:result([[
      local now, delays = 1000, {}
      local o = T.opts { rate = { requests = 1, per = 60 },
                         clock = function() return now end,
                         sleep = function(s) delays[#delays + 1] = s; now = now + s end }
      local c = vertexops.client(o)
      c:get(args.name)
      c:get(args.other) -- another location: a window of its own
      c:get(args.name)
      return { delays = delays, now = now }]], { name = op.name, other = other.name })
    assert.are.same({ 60 }, res.delays)
    assert.are.equal(1060, res.now)
    local log = server:log("get")
    assert.are.equal(3, #log)
    for _, e in ipairs(log) do assert.are.equal("HTTP/1.1", e.protocol) end -- cosockets
  end)

  it("ends the call with TimeoutError, nothing sent, when the permit would come after the deadline", function()
    local op = server:create {}
    local doc = app:run([[
      local now = 1000
      local o = T.opts { rate = { requests = 1, per = 60 }, timeout = 10,
                         clock = function() return now end, sleep = function(s) now = now + s end }
      local c = vertexops.client(o)
      c:get(args.name)
      return c:get(args.name)]], { name = op.name })
    assert.is_false(doc.ok)
    assert.are.same({ "TimeoutError" }, doc.error.tags)
    assert.are.equal(1, #server:log("get"))
  end)
end)
