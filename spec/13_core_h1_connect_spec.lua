-- core.h1("CONNECT"): the strict HTTP/1.1 parser reading a proxy's answer to CONNECT (csrc/h1.c), as the
-- cosocket transport tunnels through a proxy (lua/vertexops/transport/cosocket.lua).
local core = require "vertexops.core"
local H = require "support.helper"

describe("core.h1('CONNECT')", function()
  it("a 2xx answer ends with its head (a Content-Length in it is ignored)", function()
    local p = core.h1("CONNECT")
    assert.is_true(p:feed("HTTP/1.1 200 Connection established\r\nContent-Length: 10\r\n\r\n"))
    local status = p:result()
    assert.are.equal(200, status)
  end)

  it("a 2xx answer fed in pieces ends with its head", function()
    local p = core.h1("CONNECT")
    assert.is_false(p:feed("HTTP/1.0 200 OK\r"))
    assert.is_true(p:feed("\n\r\n"))
  end)

  it("bytes after a 2xx answer are a ConnectionError (the tunnel's first bytes are ours)", function()
    local p = core.h1("CONNECT")
    local done, err = p:feed("HTTP/1.1 200 OK\r\n\r\n\22\3\1")
    assert.is_nil(done)
    assert.are.equal("ConnectionError", H.tags(err))
    assert.matches("the proxy sent bytes after its 2xx answer", err.message, 1, true)
  end)

  it("a non-2xx answer is read whole, body framed as usual", function()
    local p = core.h1("CONNECT")
    assert.is_false(p:feed("HTTP/1.0 407 Proxy Authentication Required\r\nContent-Length: 4\r\n\r\n"))
    assert.is_true(p:feed("deny"))
    local status, head, body = p:result()
    assert.are.equal(407, status)
    assert.matches("^HTTP/1.0 407 Proxy Authentication Required\r\n", head)
    assert.are.equal("deny", body)
  end)

  it("stays strict: a bad status line is a ConnectionError", function()
    local done, err = core.h1("CONNECT"):feed("HTTP/1.1 2OO OK\r\n\r\n")
    assert.is_nil(done)
    assert.are.equal("ConnectionError", H.tags(err))
  end)

  it("takes nothing but CONNECT (ValueError) or no argument", function()
    H.value_error("CONNECT", core.h1, "GET")
    assert.is_false(core.h1():feed("HTTP/1.1 200 OK\r\n\r\n")) -- without it, a 200 without length reads to the close
  end)
end)
