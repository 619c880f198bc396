-- The HTTP/1.1 wire of the cosocket transport (csrc/h1.c), outside nginx: core.h1() parses an
-- answer fed in pieces of any size, strictly; core.h1_request composes the request. Its results go
-- through the same classification as libcurl's (core.classify), its failures carry contract tags.
local core = require "vertexops.core"
local H = require "support.helper"
local unpack = table.unpack or unpack -- luacheck: ignore

-- Feeds s in pieces of step bytes (all of it: bytes past the end count); eof when it wants more.
local function parse(s, step)
  local p = core.h1()
  local done, err = false, nil
  step = step or #s
  local i = 1
  while i <= #s do
    local r, e = p:feed(s:sub(i, i + step - 1))
    if r == nil then return nil, e, p end
    done = r
    i = i + step
  end
  if not done then
    local r, e = p:eof()
    if not r then return nil, e, p end
  end
  return p, err
end

-- Parses s whole and one byte at a time; both must agree. Returns status, head, body, keepalive.
local function answer(s)
  local p1, e1 = parse(s)
  local p2, e2 = parse(s, 1)
  if not p1 then
    assert.is_nil(p2, "one byte at a time accepted what whole was refused for")
    assert.are.same(e1.tags, e2.tags)
    assert.are.equal(e1.message, e2.message)
    return nil, e1
  end
  assert.is_truthy(p2, "one byte at a time refused what whole was accepted: " .. tostring(e2))
  local a = { p1:result() }
  assert.are.same(a, { p2:result() })
  return unpack(a, 1, 4)
end

local function refused(s, tag, pattern)
  local p, err = answer(s)
  assert.is_nil(p, "accepted: " .. s)
  assert.is_true(core.is(err, tag or "ConnectionError"), tostring(err))
  assert.are.equal(core.error_mt, getmetatable(err))
  if pattern then assert.matches(pattern, err.message, 1, true) end
  return err
end

local OK = "HTTP/1.1 200 OK\r\n"

