-- make memcheck: successes and every error path in a loop, under valgrind (see Makefile).
-- valgrind must report no definite leak and no invalid read or write.
local vertexops = require "vertexops"
local safe = require "vertexops.safe"
local core = require "vertexops.core"
local fake = require "support.fake"

local ROUNDS = tonumber(os.getenv("MEMCHECK_ROUNDS") or "3")
local server = fake.start()
local ok, err = pcall(function()
  -- connect_timeout 60 s: under valgrind on a busy machine a TLS handshake passed the default 10 s
  -- once (ConnectionFailedError: SSL connection timeout, the spec failing with nothing wrong)
  local o = { endpoint = server.endpoint, ca_file = server.ca_file, token = "test-token", retry = false,
              connect_timeout = 60 }
  local NAME = "projects/test-project/locations/us-central1/operations/"
  local function expect_error(tag, f, ...)
    local okk, e = pcall(f, ...)
    assert(not okk, "expected " .. tag)
    assert(vertexops.is(e, tag), "expected " .. tag .. ", got " .. tostring(e))
  end
  local other_ca = os.tmpname()
  os.remove(other_ca)
  os.execute("mkdir -p " .. other_ca)
  fake.make_cert(other_ca)
  for round = 1, ROUNDS do
    server:reset()
    local c = vertexops.client(o)
    local op = server:create {}
    for _ = 1, 20 do
      c:get(op.name)
      c:cancel(op.name)
    end
    c:list("projects/test-project/locations/us-central1", nil, { page_size = 1 })
    for _ in c:operations("projects/test-project/locations/us-central1") do end
    c:wait_once(op.name, nil, 1)
    -- every error path
    expect_error("HttpError", c.get, c, NAME .. "missing")
    server:fault { match = "get", status = 503, retry_after = 1 }
    expect_error("HttpError", c.get, c, op.name)
    server:fault { match = "get", status = 502, body = "<html>bad gateway</html>" }
    expect_error("HttpError", c.get, c, op.name)
    server:fault { match = "get", body = "not json" }
    expect_error("ResponseTypeError", c.get, c, op.name)
    server:fault { match = "get", body = "[1]" }
    expect_error("ResponseTypeError", c.get, c, op.name)
    server:fault { match = "cancel", drop = "before" }
    expect_error("ConnectionError", c.cancel, c, op.name)
    server:fault { match = "get", drop = "mid" }
    expect_error("ConnectionError", c.get, c, op.name)
    server:fault { match = "get", delay = 2 }
    expect_error("TimeoutError", c.get, c, op.name, nil, { request_timeout = 0.2 })
    if round == 1 then
      server:fault { match = "get", size = 33 * 1024 * 1024 }
      expect_error("ResponseTypeError", c.get, c, op.name)
    end
    expect_error("ConnectionFailedError", vertexops.get, op.name, nil,
      { endpoint = "http://127.0.0.1:9", token = "t", retry = false })
    expect_error("ConnectionFailedError", c.get, c, op.name, nil, { ca_file = other_ca .. "/cert.pem" })
    expect_error("ValueError", c.get, c, NAME .. "a\r\nb")
    expect_error("ValueError", c.get, c, op.name, nil, { bogus = 1 })
    expect_error("TypeError", c.get, c, 42)
    expect_error("AuthError", c.get, c, op.name, nil, { token = function() return nil end })
    expect_error("HttpError", core.cancel, NAME .. "missing", nil, o)
    assert(select(2, safe.get(NAME .. "missing", nil, o)).code == 404)
    -- a timeout with retries, through the injected clock
    local t = 0
    server:fault { match = "cancel", status = 503, times = 10 }
    expect_error("TimeoutError", c.cancel, c, op.name, nil, {
      retry = { max_retries = 5 }, timeout = 2, clock = function() return t end,
      sleep = function(s) t = t + s end })
    -- non-blocking: started requests, a batch, and transfers abandoned to the garbage collector
    server:reset()
    op = server:create {}
    assert(c:start("get", op.name):wait().name == op.name)
    local names = {}
    for i = 1, 10 do names[i] = server:create {}.name end
    names[11] = NAME .. "missing"
    local results = c:cancel_many(names, nil, { concurrency = 4 })
    assert(results[1].ok and results[11].err.code == 404, tostring(results[1].err or results[11].ok))
    do
      local c2 = vertexops.client(o)
      server:fault { match = "get", delay = 0.3, times = 3 }
      for _ = 1, 3 do c2:start("get", op.name):poll() end
      c2 = nil -- luacheck: ignore 311
      collectgarbage()
      collectgarbage()
    end
    c:close()
    expect_error("closed", function()
      local okk, e = pcall(c.get, c, op.name)
      assert(not okk and tostring(e):match("closed"))
      error(core.error({ "closed" }, "closed"), 0)
    end)
    -- the request reader (csrc/reader.c) of both transports: a PUT with a body, refusals
    local h = core.handle()
    local put = { method = "PUT", url = server.http_endpoint .. "/latest/api/token", body = "ttl",
                  headers = { "X-aws-ec2-metadata-token-ttl-seconds: 21600" } }
    assert(not h:call(put, "test-token"))
    assert(#core.h1_request(put, "test-token") == 4)
    for _, bad in ipairs { { method = "GET", url = put.url, headers = { "A: b\r\nC: d" } },
                           { method = "GET", url = "http://[1]/" }, { method = "GET", url = put.url, body = "x" } } do
      expect_error("ValueError", h.call, h, bad, "test-token")
      expect_error("ValueError", core.h1_request, bad, "test-token")
    end
    expect_error("AuthError", h.call, h, put, "two words")
    h:close()
    -- the cosocket transport's answer parser (csrc/h1.c): a complete answer finished (its values
    -- copied out, the parser reset with its buffers kept), one large then small with keep, refusals
    local p = core.h1()
    local answer = "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
      .. "Content-Length: 36\r\n\r\n{\"error\":{\"code\":429,\"message\":\"q\"}}"
    assert(p:feed(answer))
    local keep, fine, e = p:finish(true)
    assert(keep == true and fine == false and e.code == 429)
    assert(p:feed("HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n" .. ("x"):rep(70000)))
    assert(select(2, p:finish(false, 1024)) ~= nil)
    assert(not p:feed("HTTP/1.1 200 OK\r\n"))
    expect_error("ValueError", p.finish, p)
    expect_error("ValueError", p.finish, p, false, -1)
    p:close()
    -- p:take: an answer in two pieces, finished with the second; a malformed one left to close
    p = core.h1()
    assert(p:take(answer:sub(1, 40), true) == false)
    local done, status, reuse, ok = p:take(answer:sub(41), true, 512)
    assert(done == true and status == 429 and reuse == true and ok == false)
    assert(p:take("HTTP/1.1 200 OK\r\nBroken\r\n\r\n") == nil)
    expect_error("ValueError", p.take, p, "x", false, -1)
    p:close()
    -- a handle left to the garbage collector, open
    h = core.handle()
    h:call { method = "GET", url = server.http_endpoint .. "/_control/ping" }
    h = nil -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
  end
  os.execute("rm -rf " .. other_ca)
end)
server:stop()
if not ok then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
print(("memcheck: %d rounds of successes and error paths done"):format(ROUNDS))
