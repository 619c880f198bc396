-- p:finish([want_headers [, keep]]): what the cosocket transport asks of a complete answer
-- (lua/vertexops/transport/cosocket.lua), in one call of the HTTP/1.1 answer parser (csrc/h1.c):
-- whether the connection may carry another request (p:keepalive()), the answer as p:classify()
-- gives it, and the parser reset as p:reset(keep) leaves it. Inside nginx each C call ends a LuaJIT
-- trace, so three became one (issue 19 §4). Witness: the same answers through the three calls.
local core = require "vertexops.core"
local H = require "support.helper"
local unpack = table.unpack or unpack -- luacheck: ignore

local OK = "HTTP/1.1 200 OK\r\n"
local PLAIN = OK .. "Content-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"name\":\"op/1\"}  "
local CLOSE = OK .. "Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
local ERROR = "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 3\r\n"
  .. "Content-Length: 61\r\n\r\n" .. '{"error":{"code":429,"message":"q","status":"RESOURCE_EXHAUSTED"}}'

-- The three calls' answer for text, on a parser of its own.
local function three(text, want)
  local p = core.h1()
  assert.is_true(p:feed(text))
  local out = { p:keepalive(), p:classify(want) }
  p:reset()
  return out
end

local function finished(p, text, want, keep)
  assert.is_true(p:feed(text))
  return { p:finish(want, keep) }
end

-- p:take(bytes, want, keep): p:feed(bytes) and, when they complete the answer, its status and
-- p:finish(want, keep) in the same call
local function taken(p, text, want, keep)
  return { p:take(text, want, keep) }
end

describe("core.h1 p:take", function()
  it("completes an answer as p:feed then p:finish do, with its status first", function()
    for _, c in ipairs { { PLAIN, 200 }, { CLOSE, 200 }, { ERROR, 429 } } do
      for _, want in ipairs { false, true } do
        local got = taken(core.h1(), c[1], want)
        assert.are.equal(true, got[1])
        assert.are.equal(c[2], got[2])
        assert.are.same(finished(core.h1(), c[1], want), { unpack(got, 3, 6) })
      end
    end
  end)

  it("gives the final status after a 1xx, and leaves the parser reset", function()
    local p = core.h1()
    local got = taken(p, "HTTP/1.1 100 Continue\r\n\r\n" .. ERROR, false, 0)
    assert.are.equal(429, got[2])
    assert.are.equal(0, p:received())
    assert.is_nil(p:status())
    assert.are.same(three(PLAIN), { unpack(taken(p, PLAIN), 3, 6) })
  end)

  it("gives false while bytes are missing, and finishes with the piece that completes the answer", function()
    local p = core.h1()
    assert.are.same({ false }, taken(p, PLAIN:sub(1, 20)))
    assert.are.same({ false }, taken(p, PLAIN:sub(21, #PLAIN - 1)))
    local got = taken(p, PLAIN:sub(#PLAIN))
    assert.are.same({ true, 200 }, { got[1], got[2] })
    assert.are.same(three(PLAIN), { unpack(got, 3, 6) })
  end)

  it("gives nil and the error of a malformed answer, the parser not reset", function()
    local p = core.h1()
    local got = taken(p, "HTTP/1.1 200 OK\r\nBroken\r\n\r\n")
    assert.is_nil(got[1])
    assert.is_true(core.is(got[2], "ConnectionError"))
    assert.is_true(p:received() > 0)
    assert.is_true(core.is(H.raises(p.take, p, "x", false, -1), "ValueError"))
  end)
end)

describe("core.h1 p:finish", function()
  it("gives a keep-alive answer's reuse and the answer, as keepalive and classify do", function()
    local p = core.h1()
    local got = finished(p, PLAIN)
    assert.is_true(got[1])
    assert.are.same(three(PLAIN), got)
  end)

  it("gives false for an answer that closes its connection", function()
    local got = finished(core.h1(), CLOSE)
    assert.is_false(got[1])
    assert.are.same(three(CLOSE), got)
  end)

  it("gives an HTTP error as classify does, with the headers when asked", function()
    local got = finished(core.h1(), ERROR, true)
    assert.are.same(three(ERROR, true), got)
    assert.is_false(got[2])
    assert.are.equal(429, got[3].code)
  end)

  it("leaves the parser reset: the next answer is read as a new parser reads it", function()
    local p = core.h1()
    finished(p, ERROR)
    assert.are.equal(0, p:received())
    assert.is_nil(p:status())
    assert.are.same(three(PLAIN), finished(p, PLAIN))
    assert.are.same(three(CLOSE), finished(p, CLOSE, nil, 0))
  end)

  it("refuses an answer not read whole, and a keep that is not a number of bytes >= 0", function()
    local p = core.h1()
    assert.is_false(p:feed(OK))
    assert.is_true(core.is(H.raises(p.finish, p), "ValueError"))
    assert.is_true(p:feed("Content-Length: 0\r\n\r\n"))
    assert.is_true(core.is(H.raises(p.finish, p, false, -1), "ValueError"))
    assert.is_true(core.is(H.raises(p.finish, p, false, "16"), "TypeError"))
    assert.are.same({ true, true, {} }, { p:finish(false, 16) }) -- (still complete: refused before anything)
  end)
end)
