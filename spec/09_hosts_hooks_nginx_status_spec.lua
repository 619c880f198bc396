-- make test: once
-- The status an attempt's hooks and metrics see over cosockets: lua/vertexops/transport/cosocket.lua
-- reads it off the answer's first bytes (the status line; no C call per exchange, issue 19 §4) and
-- asks the answer's parser when those bytes cannot tell: an interim 1xx answer before the final one,
-- a status line that came in pieces. Witness: answers written raw by a location of the test's own
-- (ngx.req.socket(true)) in the same nginx, the status on_attempt saw and the metrics' status label.
-- Contract: docs/contract.md, "Hooks, trace context and logs" and "Metrics".
local H = require "support.helper"
local openresty = require "support.openresty"

-- /v1/.../operations/<how>:cancel answered raw: "interim" a 100 Continue then a 201, "pieces" a
-- 200 whose status line is sent in two writes 50 ms apart (what the client's first read gets of it
-- is up to the kernel: the status must be the same either way), "plain" a 200 in one write.
local RAW = [[
    location ~ /operations/(interim|pieces|plain):cancel$ {
      content_by_lua_block {
        ngx.req.read_body()
        local how = ngx.var.uri:match("/operations/(%a+):cancel$")
        local sock = assert(ngx.req.socket(true))
        local tail = "Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        if how == "interim" then
          sock:send("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n" .. tail)
        elseif how == "pieces" then
          sock:send("HTTP/1.1 2")
          ngx.sleep(0.05)
          sock:send("00 OK\r\n" .. tail)
        else
          sock:send("HTTP/1.1 200 OK\r\n" .. tail)
        end
      }
    }
    location = /status {]]

-- Cancels operations/<how> against the raw location, with a hook recording on_attempt's status
-- and, as the only hooks of a second client, metrics:hooks() (status = "code"); returns both.
local CANCEL = [[
  local endpoint = "http://127.0.0.1:" .. ngx.var.server_port
  local name = "projects/p/locations/us-central1/operations/" .. args.how
  local seen
  local hooks = { on_attempt = function(i) if i.phase == "end" then seen = i.status end end }
  vertexops.cancel(name, nil, T.opts { endpoint = endpoint, hooks = hooks, retry = false })
  local m = require("vertexops.metrics").new { status = "code" }
  local client = vertexops.client(T.opts { endpoint = endpoint, hooks = m:hooks(), retry = false })
  client:cancel(name)
  client:close()
  local labels = {}
  for l in m:render():gmatch('vertexops_attempts_total{call="cancel",status="(%d*)",tag=""} 1') do
    labels[#labels + 1] = l
  end
  return { seen = seen, labels = labels }]]

describe("an attempt's status over cosockets", function()
  local fake = H.fake_server()
  local app

  setup(function() app = openresty.start(fake.server, { conf = { { "    location = /status {", RAW } } }) end)
  teardown(function() app:stop() end)

  it("is the final answer's after an interim 1xx answer", function()
    local res = app:result(CANCEL, { how = "interim" })
    assert.are.same({ seen = 201, labels = { "201" } }, res)
  end)

  it("is the answer's when its status line comes in pieces", function()
    local res = app:result(CANCEL, { how = "pieces" })
    assert.are.same({ seen = 200, labels = { "200" } }, res)
  end)

  it("is the answer's when its status line comes whole", function()
    local res = app:result(CANCEL, { how = "plain" })
    assert.are.same({ seen = 200, labels = { "200" } }, res)
  end)
end)
