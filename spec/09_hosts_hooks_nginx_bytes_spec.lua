-- make test: once
-- on_attempt's bytes_received over cosockets counts every byte of the answer, however many reads
-- it took (lua/vertexops/transport/cosocket.lua counts them as it reads; issue 19 §4: no C call
-- per exchange for it). Witness: two answers whose heads have the same length and whose bodies
-- differ by 100,000 bytes (the fake's `size` fault), each read in many pieces.
-- Contract: docs/contract.md, "Hooks, trace context and logs".
local H = require "support.helper"
local openresty = require "support.openresty"

describe("hooks in nginx, an answer read in many pieces over cosockets", function()
  local fake = H.fake_server()
  local server, app

  setup(function() app = openresty.start(fake.server) end)
  teardown(function() app:stop() end)
  before_each(function() server = fake.server end)

  it("count every byte of it in on_attempt's bytes_received", function()
    local op = server:create {}
    local got = {}
    for _, size in ipairs { 200000, 300000 } do
      server:fault { match = "get", size = size, times = 1 }
      local res = app:result([[
        local seen
        local hooks = { on_attempt = function(i) if i.phase == "end" then seen = i.bytes_received end end }
        pcall(vertexops.get, args.name, nil, T.opts { hooks = hooks, retry = false })
        return seen]], { name = op.name })
      got[#got + 1] = res
    end
    assert.are.equal(2, #server:log("get"))
    assert.is_true(got[1] > 200000, tostring(got[1]))
    assert.are.equal(100000, got[2] - got[1])
  end)
end)
