-- The one request reader (csrc/reader.c) and URL grammar (csrc/url.c) both transports read a
-- request with: libcurl's (handle:call) and the cosocket's HTTP/1.1 bytes (core.h1_request, sent
-- here over a plain LuaSocket connection, as transport/cosocket.lua sends them). Also core.TAGS, the tag
-- lists of csrc/error.c that the Lua-side transport uses.
local core = require "vertexops.core"
local H = require "support.helper"

local TOKEN = "test-token"

-- Sends the bytes core.h1_request wrote for req to the server (plain HTTP) and parses the answer
-- with core.h1: what the cosocket transport does inside nginx, here without it.
local function h1_exchange(req, token)
  local socket = require "socket"
  local parts, target = core.h1_request(req, token)
  local sock = assert(socket.tcp())
  sock:settimeout(10)
  assert(sock:connect(target.host, target.port))
  assert(sock:send(table.concat(parts)))
  local bytes, err, partial = sock:receive("*a")
  sock:close()
  local p = core.h1()
  assert(p:feed(bytes or partial) ~= nil, tostring(err))
  assert(p:eof())
  local status = p:result()
  p:close()
  return status
end

describe("a request read for a transport", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  local function url(path) return server.http_endpoint .. path end

  it("is refused alike by libcurl and by the HTTP/1.1 writer: same tag, same message, no I/O", function()
    local U = url("/x")
    local cases = {
      { "not a table" },
      { { url = U } },
      { { method = "TRACE", url = U } },
      { { method = "GET" } },
      { { method = "GET", url = U, body = 5 } },
      { { method = "GET", url = U, body = "" } },
      { { method = "DELETE", url = U, body = "x" } },
      { { method = "GET", url = U }, 5 },
      { { method = "GET", url = U, token = 5 } },
      { { method = "GET", url = U }, "two words" },
      { { method = "GET", url = U, token = "" } },
      { { method = "GET", url = U, headers = "A: b" } },
      { { method = "GET", url = U, headers = { 5 } } },
      { { method = "GET", url = U, headers = { "A: b\r\nEvil: 1" } } },
      { { method = "GET", url = U, headers = { "no colon" } } },
      { { method = "GET", url = "ftp://127.0.0.1/" } },
      { { method = "GET", url = "http://127.0.0.1:0/" } },
      { { method = "GET", url = "http://127.0.0.1:80x/" } },
      { { method = "GET", url = "http:///x" } },
      { { method = "GET", url = "http://us@127.0.0.1/" } },
      { { method = "GET", url = "http://[::1/" } },
      { { method = "GET", url = "http://[1]/" } },
      { { method = "GET", url = "http://[::1]x/" } },
      { { method = "GET", url = U .. " y" } },
    }
    local h = core.handle()
    for i, case in ipairs(cases) do
      local e1 = H.raises(core.h1_request, case[1], case[2])
      local e2 = H.raises(h.call, h, case[1], case[2])
      assert.are.same({ H.tags(e1), e1.message }, { H.tags(e2), e2.message }, "case " .. i)
    end
    h:close()
    assert.are.equal(0, #server:log())
  end)

  it("refuses a one-character IPv6 literal as a request URL, as it is refused as an endpoint", function()
    assert.are.equal("ValueError", H.raises(core.check_url, "https://[1]").tags[1])
    assert.are.equal("request url has a bad IPv6 host",
      H.raises(core.h1_request, { method = "GET", url = "https://[1]/" }).message)
  end)

  it("accepts as a request URL every endpoint the endpoint rules accept", function()
    for _, e in ipairs { "https://h", "https://a.b-c_d:8443", "http://127.0.0.1:1", "http://[::1]:8080",
                         "https://[2001:db8::1]", "http://localhost" } do
      local base = core.check_url(e)
      local _, target = core.h1_request({ method = "GET", url = base .. "/v1/x" })
      assert.are.equal(base, target.scheme .. "://" .. target.authority, e)
    end
  end)

  it("may be a PUT: the HTTP/1.1 writer sends its body with Content-Length", function()
    local parts = core.h1_request({ method = "PUT", url = "http://127.0.0.1:8080/latest/api/token",
      headers = { "X-aws-ec2-metadata-token-ttl-seconds: 21600" } })
    assert.are.same({ "PUT /latest/api/token HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
      .. "X-aws-ec2-metadata-token-ttl-seconds: 21600\r\nContent-Length: 0\r\n\r\n" }, parts)
    parts = core.h1_request({ method = "PUT", url = "https://h/x", body = "{}" }, "tok")
    assert.are.same({ "PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nAuthorization: Bearer ", "tok",
      "\r\n\r\n", "{}" }, parts)
  end)

  it("may be a PUT: libcurl sends it with its body and headers", function()
    local h = core.handle()
    local ok, err = h:call({ method = "PUT", url = server.endpoint .. "/no/such/put", ca_file = server.ca_file,
      headers = { "X-aws-ec2-metadata-token-ttl-seconds: 21600" }, body = "ttl" }, TOKEN)
    h:close()
    assert.is_false(ok)
    assert.are.equal(404, err.code) -- no route of the fake (its IMDSv2 PUT is /latest/api/token); logged all the same
    local e = server:log()[1]
    assert.are.same({ "PUT", "/no/such/put", "ttl", "21600", "Bearer " .. TOKEN },
      { e.method, e.path, e.body, e.headers["x-aws-ec2-metadata-token-ttl-seconds"], e.headers.authorization })
  end)

  it("may be a PUT: the HTTP/1.1 writer's bytes reach the server", function()
    local status = h1_exchange({ method = "PUT", url = url("/no/such/put"), body = "ttl",
      headers = { "X-aws-ec2-metadata-token-ttl-seconds: 21600", "Connection: close" } }, TOKEN)
    assert.are.equal(404, status)
    local e = server:log()[1]
    assert.are.same({ "PUT", "/no/such/put", "ttl", "21600", "Bearer " .. TOKEN, "HTTP/1.1" },
      { e.method, e.path, e.body, e.headers["x-aws-ec2-metadata-token-ttl-seconds"], e.headers.authorization,
        e.protocol })
  end)

  local PREDICT = "/v1beta1/projects/p/locations/us-central1/publishers/google/models/veo:fetchPredictOperation"
  local JSON = '{"operationName":"projects/p/locations/us-central1/publishers/google/models/veo/operations/1"}'

  it("may be a POST with a JSON body: libcurl sends the body", function()
    local h = core.handle()
    local ok = h:call({ method = "POST", url = server.endpoint .. PREDICT, ca_file = server.ca_file, body = JSON,
      headers = { "Content-Type: application/json", "Accept: application/json" } }, TOKEN)
    h:close()
    assert.is_false(ok)
    local e = server:log()[1]
    assert.are.same({ "POST", PREDICT, JSON, "application/json" },
      { e.method, e.path, e.body, e.headers["content-type"] })
  end)

  it("may be a POST with a JSON body: the HTTP/1.1 writer's bytes reach the server", function()
    local status = h1_exchange({ method = "POST", url = url(PREDICT), body = JSON,
      headers = { "Content-Type: application/json", "Connection: close" } }, TOKEN)
    assert.are.equal(404, status)
    local e = server:log()[1]
    assert.are.same({ "POST", PREDICT, JSON, "application/json", tostring(#JSON) },
      { e.method, e.path, e.body, e.headers["content-type"], e.headers["content-length"] })
  end)
end)

describe("core.TAGS", function()
  it("lists the tags the C core gives transport failures", function()
    local h = core.handle()
    local ok, err = h:call({ method = "GET", url = "http://127.0.0.1:" .. H.closed_port() .. "/" })
    h:close()
    assert.is_false(ok)
    assert.are.same(core.TAGS.failed, err.tags)
    local p = core.h1()
    local _, perr = p:feed("HTTP/1.1 200 OK\n")
    p:close()
    assert.are.same(core.TAGS.conn, perr.tags)
    assert.are.same({ { "ConnectionFailedError", "ConnectionError", "TimeoutError" }, { "TimeoutError" },
      { "ResponseTypeError" }, { "HttpError" } },
      { core.TAGS.failed_timeout, core.TAGS.timeout, core.TAGS.response, core.TAGS.http })
  end)
end)
