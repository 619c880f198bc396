-- The seconds of a server-side wait (docs/contract.md, "Functions": wait_once, and the
-- google.protobuf.Duration of :wait): a finite number from 0 to a year, sent rounded up to the
-- nanosecond without trailing zeros; anything else refused before any I/O, naming the argument.
local vertexops = require "vertexops"
local core = require "vertexops.core"
local H = require "support.helper"

local NAME = H.NAME .. "1"

describe("the seconds of a server-side wait", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  describe("wait seconds", function()
    local function build(secs)
      return core.build("wait", NAME, nil, { endpoint = "https://127.0.0.1:1" }, secs)
    end
    local function fails(secs)
      local ok, err = pcall(build, secs)
      assert.is_false(ok)
      assert.matches("seconds", err.message, 1, true) -- names the argument
      return err.tags[1]
    end

    it("refuse a string", function() assert.are.equal("TypeError", fails("abc")) end)
    it("refuse a table", function() assert.are.equal("TypeError", fails({})) end)
    it("refuse NaN", function() assert.are.equal("ValueError", fails(0 / 0)) end)
    it("refuse a negative number", function() assert.are.equal("ValueError", fails(-5)) end)
    it("refuse infinity", function() assert.are.equal("ValueError", fails(1 / 0)) end)
    it("refuse more than a year", function() assert.are.equal("ValueError", fails(1e300)) end)

    it("send a nanosecond as a nanosecond", function()
      assert.matches(":wait%?timeout=0%.000000001s$", build(1e-9).url)
    end)

    it("send a fraction without trailing zeros", function()
      assert.matches(":wait%?timeout=2%.5s$", build(2.5).url)
    end)

    it("send whole seconds as such", function()
      assert.matches(":wait%?timeout=30s$", build(30).url)
    end)

    it("are refused by wait_once before any I/O", function()
      local err = H.raises(vertexops.wait_once, NAME, nil, "abc", H.opts(server))
      assert.are.equal("TypeError", err.tags[1])
      assert.are.equal(0, #server:log())
    end)
  end)
end)
