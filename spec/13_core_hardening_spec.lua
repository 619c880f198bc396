-- The C core against hostile answers and bad arguments: no crash, no untagged error, nothing
-- sent that was not validated (no token kept: spec/07_credentials_tokens_spec.lua). Calls that
-- could crash run in a child interpreter, so a crash fails the spec instead of the suite.
local core = require "vertexops.core"
local H = require "support.helper"

local NAME = H.NAME .. "1"

describe("core hardening", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  describe("proxies", function()
    it("from the environment never carry a plain http:// request (and its token)", function()
      server:create { id = "1" }
      local dead_proxy = "http://127.0.0.1:" .. H.closed_port()
      local out = H.run_lua(([[
        local ok, res = pcall(require("vertexops").get, %q, nil, { endpoint = %q, token = "test-token", retry = false })
        print(ok and "ok" or tostring(res))
      ]]):format(NAME, server.http_endpoint), { http_proxy = dead_proxy, ALL_PROXY = dead_proxy })
      assert.matches("^ok", out)
      assert.are.equal(1, #server:log("get"))
    end)
  end)

  -- cjson decodes a JSON list to a table with keys 1..n, an object to one with string keys
  describe("error.details that is no list", function()
    local INFO = '{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"R"}'
    local function classify(body)
      local ok, err = core.classify(400, "HTTP/1.1 400 Bad\r\n", body)
      assert.is_false(ok)
      assert.are.equal("HttpError", err.tags[1])
      return err
    end

    it("an empty object or an empty list sets no details", function()
      assert.is_nil(classify('{"error":{"details":{}}}').details)
      assert.is_nil(classify('{"error":{"details":[]}}').details)
    end)

    it("an object with the keys of a list is no list", function()
      local err = classify('{"error":{"details":{"1":' .. INFO .. '}}}')
      assert.is_nil(err.details)
      assert.is_nil(err.reason)
      err = classify('{"error":{"details":[' .. INFO .. '],"details":' .. INFO .. '}}') -- the last member counts
      assert.is_nil(err.details)
      err = classify('{"error":{"details":' .. INFO .. ',"d\\u0065tails":[' .. INFO .. ']}}')
      assert.are.equal("R", err.details[1].reason)
      assert.are.equal("R", err.reason)
    end)

    it("an ErrorInfo is read only under a type URL whose last segment is google.rpc.ErrorInfo", function()
      local function reason(type_url)
        return classify(('{"error":{"details":[{"@type":%q,"reason":"R"}]}}'):format(type_url)).reason
      end
      assert.are.equal("R", reason("type.googleapis.com/google.rpc.ErrorInfo"))
      assert.are.equal("R", reason("example.test/types/google.rpc.ErrorInfo"))
      assert.is_nil(reason("type.googleapis.com/x.google.rpc.ErrorInfo"))
      assert.is_nil(reason("x/evilgoogle.rpc.ErrorInfo"))
      assert.is_nil(reason("google.rpc.ErrorInfo"))
    end)
  end)
end)
