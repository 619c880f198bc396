-- Bearer tokens (docs/contract.md, "Credentials"): a token that cannot go into a header line is
-- refused before any I/O, no handle or cached request keeps one after its exchange, a refresh gets
-- only what is left of the call's timeout, a 401 forever refreshes once, and an encrypted private
-- key fails at once without a pass-phrase prompt.
local vertexops = require "vertexops"
local core = require "vertexops.core"
local H = require "support.helper"

local NAME = H.NAME .. "1"

describe("bearer tokens", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  describe("tokens", function()
    it("with a space are refused by client()", function()
      local err = H.raises(vertexops.client, { token = "ab cd" })
      assert.are.equal("ValueError", err.tags[1])
      assert.matches("option 'token'", err.message, 1, true)
    end)

    it("with a byte above 0x7F are refused by client()", function()
      local err = H.raises(vertexops.client, { token = "ab\195\169" })
      assert.are.equal("ValueError", err.tags[1])
      assert.matches("option 'token'", err.message, 1, true)
    end)

    it("are not held by a handle after its exchange", function()
      local op = server:create {}
      local h = core.handle()
      local req = core.build("get", op.name, nil, H.opts(server))
      req.ca_file = server.ca_file
      local ok = h:call(req, "test-token")
      assert.is_true(ok)
      assert.are.equal(0, h:stats().held_headers)
      assert.are.equal("Bearer test-token", server:log()[1].headers.authorization)
      h:close()
    end)

    it("are not kept in a client's cached requests", function()
      local op = server:create {}
      local c = vertexops.client(H.opts(server))
      c:get(op.name)
      c:get(op.name)
      local cached = 0
      for _, req in pairs(c.built) do
        cached = cached + 1
        assert.is_nil(req.token)
      end
      assert.are.equal(1, cached)
      assert.are.equal(0, c.handle:stats().held_headers)
      c:close()
    end)

    it("are not held by a handle after a failed exchange", function()
      local h = core.handle()
      local req = core.build("get", NAME, nil, { endpoint = "http://127.0.0.1:" .. H.closed_port() })
      assert.is_false((h:call(req, "secret-token")))
      assert.are.equal(0, h:stats().held_headers)
      h:close()
    end)
  end)

  describe("private keys", function()
    it("that are encrypted fail at once without a pass-phrase prompt", function()
      if not H.have("script") then return pending("script(1) is needed for a terminal") end
      local dir = H.fake.tmpdir()
      assert(os.execute("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -aes256 -pass pass:x -out "
        .. dir .. "/enc.pem 2>/dev/null"))
      H.fake.write(dir .. "/try.lua", [[
        local f = assert(io.open(arg[1])); local pem = f:read("*a"); f:close()
        local sig, why = require("vertexops.core").rs256(pem, "data")
        print(sig and "signed" or why)
      ]])
      -- on a terminal (script's pty), where OpenSSL's default callback would prompt
      local out = H.run(("timeout 10 script -qec '%s %s/try.lua %s/enc.pem' /dev/null </dev/null")
        :format(H.lua_command(), dir, dir))
      os.execute("rm -rf " .. dir)
      assert.matches("encrypted", out)
    end)
  end)
end)

describe("bearer tokens", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  describe("token refresh", function()
    local dir, path
    setup(function()
      dir = H.fake.tmpdir()
      path = dir .. "/user.json"
      H.authorized_user(path, fake.server.endpoint)
    end)
    teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

    it("gets what is left of the call's timeout, and ends with TimeoutError when it runs out", function()
      local op = server:create {}
      local c = vertexops.client { credentials = path, endpoint = server.endpoint, ca_file = server.ca_file }
      c:get(op.name) -- a first token, cached
      server:fault { match = "get", status = 401, delay = 1 } -- the service refuses it, slowly
      server:fault { match = "token", delay = 30 }             -- and the refresh takes far longer
      local timeout = 1.5
      local t0 = core.clock()
      local err = H.raises(c.get, c, op.name, nil, { timeout = timeout })
      local elapsed = core.clock() - t0
      assert.are.equal("TimeoutError", H.tags(err))
      assert.is_true(vertexops.is_error(err.cause))
      H.within(elapsed, timeout, "the call") -- a refresh past the deadline would take 30 s
    end)
  end)
end)

describe("bearer tokens", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  describe("401 forever", function()
    it("refreshes the token once, then raises HttpError 401", function()
      local dir = H.fake.tmpdir()
      H.authorized_user(dir .. "/user.json", server.endpoint)
      server:fault { match = "get", status = 401, times = 1e9 }
      local t = H.fake_time()
      local err = H.raises(vertexops.get, H.NAME .. "1", nil,
        { endpoint = server.endpoint, ca_file = server.ca_file, credentials = dir .. "/user.json",
          clock = t.clock, sleep = t.sleep })
      os.execute("rm -rf " .. dir)
      assert.are.equal(401, err.code)
      assert.are.equal(2, #server:log("get"))
      assert.are.equal(2, #server:log("token"))
    end)
  end)
end)
