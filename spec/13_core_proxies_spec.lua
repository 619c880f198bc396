-- Proxies from the environment (docs/contract.md, "Environment variables"): libcurl under the core never sends a
-- plain http:// request (and its token) through one. Run in a child interpreter started with them.
local H = require "support.helper"

local NAME = H.NAME .. "1"

describe("proxies from the environment", function()
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
end)
