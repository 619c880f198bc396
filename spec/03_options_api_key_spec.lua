-- The api_key option (express mode): sent as x-goog-api-key, with no OAuth token fetched and no
-- Authorization header, as Google's clients do; refused beside token or credentials; never in a
-- message, in tostring() of an error, nor in the fake's request log.
-- Contract: docs/contract.md, "Options" (api_key) and "Credentials".
local vertexops = require "vertexops"
local core = require "vertexops.core"
local cjson = require "cjson"
local H = require "support.helper"

local KEY = "AIzaSy-express-0123456789abcdefXYZ"
local NAME = "projects/p/locations/us-central1/operations/7"

-- asserts that nothing err shows holds the key: message, tostring, and the fields it carries
local function keyless(err)
  assert.is_nil(tostring(err):find(KEY, 1, true), tostring(err))
  assert.is_nil((err.message or ""):find(KEY, 1, true), err.message)
  local ok, fields = pcall(cjson.encode, { body = err.body, headers = err.headers, cause = err.cause and tostring(err.cause) })
  if ok then assert.is_nil(fields:find(KEY, 1, true), fields) end
end

describe("api_key", function()
  it("is sent as x-goog-api-key in the built request", function()
    local req = core.build("cancel", NAME, nil, { api_key = KEY })
    local found = {}
    for _, h in ipairs(req.headers) do
      if h:lower():find("^x%-goog%-api%-key:") then found[#found + 1] = h end
    end
    assert.are.same({ "x-goog-api-key: " .. KEY }, found)
    for _, h in ipairs(core.build("cancel", NAME, nil, {}).headers) do
      assert.is_nil(h:lower():find("x-goog-api-key", 1, true), h)
    end
  end)

  it("is refused beside token or credentials, with a ValueError naming both", function()
    for _, other in ipairs { { token = "t" }, { token = function() return "t" end }, { credentials = "/no/such.json" } } do
      local o = { api_key = KEY }
      local which = next(other)
      o[which] = other[which]
      local err = H.raises(vertexops.client, o)
      assert.are.equal("ValueError: options 'api_key' and '" .. which .. "' cannot be used together", tostring(err))
      err = H.raises(core.build, "get", NAME, nil, o)
      assert.are.equal("ValueError", err.tags[1])
    end
  end)

  it("refuses a key that cannot go in a header without showing it; a non-string is a TypeError", function()
    for _, bad in ipairs { "", "two words", "line\nbreak", "tab\tkey", "caf\195\169", KEY .. " " } do
      local err = H.raises(vertexops.client, { api_key = bad })
      assert.are.equal("ValueError: option 'api_key' is empty or contains a space, a control character or a "
        .. "non-ASCII byte", tostring(err))
    end
    local err = H.raises(vertexops.client, { api_key = 42 })
    assert.are.equal("TypeError: option 'api_key' must be a string, got number", tostring(err))
  end)

  describe("against the fake", function()
    local fake = H.fake_server()
    local server
    local function opts(extra)
      local o = { endpoint = server.endpoint, ca_file = server.ca_file, api_key = KEY, retry = false }
      for k, v in pairs(extra or {}) do o[k] = v end
      return o
    end
    before_each(function()
      server = fake.server
      server:api_keys { KEY }
    end)

    it("reaches the server with the key and no Authorization header, no token fetched", function()
      local op = server:create {}
      assert.are.equal(op.name, vertexops.get(op.name, nil, opts()).name)
      local log = server:log()
      assert.are.equal(1, #log) -- no token or metadata request
      assert.are.equal("get", log[1].call)
      assert.are.equal("accepted", log[1].api_key) -- the fake had exactly this key
      assert.is_nil(log[1].headers.authorization)
    end)

    it("is never in the fake's request log, which shows its header as (redacted)", function()
      local op = server:create {}
      vertexops.cancel(op.name, nil, opts())
      local log = server:log()
      assert.are.equal("(redacted)", log[1].headers["x-goog-api-key"])
      assert.is_nil(cjson.encode(log):find(KEY, 1, true))
      assert.is_nil(cjson.encode(server:control("GET", "log")):find(KEY, 1, true))
    end)

    it("is answered 400 API_KEY_INVALID when the server does not know it, and the error does not show it", function()
      local op = server:create {}
      server:api_keys { "another-key" }
      local err = H.raises(vertexops.get, op.name, nil, opts())
      assert.are.equal(400, err.code)
      assert.are.equal("API_KEY_INVALID", err.reason)
      assert.are.equal("refused", server:log()[1].api_key)
      keyless(err)
    end)

    it("does not show in the error of a 401 or a 403, and a 401 fetches no token", function()
      local op = server:create {}
      for _, status in ipairs { 401, 403 } do
        server:reset_log()
        server:fault { match = "get", status = status }
        local err = H.raises(vertexops.get, op.name, nil, opts())
        assert.are.equal(status, err.code)
        keyless(err)
        assert.are.equal(1, #server:log(), "a " .. status .. " is not retried with a fresh token")
      end
    end)

    it("does not show in the error of a transport failure, nor of the timeout around it", function()
      local o = opts { endpoint = "http://127.0.0.1:" .. H.closed_port() }
      local err = H.raises(vertexops.get, NAME, nil, o)
      assert.are.equal("ConnectionFailedError", err.tags[1])
      keyless(err)
      local t = H.fake_time()
      err = H.raises(vertexops.get, NAME, nil, opts { endpoint = o.endpoint, retry = { max_retries = 3 }, timeout = 2,
                                                       clock = t.clock, sleep = t.sleep })
      keyless(err)
    end)

    it("ignores the credentials chain and the environment's quota project; an explicit user_project is sent", function()
      local dir = os.tmpname()
      os.remove(dir)
      os.execute("mkdir -p " .. dir)
      H.fake.write(dir .. "/user.json", cjson.encode { type = "authorized_user", client_id = "test-client",
        client_secret = "test-secret", refresh_token = "test-refresh", token_uri = server.endpoint .. "/token",
        quota_project_id = "file-quota" })
      local op = server:create {}
      local out, ok = H.run_lua(([[
        local vertexops = require "vertexops"
        local o = { endpoint = %q, ca_file = %q, api_key = %q }
        vertexops.get(%q, nil, o)
        o.user_project = "explicit-quota"
        vertexops.get(%q, nil, o)
        print("ok")
      ]]):format(server.endpoint, server.ca_file, KEY, op.name, op.name),
        { GOOGLE_APPLICATION_CREDENTIALS = dir .. "/user.json", GOOGLE_OAUTH_ACCESS_TOKEN = "env-token",
          GOOGLE_CLOUD_QUOTA_PROJECT = "env-quota" })
      os.execute("rm -rf " .. dir)
      assert.is_true(ok, out)
      local log = server:log()
      assert.are.equal(2, #log, "no token request")
      assert.are.same({ "get", "get" }, { log[1].call, log[2].call })
      assert.is_nil(log[1].headers.authorization)
      assert.is_nil(log[1].headers["x-goog-user-project"])
      assert.are.equal("explicit-quota", log[2].headers["x-goog-user-project"])
      assert.are.equal("accepted", log[2].api_key)
    end)

    it("goes with a client's own options as with a call's", function()
      local op = server:create {}
      local c = vertexops.client(opts())
      assert.is_true(c:cancel(op.name))
      assert.are.equal(op.name, c:get(op.name).name)
      c:close()
      local log = server:log()
      assert.are.equal(2, #log)
      assert.are.equal("accepted", log[2].api_key)
    end)

    it("goes with every request of client:start and cancel_many", function()
      local a, b = server:create {}, server:create {}
      local c = vertexops.client(opts())
      assert.are.equal(a.name, c:start("get", a.name):wait().name)
      c:cancel_many { a.name, b.name }
      c:close()
      local log = server:log()
      assert.are.equal(3, #log)
      for _, e in ipairs(log) do
        assert.are.equal("accepted", e.api_key, e.call)
        assert.is_nil(e.headers.authorization)
      end
    end)

    it("in a call over a client that has a token is refused before any request", function()
      local op = server:create {}
      local c = vertexops.client { endpoint = server.endpoint, ca_file = server.ca_file, token = "test-token" }
      local err = H.raises(c.get, c, op.name, nil, { api_key = KEY })
      c:close()
      assert.are.equal("ValueError: options 'api_key' and 'token' cannot be used together", tostring(err))
      assert.are.equal(0, #server:log())
    end)
  end)
end)
