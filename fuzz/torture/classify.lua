-- core.classify: every answer shape (JSON conversion included: integers, nesting, Google's error
-- envelope with details and ErrorInfo, repeated headers, want_headers).
local core = require "vertexops.core"
local HEAD = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-A: 1\r\nX-A: 2\r\nX-A: 3\r\n\r\n"
local OK_BODY = '{"name":"projects/p/locations/us-central1/operations/1","done":true,'
  .. '"metadata":{"n":[1,2,3.5,{"deep":[[1],[2]]}],"s":"x\\u00e9y"},"response":{"@type":"t","v":12345678901}}'
local ERR_HEAD = "HTTP/1.1 429 Too Many\r\nRetry-After: 3\r\nSet-Cookie: a\r\nSet-Cookie: b\r\n\r\n"
local ERR_BODY = '{"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED","details":['
  .. '{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"3s"},'
  .. '{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"RATE","domain":"d","metadata":{"k":"v"}}]}}'
return {
  setup = function() return {} end,
  run = function()
    local ok, res, headers = core.classify(200, HEAD, OK_BODY, true)
    assert(ok and res.done and headers["x-a"] == "1, 2, 3")
    local ok2, err = core.classify(429, ERR_HEAD, ERR_BODY)
    assert(not ok2 and err.reason == "RATE" and err.headers["set-cookie"] == "a, b")
    local ok3, e3 = core.classify(200, HEAD, "[1,2]")
    assert(not ok3 and core.is(e3, "ResponseTypeError"))
    local ok4, e4 = core.classify(200, HEAD, '{"a":')
    assert(not ok4 and core.is(e4, "ResponseTypeError"))
    local ok5, e5 = core.classify(502, "HTTP/1.1 502 Bad\r\n\r\n", "<html>bad gateway</html>")
    assert(not ok5 and e5.code == 502)
    assert(core.classify(204, "", ""))
  end,
  check = function()
    local ok, res = core.classify(200, HEAD, OK_BODY)
    assert(ok and res.response.v == 12345678901 and math.type(res.response.v) == "integer")
    local ok2, err = core.classify(429, ERR_HEAD, ERR_BODY)
    assert(not ok2 and err.reason == "RATE" and err.status == "RESOURCE_EXHAUSTED")
  end,
}