describe("core.h1 parser", function()
  it("reads a Content-Length answer: status, the header block libcurl would give, body, keep-alive", function()
    local st, head, body, keep = answer(OK .. "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
    assert.are.equal(200, st)
    assert.are.equal(OK .. "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n", head)
    assert.are.equal("{}", body)
    assert.is_true(keep)
  end)

  it("reads chunks with extensions, and trailers into the header block", function()
    local st, head, body, keep = answer(OK .. "Transfer-Encoding: Chunked\r\n\r\n"
      .. "3;name=value\r\n{\"a\r\n5 ; x\r\n\":1}\n\r\n0\r\nX-Trailer: t\r\n\r\n")
    assert.are.equal(200, st)
    assert.are.equal('{"a":1}\n', body)
    assert.matches("X-Trailer: t\r\n$", head)
    assert.is_true(keep)
  end)

  it("skips 1xx interim answers and keeps the final head only", function()
    local st, head = answer("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n"
      .. OK .. "Content-Length: 0\r\n\r\n")
    assert.are.equal(200, st)
    assert.are.equal(OK .. "Content-Length: 0\r\n\r\n", head)
  end)

  it("reads 204 and 304 without a body", function()
    assert.are.equal("", select(3, answer("HTTP/1.1 204 No Content\r\n\r\n")))
    assert.are.equal("", select(3, answer("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n")))
  end)

  it("reads a body delimited by the end of the connection, never kept", function()
    local st, _, body, keep = answer("HTTP/1.1 200 OK\r\n\r\n{\"x\":1}")
    assert.are.equal(200, st)
    assert.are.equal('{"x":1}', body)
    assert.is_false(keep)
  end)

  it("does not keep a connection for HTTP/1.0, Connection: close, or bytes after the answer", function()
    assert.is_false(select(4, answer("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")))
    assert.is_false(select(4, answer(OK .. "Connection: keep-alive, CLOSE\r\nContent-Length: 0\r\n\r\n")))
    assert.is_false(select(4, answer(OK .. "Content-Length: 1\r\n\r\n{}")))
    assert.is_true(select(4, answer(OK .. "Connection: keep-alive\r\nContent-Length: 0\r\n\r\n")))
  end)

  it("accepts repeated Content-Length headers that agree", function()
    assert.are.equal("{}", select(3, answer(OK .. "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}")))
  end)

  describe("refuses malformed framing as a ConnectionError:", function()
    local cases = {
      { "a bad status line", "HTTP/1.1 20 OK\r\n\r\n", "bad status line" },
      { "HTTP/2 on the wire", "HTTP/2 200\r\n\r\n", "bad status line" },
      { "a status below 100", "HTTP/1.1 099 X\r\n\r\n", "bad status line" },
      { "a header line without a colon", OK .. "Broken\r\n\r\n", "without a colon" },
      { "a space before the colon", OK .. "Name : v\r\n\r\n", "invalid header name" },
      { "obs-fold", OK .. "A: b\r\n c\r\n\r\n", "obs-fold" },
      { "a line ending in LF alone", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", "LF alone" },
      { "a bare CR", OK .. "A: b\rc\r\n\r\n", "CR or NUL" },
      { "a NUL in a header", OK .. "A: b\0c\r\n\r\n", "CR or NUL" },
      { "a control byte in a value", OK .. "A: b\1c\r\n\r\n", "control byte" },
      { "conflicting Content-Length", OK .. "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", "conflicting" },
      { "a signed Content-Length", OK .. "Content-Length: +2\r\n\r\n{}", "bad Content-Length" },
      { "a Content-Length list", OK .. "Content-Length: 2, 2\r\n\r\n{}", "bad Content-Length" },
      { "Content-Length and Transfer-Encoding", OK .. "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
        "both Content-Length and Transfer-Encoding" },
      { "a transfer coding other than chunked", OK .. "Transfer-Encoding: gzip, chunked\r\n\r\n", "unsupported" },
      { "a bad chunk size", OK .. "Transfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size" },
      { "chunk data longer than its size", OK .. "Transfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n",
        "longer than its size" },
      { "101 Switching Protocols", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", "101" },
      { "a short body", OK .. "Content-Length: 10\r\n\r\n{}", "before the answer was complete" },
      { "an empty reply", "", "without an answer" },
    }
    for _, c in ipairs(cases) do
      it(c[1], function() refused(c[2], "ConnectionError", c[3]) end)
    end
  end)

  -- (csrc/h1.c reads values eight bytes at a time: every byte value, at every place of a word and
  -- past the last whole word, in a status line's reason, a header value and a chunk extension)
  it("takes HTAB, SP, visible ASCII and obs-text anywhere in a value, and refuses any other byte", function()
    local function value_with(b, at) return ("v"):rep(at - 1) .. string.char(b) .. ("w"):rep(20 - at) end
    for b = 0, 255 do
      local verdict = (b == 9 or (b >= 32 and b ~= 127)) and "ok"
        or (b == 13 or b == 0) and "CR or NUL" or b == 10 and "malformed" or "control byte"
      for at = 1, 20 do
        local v = value_with(b, at)
        for _, s in ipairs { "HTTP/1.1 200 " .. v .. "\r\nContent-Length: 0\r\n\r\n",
                             OK .. "X-A: " .. v .. "\r\nContent-Length: 0\r\n\r\n",
                             OK .. "Transfer-Encoding: chunked\r\n\r\n0;" .. v .. "\r\n\r\n" } do
          local p, err = parse(s)
          if verdict == "ok" then
            assert.is_truthy(p, ("byte %d at %d refused: %s"):format(b, at, tostring(err)))
          else
            assert.is_nil(p, ("byte %d at %d accepted"):format(b, at))
            assert.matches(verdict, err.message, 1, true)
          end
        end
      end
    end
  end)

  it("refuses an answer over 32 MiB as ResponseTypeError with the status as code", function()
    local err = refused("HTTP/1.1 503 Unavailable\r\nContent-Length: 33554433\r\n\r\n", "ResponseTypeError",
      "response body is larger than 32 MiB (HTTP 503)")
    assert.are.equal(503, err.code)
    err = refused(OK .. "Content-Length: 99999999999999999999999999999\r\n\r\n", "ResponseTypeError")
    assert.are.equal(200, err.code)
  end)

  it("refuses chunk sizes past the cap without overflowing", function()
    for _, size in ipairs { "2000001", "ffffffffffffffff", "10000000000000001", "ffffffffffffffffffffffffffff" } do
      local err = refused(OK .. "Transfer-Encoding: chunked\r\n\r\n" .. size .. "\r\n", "ResponseTypeError", "32 MiB")
      assert.are.equal(200, err.code)
    end
    local chunk = string.rep("x", 1048576)
    local p = core.h1()
    assert.is_false(p:feed(OK .. "Transfer-Encoding: chunked\r\n\r\n"))
    for _ = 1, 32 do assert.is_false(p:feed("100000\r\n" .. chunk .. "\r\n")) end
    local r, err = p:feed("1\r\n")
    assert.is_nil(r)
    assert.matches("32 MiB", err.message)
  end)

  it("refuses headers over 256 KiB as ResponseTypeError", function()
    local err = refused(OK .. "X-Big: " .. string.rep("a", 256 * 1024) .. "\r\n\r\n", "ResponseTypeError",
      "response headers are larger than 256 KiB (HTTP 200)")
    assert.are.equal(200, err.code)
    refused(string.rep("HTTP/1.1 100 Continue\r\n" .. string.rep("A: b\r\n", 1000) .. "\r\n", 50),
      "ResponseTypeError", "256 KiB")
  end)

  it("refuses a flood of 20,000 1xx heads before a 200 as ResponseTypeError without a code", function()
    local err = refused(string.rep("HTTP/1.1 100 Continue\r\n\r\n", 20000)
      .. OK .. "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", "ResponseTypeError", "256 KiB")
    assert.are.same({ "ResponseTypeError" }, err.tags)
    assert.is_nil(err.code)
    -- cut where the cap falls on an empty line, after a 100 status line was read: still no code
    err = refused(string.rep("HTTP/1.1 100 Continue\r\n" .. string.rep("A: b\r\n", 1000) .. "\r\n", 50),
      "ResponseTypeError", "256 KiB")
    assert.is_nil(err.code)
  end)

  it("classifies like core.classify on the same status, header block and body", function()
    for _, s in ipairs {
      OK .. "Content-Length: 11\r\n\r\n{\"name\":\"x\"}",
      "HTTP/1.1 404 Not Found\r\nRetry-After: 3\r\nContent-Length: 45\r\n\r\n"
        .. '{"error":{"code":404,"status":"NOT_FOUND"}}  ',
      OK .. "Content-Length: 5\r\n\r\nnope!",
    } do
      local p = assert(parse(s))
      local st, head, body = p:result()
      assert.are.same({ core.classify(st, head, body, true) }, { p:classify(true) })
    end
    local p = assert(parse("HTTP/1.1 429 Too Many\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n"))
    local ok, err = p:classify()
    assert.is_false(ok)
    assert.are.equal(429, err.code)
    assert.are.equal("7", err.headers["retry-after"])
  end)

  it("is born open, closes idempotently, and refuses use once closed", function()
    local p = core.h1()
    assert.is_false(p:is_closed())
    assert.matches("^vertexops.h1 %(", tostring(p))
    p:close()
    p:close()
    assert.is_true(p:is_closed())
    local err = H.raises(p.feed, p, "x")
    assert.are.equal("ValueError", err.tags[1])
    assert.matches("closed vertexops h1 parser", err.message, 1, true)
    assert.are.equal("TypeError", H.raises(core.h1().feed, core.h1(), 1).tags[1])
    err = H.raises(core.h1().result, core.h1())
    assert.are.equal("ValueError", err.tags[1])
    assert.matches("not complete", err.message, 1, true)
  end)
end)

describe("core.h1_request", function()
  local req = { method = "POST", url = "https://localhost:8443/v1beta1/projects/p:cancel",
                headers = { "Accept: application/json" }, body = "" }

  it("composes the request; the token is its own part, the very string given", function()
    local token = "ya29." .. string.rep("t", 10)
    local parts, target = core.h1_request(req, token)
    assert.are.same({ "POST /v1beta1/projects/p:cancel HTTP/1.1\r\nHost: localhost:8443\r\n"
      .. "Accept: application/json\r\nContent-Length: 0\r\nAuthorization: Bearer ", token, "\r\n\r\n" }, parts)
    assert.are.same({ scheme = "https", host = "localhost", port = 8443, authority = "localhost:8443", ip = false },
      target)
  end)

  it("sends a body with its length; GET without one; default ports; IP literals marked", function()
    local parts, target = core.h1_request({ method = "GET", url = "http://127.0.0.1/x?a=b" })
    assert.are.same({ "GET /x?a=b HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" }, parts)
    assert.are.same({ 80, true }, { target.port, target.ip })
    parts, target = core.h1_request({ method = "POST", url = "https://[::1]", body = "a=b" })
    assert.are.same({ "POST / HTTP/1.1\r\nHost: [::1]\r\nContent-Length: 3\r\n\r\n", "a=b" }, parts)
    assert.are.same({ "::1", 443, true }, { target.host, target.port, target.ip })
  end)

  it("refuses what handle:call refuses, before any I/O", function()
    assert.are.equal("AuthError", H.raises(core.h1_request, req, "two words").tags[1])
    assert.are.equal("TypeError", H.raises(core.h1_request, req, 5).tags[1])
    local bad = { method = "GET", url = "https://h/", headers = { "A: b\r\nEvil: 1" } }
    local err = H.raises(core.h1_request, bad)
    assert.are.equal("ValueError", err.tags[1])
    assert.matches("request header ", err.message, 1, true)
    for _, url in ipairs { "ftp://h/", "https://h:0/", "https://h:70000/", "https:///x", "https://h/a b",
                           "https://us@h/" } do
      err = H.raises(core.h1_request, { method = "GET", url = url })
      assert.are.equal("ValueError", err.tags[1], url)
      assert.matches("request url ", err.message, 1, true)
    end
    err = H.raises(core.h1_request, { method = "TRACE", url = "https://h/" })
    assert.are.equal("ValueError", err.tags[1])
    assert.matches("request method ", err.message, 1, true)
  end)
end)
