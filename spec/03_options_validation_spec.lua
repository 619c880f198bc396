-- Bad options raise TypeError or ValueError naming the option, before any I/O: the fake server's
-- log stays empty. (Names, regions and parents: spec/02_names_validation_spec.lua.)
local vertexops = require "vertexops"
local core = require "vertexops.core"
local H = require "support.helper"

describe("validation", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)
  after_each(function()
    assert.are.equal(0, #server:log(), "a request reached the server")
  end)

  -- a ValueError whose message names what it is about (spec/support/helper.lua)
  local value_error = H.value_error

  it("rejects an unknown option key, naming it", function()
    local err = value_error("option 'timout'", vertexops.cancel, H.NAME .. "1", nil, H.opts(server, { timout = 5 }))
    assert.matches("timout", err.message)
  end)

  it("rejects a negative timeout", function()
    value_error("option 'timeout'", vertexops.cancel, H.NAME .. "1", nil, H.opts(server, { timeout = -1 }))
  end)

  it("rejects a zero request_timeout and a NaN connect_timeout", function()
    value_error("option 'request_timeout'", vertexops.get, H.NAME .. "1", nil, H.opts(server, { request_timeout = 0 }))
    value_error("option 'connect_timeout'", vertexops.get, H.NAME .. "1", nil,
      H.opts(server, { connect_timeout = 0 / 0 }))
  end)

  it("rejects a timeout longer than a year", function()
    value_error("option 'timeout'", vertexops.get, H.NAME .. "1", nil, H.opts(server, { timeout = 31536001 }))
  end)

  it("rejects an option of the wrong type with TypeError", function()
    local err = H.raises(vertexops.get, H.NAME .. "1", nil, H.opts(server, { timeout = "30" }))
    assert.are.equal("TypeError", H.tags(err))
  end)

  it("rejects options that are not a table with TypeError", function()
    assert.are.equal("TypeError", H.tags(H.raises(vertexops.get, H.NAME .. "1", nil, "fast")))
  end)

  it("rejects unknown keys inside retry", function()
    value_error("unknown key 'retries' in option 'retry'", vertexops.get, H.NAME .. "1", nil,
      H.opts(server, { retry = { retries = 3 } }))
  end)

  it("rejects plain http:// to a host that is not loopback", function()
    local err = value_error("endpoint ", vertexops.cancel, H.NAME .. "1", nil,
      { endpoint = "http://{region}-aiplatform.googleapis.com", token = "t" })
    assert.matches("http://", err.message)
  end)

  it("rejects endpoints with user info, a query or another scheme", function()
    for _, e in ipairs { "https://user@host.example", "https://host.example/?x=1",
                         "ftp://host.example", "https://host.example/#f", "https://{project}.example" } do
      value_error("endpoint ", vertexops.get, H.NAME .. "1", nil, { endpoint = e, token = "t" })
    end
  end)

  it("accepts plain http:// on loopback", function()
    assert.has_no.errors(function() core.build("get", H.NAME .. "1", nil, { endpoint = "http://localhost:1" }) end)
    assert.has_no.errors(function() core.build("get", H.NAME .. "1", nil, { endpoint = "http://127.0.0.2:1" }) end)
  end)

  it("checks a client's options when the client is made", function()
    value_error("endpoint ", vertexops.client, { endpoint = "http://example.com" })
    value_error("option 'bogus'", vertexops.client, { bogus = true })
  end)

  it("rejects a page_size that is not a positive integer", function()
    value_error("option 'page_size'", vertexops.list, H.PARENT, nil, H.opts(server, { page_size = 0 }))
    assert.are.equal("TypeError", H.tags(H.raises(vertexops.list, H.PARENT, nil, H.opts(server, { page_size = 1.5 }))))
  end)

  it("names an integer option's bounds and the value given as integers", function()
    local cases = {
      { { max_in_flight = 0 }, "option 'max_in_flight' must be >= 1, got 0" },
      { { max_in_flight = 100001 }, "option 'max_in_flight' must be at most 100000, got 100001" },
      { { page_size = 0 }, "option 'page_size' must be >= 1, got 0" },
      { { concurrency = 0 }, "option 'concurrency' must be >= 1, got 0" },
      { { pool_size = 0 }, "option 'pool_size' must be >= 1, got 0" },
      { { pool_backlog = -1 }, "option 'pool_backlog' must be >= 0, got -1" },
      { { thread_pool_size = 100001 }, "option 'thread_pool_size' must be at most 100000, got 100001" },
      { { retry = { max_retries = 1001 } }, "option 'retry.max_retries' must be at most 1000, got 1001" },
    }
    for _, c in ipairs(cases) do
      local err = value_error("option '", vertexops.get, H.NAME .. "1", nil, H.opts(server, c[1]))
      assert.are.equal(c[2], err.message)
    end
  end)

  it("names a number option's bounds without a spurious .0, the value as given", function()
    assert.are.equal("option 'timeout' must be > 0, got -1",
      value_error("option 'timeout'", vertexops.get, H.NAME .. "1", nil, H.opts(server, { timeout = -1 })).message)
    assert.are.equal("option 'timeout' must be at most 31536000, got 31536000.5",
      value_error("option 'timeout'", vertexops.get, H.NAME .. "1", nil, H.opts(server, { timeout = 31536000.5 }))
        .message)
  end)

  it("rejects a token with a line break before sending it", function()
    local err = H.raises(vertexops.cancel, H.NAME .. "1", nil, H.opts(server, { token = "abc\r\nX-Evil: 1" }))
    assert.are.equal("ValueError", H.tags(err))
    assert.matches("option 'token'", err.message, 1, true)
    assert.not_matches("abc", err.message)
  end)
end)
