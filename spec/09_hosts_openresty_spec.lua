-- make test: once
-- vertexops inside nginx (Debian's Lua module, LuaJIT): examples/openresty/nginx.conf, run for real
-- (spec/support/openresty.lua). Exchanges go over cosockets, the default in request handlers.
-- While one request runs cancel_and_wait on an operation that takes ~2 s, 50 requests to another
-- location of the same single worker are all answered during the wait: the event loop never blocks.
local socket = require "socket"
local http = require "socket.http"
local cjson = require "cjson"
local H = require "support.helper"
local openresty = require "support.openresty"

describe("OpenResty", function()
  local fake = H.fake_server()
  local server, app

  setup(function() app = openresty.start(fake.server) end)
  teardown(function() app:stop() end)
  before_each(function() server = fake.server end)

  local function status()
    local body, code = http.request(app:url("/status"))
    assert.are.equal(200, code)
    return cjson.decode(body).waiting
  end

  local function cancel_while_pinging(name, strategy)
    local sock = assert(socket.connect("127.0.0.1", app.port))
    sock:send(("GET /cancel?name=%s%s HTTP/1.0\r\nHost: app\r\n\r\n")
      :format(name, strategy and "&strategy=" .. strategy or ""))
    local started = false
    for _ = 1, 500 do
      if status() == 1 then
        started = true
        break
      end
      socket.sleep(0.01)
    end
    assert.is_true(started, "the wait never started")
    local during = 0
    for _ = 1, 50 do
      if status() == 1 then during = during + 1 end
    end
    sock:settimeout(30)
    local response = sock:receive("*a")
    sock:close()
    return during, cjson.decode(response:match("\r\n\r\n(.*)$")), response
  end

  it("answers 50 other requests while cancel_and_wait waits (:wait long-poll over a cosocket)", function()
    local op = server:create { done_after = 2, cancel = "ignore" }
    local during, doc, raw = cancel_while_pinging(op.name)
    assert.are.equal(50, during, "requests were held while the wait ran")
    assert.is_true(doc.operation and doc.operation.done, raw)
    assert.is_false(doc.cancelled)
    assert.are.equal(1, #server:log("cancel"))
    assert.is_true(#server:log("wait") >= 1)
    assert.are.equal("HTTP/1.1", server:log()[1].protocol) -- cosockets speak HTTP/1.1, libcurl HTTP/2
    assert.are.equal(0, status())
  end)

  it("sleeps with ngx.sleep between polls without blocking", function()
    local op = server:create { done_after = 1.5, cancel = "ignore" }
    local during, doc, raw = cancel_while_pinging(op.name, "poll")
    assert.are.equal(50, during)
    assert.is_true(doc.operation.done, raw)
    assert.is_true(#server:log("get") >= 2)
  end)

  it("ends CANCELLED through nginx", function()
    local op = server:create { done_after = 3600 }
    local body, code = http.request(app:url("/cancel?name=" .. op.name))
    assert.are.equal(200, code, body)
    local doc = cjson.decode(body)
    assert.is_true(doc.cancelled)
    assert.are.equal(1, doc.operation.error.code)
  end)

  it("reports errors as JSON with the HTTP status", function()
    local body, code = http.request(app:url("/cancel?name=" .. H.NAME .. "missing"))
    assert.are.equal(404, code)
    assert.are.equal("HttpError", cjson.decode(body).error.tags[1])
  end)
end)
