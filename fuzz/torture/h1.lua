-- The cosocket transport's HTTP/1.1 parser (core.h1): a chunked answer fed in pieces, a
-- Content-Length error answer after a 100 Continue, p:result, p:classify; core.h1_request.
local core = require "vertexops.core"
local CHUNKED = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n"
  .. "10\r\n{\"name\":\"x\",\"a\":\r\n5\r\n[1,2]\r\n1\r\n}\r\n0\r\nX-Trailer: t\r\n\r\n"
local BODY = '{"error":{"code":404,"message":"not found","status":"NOT_FOUND"}}'
local ERRANS = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: " .. #BODY .. "\r\n\r\n" .. BODY
local function feed(p, s, step)
  local done
  for i = 1, #s, step do
    local r, err = p:feed(s:sub(i, i + step - 1))
    if r == nil then error(err, 0) end
    done = r
  end
  return done
end
return {
  setup = function() return {} end,
  run = function()
    local p = core.h1()
    assert(feed(p, CHUNKED, 7))
    local ok, res, headers = p:classify(true)
    assert(ok and res.a[2] == 2 and headers["x-trailer"] == "t")
    local status, head, body, keep = p:result()
    assert(status == 200 and #head > 0 and #body == 22 and keep)
    p:close()
    local q = core.h1()
    assert(feed(q, ERRANS, 64))
    local ok2, err = q:classify()
    assert(not ok2 and err.code == 404)
    local r = core.h1()
    r:feed("HTTP/1.1 200 OK\r\n")
    local ok3, err3 = r:eof()
    assert(not ok3 and core.is(err3, "ConnectionError"))
    local req = core.build("get", "projects/p/locations/us-central1/operations/1", nil, { endpoint = "http://127.0.0.1:1" })
    core.h1_request(req, "token")
  end,
  check = function()
    local p = core.h1()
    assert(feed(p, CHUNKED, 3))
    local ok, res = p:classify()
    assert(ok and res.name == "x")
  end,
}
