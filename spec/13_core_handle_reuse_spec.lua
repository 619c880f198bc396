-- One handle, many requests: what a request does not set is not carried over from the last one.
-- (csrc/handle.c does not set the connection options again for a request like the last one: no
-- proxy, no client certificate, the same CA file; any difference sets them all.)
local core = require "vertexops.core"
local fake = require "support.fake"
local H = require "support.helper"

describe("a handle reused", function()
  local server
  setup(function()
    server = fake.start()
    server:create_many(1, { done_after = 3600 })
  end)
  teardown(function() server:stop() end)

  local function list(h, ca)
    local req = core.build("list", H.PARENT, nil, { endpoint = server.endpoint, page_size = 1 })
    req.ca_file = ca
    return h:call(req, "test-token")
  end

  it("verifies each request against its own CA file: the system store, then the fake's, then the system's", function()
    local h = core.handle()
    finally(function() h:close() end)
    local ok, err = list(h, nil)
    assert.is_false(ok)
    assert.is_true(core.is(err, "CertificateError") or core.is(err, "ConnectionError"), tostring(err))
    assert.is_true((list(h, server.ca_file)))
    assert.is_true((list(h, server.ca_file)))
    ok = list(h, nil)
    assert.is_false(ok)
    assert.is_true((list(h, server.ca_file)))
  end)

  it("uses no proxy after a request through one", function()
    local h = core.handle()
    finally(function() h:close() end)
    assert.is_true((list(h, server.ca_file)))
    -- a proxy that is not there: the request fails at the proxy, not at the service
    local req = core.build("list", H.PARENT, nil, { endpoint = server.endpoint, page_size = 1 })
    req.ca_file, req.proxy = server.ca_file, "http://127.0.0.1:9"
    local ok, err = h:call(req, "test-token")
    assert.is_false(ok)
    assert.is_true(core.is(err, "ConnectionError"), tostring(err))
    local before = #server:log()
    assert.is_true((list(h, server.ca_file)))
    assert.are.equal(before + 1, #server:log())
  end)
end)
