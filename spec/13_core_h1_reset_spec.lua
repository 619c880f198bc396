-- p:reset(): the HTTP/1.1 answer parser (csrc/h1.c) made ready for another answer, its buffers
-- kept; the cosocket transport reuses parsers so (lua/vertexops/transport/cosocket.lua). Nothing
-- of the answer before may show in the next one.
local core = require "vertexops.core"
local H = require "support.helper"

local OK = "HTTP/1.1 200 OK\r\n"
local CHUNKED = OK .. "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
local PLAIN = OK .. "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"

local function result(p) return { p:result() } end

describe("core.h1 parser reset", function()
  it("reads the next answer as a new parser does: status, head, body, keep-alive", function()
    local p = core.h1()
    assert.is_true(p:feed(CHUNKED))
    assert.are.equal("hello", select(3, p:result()))
    assert.is_false(p:keepalive())
    assert.are.equal(p, p:reset())
    assert.is_true(p:feed(PLAIN))
    local fresh = core.h1()
    assert.is_true(fresh:feed(PLAIN))
    assert.are.same(result(fresh), result(p))
    assert.is_true(p:keepalive())
  end)

  it("with keep, reads the next answer as a new parser does after a large one", function()
    local big = OK .. "Content-Length: 100000\r\n\r\n" .. ("x"):rep(100000)
    local p = core.h1()
    assert.is_true(p:feed(big))
    assert.are.equal(p, p:reset(16384)) -- its buffers over 16 KiB given back
    assert.is_true(p:feed(PLAIN))
    local fresh = core.h1()
    assert.is_true(fresh:feed(PLAIN))
    assert.are.same(result(fresh), result(p))
    assert.are.equal(p, p:reset(0))
    assert.is_true(p:feed(big))
    assert.are.equal(100000, #select(3, p:result()))
  end)

  it("refuses a keep that is not a number of bytes >= 0", function()
    local p = core.h1()
    assert.is_true(core.is(H.raises(p.reset, p, -1), "ValueError"))
    assert.is_true(core.is(H.raises(p.reset, p, 0 / 0), "ValueError"))
    assert.is_true(core.is(H.raises(p.reset, p, "16"), "TypeError"))
  end)

  it("counts the bytes received and the status from the next answer on", function()
    local p = core.h1()
    assert.is_true(p:feed(CHUNKED))
    p:reset()
    assert.are.equal(0, p:received())
    assert.is_nil(p:status())
    assert.is_false(p:feed(OK))
    assert.are.equal(200, p:status())
    assert.are.equal(#OK, p:received())
  end)

  it("forgets a malformed answer: the next one is read", function()
    local p = core.h1()
    local done, err = p:feed("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n")
    assert.is_nil(done)
    assert.is_true(core.is(err, "ConnectionError"))
    p:reset()
    assert.is_true(p:feed(PLAIN))
    assert.are.equal("{}", select(3, p:result()))
  end)

  it("forgets bytes that came after an answer (which forbade keeping the connection)", function()
    local p = core.h1()
    assert.is_true(p:feed(PLAIN .. "HTTP/1.1"))
    assert.is_false(p:keepalive())
    p:reset()
    assert.is_true(p:feed(PLAIN))
    assert.is_true(p:keepalive())
  end)

  it("forgets the Content-Length of the answer before", function()
    local p = core.h1()
    assert.is_true(p:feed(OK .. "Content-Length: 5\r\n\r\nhello"))
    p:reset()
    assert.is_true(p:feed(OK .. "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"))
    assert.are.equal("{}", select(3, p:result()))
  end)

  it("classifies the next answer alone", function()
    local p = core.h1()
    assert.is_true(p:feed("HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"))
    local ok = p:classify()
    assert.is_false(ok)
    p:reset()
    assert.is_true(p:feed(PLAIN))
    local ok2, body = p:classify()
    assert.is_true(ok2)
    assert.are.same({}, body)
  end)

  it("keeps a CONNECT parser one", function()
    local p = core.h1("CONNECT")
    assert.is_true(p:feed("HTTP/1.1 200 Connection established\r\n\r\n"))
    p:reset()
    assert.is_true(p:feed("HTTP/1.1 200 Connection established\r\nContent-Length: 10\r\n\r\n"))
  end)

  it("raises ValueError on a closed parser", function()
    local p = core.h1()
    p:close()
    H.value_error("closed", function() p:reset() end)
  end)
end)
