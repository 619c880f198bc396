-- The REST calls as the fake server sees them: method, path, body, headers, protocol.
local vertexops = require "vertexops"
local core = require "vertexops.core"
local H = require "support.helper"

describe("calls", function()
  local fake = H.fake_server()
  local server, o
  before_each(function()
    server = fake.server
    o = H.opts(server)
  end)

  describe("cancel", function()
    it("POSTs {name}:cancel with an empty body and returns true", function()
      local op = server:create {}
      assert.is_true(vertexops.cancel(op.name, "us-central1", o))
      local log = server:log()
      assert.are.equal(1, #log)
      assert.are.equal("POST", log[1].method)
      assert.are.equal("/v1beta1/" .. op.name .. ":cancel", log[1].path)
      assert.are.equal("", log[1].body)
      assert.are.equal("0", log[1].headers["content-length"])
    end)

    it("sends the bearer token and Google's client headers", function()
      local op = server:create {}
      vertexops.cancel(op.name, nil, o)
      local h = server:log()[1].headers
      assert.are.equal("Bearer test-token", h.authorization)
      assert.matches("^gl%-lua/5%.%d vertexops/%d+%.%d+%.%d+$", h["x-goog-api-client"])
      assert.are.equal("name=" .. op.name:gsub("/", "%%2F"), h["x-goog-request-params"])
      assert.matches("^vertexops/", h["user-agent"])
      assert.are.equal("application/json", h["content-type"])
      assert.is_nil(h["x-goog-user-project"])
    end)

    it("speaks HTTP/2 over TLS", function()
      local op = server:create {}
      vertexops.cancel(op.name, nil, o)
      local e = server:log()[1]
      assert.are.equal("https", e.scheme)
      assert.are.equal("HTTP/2.0", e.protocol)
    end)

    it("sends x-goog-user-project from opts.user_project", function()
      local op = server:create {}
      vertexops.cancel(op.name, nil, H.opts(server, { user_project = "billing-project" }))
      assert.are.equal("billing-project", server:log()[1].headers["x-goog-user-project"])
    end)

    it("takes the region from the name when it is omitted", function()
      local op = server:create { location = "europe-west4" }
      local seen
      vertexops.cancel(op.name, nil, H.opts(server, {
        endpoint = server.endpoint .. "/{region}",
      }))
      seen = server:log()[1].path
      assert.are.equal("/europe-west4/v1beta1/" .. op.name .. ":cancel", seen)
    end)

    it("fills {region} in the endpoint template", function()
      local c = core.build("cancel", "projects/p/locations/asia-northeast1/operations/7")
      assert.are.equal("https://asia-northeast1-aiplatform.googleapis.com/v1beta1/"
        .. "projects/p/locations/asia-northeast1/operations/7:cancel", c.url)
    end)

    it("uses Vertex's global host for the location global", function()
      local c = core.build("cancel", "projects/p/locations/global/operations/7")
      assert.are.equal("https://aiplatform.googleapis.com/v1beta1/projects/p/locations/global/operations/7:cancel", c.url)
    end)

    it("makes the operation end CANCELLED", function()
      local op = server:create {}
      vertexops.cancel(op.name, nil, o)
      local after = vertexops.get(op.name, nil, o)
      assert.is_true(after.done)
      assert.are.equal(1, after.error.code)
    end)

    it("reads JSON integers as Lua integers", function()
      if not math.type then return pending("no integer subtype before Lua 5.3") end
      local op = server:create {}
      vertexops.cancel(op.name, nil, o)
      assert.are.equal("integer", math.type(vertexops.get(op.name, nil, o).error.code))
    end)

    it("raises AuthError when there is no token anywhere", function()
      local op = server:create {}
      local err = H.raises(vertexops.cancel, op.name, nil, { endpoint = server.endpoint, ca_file = server.ca_file })
      assert.are.equal("AuthError", H.tags(err))
      assert.are.equal(0, #server:log())
    end)

    it("takes a token function", function()
      local op = server:create {}
      local calls = 0
      vertexops.cancel(op.name, nil, H.opts(server, { token = function() calls = calls + 1; return "test-token" end }))
      assert.are.equal(1, calls)
    end)

    it("raises HttpError 401 for a token the server refuses", function()
      local op = server:create {}
      local err = H.raises(vertexops.cancel, op.name, nil, H.opts(server, { token = "expired" }))
      assert.are.equal(401, err.code)
      assert.are.equal("UNAUTHENTICATED", err.status)
    end)
  end)

  describe("vertexops.core.cancel (through a client's path)", function()
    it("cancels with the token from GOOGLE_OAUTH_ACCESS_TOKEN", function()
      local op = server:create {}
      local out, ok = H.run_lua(([[
        local core = require "vertexops.core"
        print(core.cancel(%q, nil, { endpoint = %q, ca_file = %q }))
      ]]):format(op.name, server.endpoint, server.ca_file), { GOOGLE_OAUTH_ACCESS_TOKEN = "test-token" })
      assert.is_true(ok, out)
      assert.are.equal("true\n", out)
      assert.are.equal("Bearer test-token", server:log()[1].headers.authorization)
    end)

    it("raises AuthError when GOOGLE_OAUTH_ACCESS_TOKEN is empty and no token is given", function()
      local out, ok = H.run_lua([[
        local core = require "vertexops.core"
        local ok, err = pcall(core.cancel, "projects/p/locations/us-central1/operations/1")
        print(err.tags[1])
      ]], { GOOGLE_OAUTH_ACCESS_TOKEN = "" })
      assert.is_true(ok, out)
      assert.are.equal("AuthError\n", out)
    end)

    it("raises the same tagged errors", function()
      local err = H.raises(core.get, H.NAME .. "404", nil, o)
      assert.are.equal("HttpError", H.tags(err))
      assert.are.equal(404, err.code)
      assert.is_true(vertexops.is(err, "HttpError"))
    end)

    it("does not retry: retries are the Lua front's policy", function()
      local op = server:create {}
      server:fault { match = "cancel", status = 503 }
      local err = H.raises(core.cancel, op.name, nil, o)
      assert.are.equal(503, err.code)
      assert.are.equal(1, #server:log())
    end)
  end)

  describe("get", function()
    it("GETs {name} and returns the Operation", function()
      local op = server:create {}
      local got = vertexops.get(op.name, nil, o)
      assert.are.equal(op.name, got.name)
      assert.is_nil(got.done)
      local e = server:log()[1]
      assert.are.equal("GET", e.method)
      assert.are.equal("/v1beta1/" .. op.name, e.path)
    end)

    it("accepts names nested under a resource", function()
      local name = "projects/test-project/locations/us-central1/endpoints/123/operations/456"
      server:create { name = name, done = true }
      assert.is_true(vertexops.get(name, nil, o).done)
    end)
  end)

  describe("delete", function()
    it("DELETEs {name} and returns true", function()
      local op = server:create {}
      assert.is_true(vertexops.delete(op.name, nil, o))
      local e = server:log()[1]
      assert.are.equal("DELETE", e.method)
      assert.are.equal("/v1beta1/" .. op.name, e.path)
      assert.are.equal(404, H.raises(vertexops.get, op.name, nil, o).code)
    end)
  end)

  describe("list", function()
    it("GETs {parent}/operations with filter, pageSize and pageToken", function()
      for _ = 1, 3 do server:create {} end
      local page = vertexops.list(H.PARENT, nil, H.opts(server, { page_size = 2, filter = "done = false" }))
      assert.are.equal(2, #page.operations)
      assert.is_string(page.next_page_token)
      local e = server:log()[1]
      assert.are.equal("/v1beta1/" .. H.PARENT .. "/operations", e.path)
      assert.are.equal("filter=done%20%3D%20false&pageSize=2", e.query)
      local rest = vertexops.list(H.PARENT, nil, H.opts(server, { page_size = 2, page_token = page.next_page_token }))
      assert.are.equal(1, #rest.operations)
      assert.is_nil(rest.next_page_token)
      assert.are.equal("pageSize=2&pageToken=" .. page.next_page_token, server:log()[2].query)
    end)

    it("returns an empty list for a parent with no operations", function()
      local page = vertexops.list("projects/other/locations/us-central1", nil, o)
      assert.are.same({}, page.operations)
      assert.is_nil(page.next_page_token)
    end)

    it("iterates every page with operations()", function()
      for _ = 1, 7 do server:create {} end
      local n = 0
      for op in vertexops.operations(H.PARENT, nil, H.opts(server, { page_size = 3 })) do
        n = n + 1
        assert.are.equal(H.NAME, op.name:sub(1, #H.NAME))
      end
      assert.are.equal(7, n)
      assert.are.equal(3, #server:log("list"))
    end)
  end)

  describe("server-side wait", function()
    it("POSTs {name}:wait?timeout=Ns and returns the operation", function()
      local op = server:create { done_after = 0.1 }
      local got = vertexops.wait_once(op.name, nil, 5, o)
      assert.is_true(got.done)
      local e = server:log()[1]
      assert.are.equal("POST", e.method)
      assert.are.equal("/v1beta1/" .. op.name .. ":wait", e.path)
      assert.are.equal("timeout=5s", e.query)
    end)
  end)
end)
