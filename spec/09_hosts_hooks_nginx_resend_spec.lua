-- make test: once
-- An attempt resent over cosockets (a pooled connection the server had closed: sent once more on a
-- new one, lua/vertexops/transport/cosocket.lua) shows its hooks the answer that came: status,
-- first_byte and bytes_received are the second connection's, read as they arrive. Witness: the
-- fake's `drop = "before"` on the pooled connection's request, the worker's resend count, and the
-- on_attempt end recorded in nginx.
-- Contract: docs/contract.md, "Hooks, trace context and logs".
local H = require "support.helper"
local openresty = require "support.openresty"

describe("hooks in nginx, an attempt resent on a new connection", function()
  local fake = H.fake_server()
  local server, app

  setup(function() app = openresty.start(fake.server) end)
  teardown(function() app:stop() end)
  before_each(function() server = fake.server end)

  it("see the answer of the connection that answered: status, first_byte, bytes_received", function()
    local op = server:create {}
    server:fault { match = "get", drop = "before", times = 1 }
    local res = app:result([[
      local cosocket = require "vertexops.transport.cosocket"
      local client = vertexops.client(T.opts { retry = false })
      client:cancel(args.name) -- (a connection in the pool: the get is sent on it, and dropped)
      local before, seen = cosocket.stats.resends, nil
      local hooks = { on_attempt = function(i) if i.phase == "end" then seen = i end end }
      client:get(args.name, nil, { hooks = hooks })
      client:close()
      return { resends = cosocket.stats.resends - before, status = seen.status, first_byte = seen.timings.first_byte,
               total = seen.timings.total, received = seen.bytes_received }]], { name = op.name })
    assert.are.equal(1, res.resends)
    assert.are.equal(200, res.status)
    assert.are.equal("number", type(res.first_byte))
    assert.is_true(res.first_byte <= res.total)
    assert.is_true(res.received > 0)
  end)
end)
