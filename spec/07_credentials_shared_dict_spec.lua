-- make test: once
-- Tokens shared by nginx workers (option shared_dict): examples/openresty/nginx.conf with two
-- workers and an authorized_user key file whose token endpoint is the fake's (it counts the
-- token requests, and holds each for a while so that both workers ask while one fetch is in
-- flight). Requests reach both workers (each answer names its worker's pid); the fake sees one
-- token fetch between them, and the token never appears in nginx's log.
local cjson = require "cjson"
local H = require "support.helper"
local fake = require "support.fake"
local openresty = require "support.openresty"


describe("tokens shared by two nginx workers (shared_dict)", function()
  local h = openresty.credentials_harness(function(h)
    H.authorized_user(h.dir .. "/user.json", h.endpoint)
    return openresty.start_two_workers(h.server,
      { GOOGLE_OAUTH_ACCESS_TOKEN = "", GOOGLE_APPLICATION_CREDENTIALS = h.dir .. "/user.json" })
  end)
  local server, app, dir
  before_each(function() server, app, dir = h.server, h.app, h.dir end)

  it("makes one token fetch for both workers, and keeps the token out of the log", function()
    local created = server:create_many(200, {})
    server:fault { match = "token", delay = 0.5 }
    local ok, workers = openresty.probe_load(app, created.first, 200)
    assert.are.equal(200, ok)
    assert.are.equal(2, workers, "the load reached one worker only")
    assert.are.equal(1, #server:log("token"))
    assert.are.equal(200, #server:log("cancel"))
    local token = server:log("cancel")[1].headers.authorization:match("^Bearer (.+)$")
    assert.is_truthy(token)
    assert.is_falsy(app:error_log():find(token, 1, true))
  end)

  it("a worker that waited past LOCK_WAIT for a stuck fetch fetches on its own", function()
    local op = server:create {}
    local res = app:result([[
      local auth = require "vertexops.auth"
      local c = vertexops.client { shared_dict = "vertexops" }
      local p = c:_provider(c:_options())
      local key = auth.shared_key(p)
      local dict = ngx.shared.vertexops
      dict:delete(key)
      dict:set(key .. " lock", true, 60) -- a fetch that died with its worker
      local saved = auth.LOCK_WAIT
      auth.LOCK_WAIT = 0.3
      local t0 = ngx.now()
      local ok, err = pcall(c.get, c, args.name)
      auth.LOCK_WAIT = saved
      ngx.update_time()
      dict:delete(key .. " lock")
      return { ok = ok, err = not ok and tostring(err) or nil, waited = ngx.now() - t0, fetches = p.fetches }]],
      { name = op.name })
    assert.is_true(res.ok, res.err)
    assert.is_true(res.waited >= 0.3, tostring(res.waited))
    assert.are.equal(1, res.fetches)
    assert.are.equal(1, #server:log("token"))
  end)

  -- Two calls, each on a new client with shared_dict: their outcomes, the lock and the dict entry after each.
  local TWO_CALLS = [[
    local auth = require "vertexops.auth"
    local out = {}
    for i = 1, 2 do
      local c = vertexops.client { shared_dict = "vertexops", timeout = 30,
                                   scopes = args.long_scope and string.rep("s", args.long_scope) or nil }
      local ok, e = pcall(c.get, c, args.name)
      local key = auth.shared_key(c.auth)
      out[i] = { ok = ok, tagged = ok or vertexops.is_error(e), tags = not ok and type(e) == "table" and e.tags or nil,
                 err = not ok and tostring(e) or nil, lock = ngx.shared.vertexops:get(key .. " lock") or false,
                 stored = ngx.shared.vertexops:get(key) ~= nil }
    end
    ngx.shared.vertexops:flush_all()
    return out]]

  for _, e in ipairs { { expires_in = -5, shown = "-5" }, { expires_in = 0, shown = "0" },
                       { expires_in = 1e12, shown = "1000000000000" },
                       { expires_in = "1e999", expires_in_string = true, shown = "inf" },
                       { expires_in = "soon", expires_in_string = true, shown = "soon" } } do
    it(("an expires_in of %s: the token serves its call only, with a warning; the lock is released")
        :format(e.shown), function()
      local op = server:create {}
      server:oauth { expires_in = e.expires_in, expires_in_string = e.expires_in_string }
      local res = app:result(TWO_CALLS, { name = op.name })
      server:oauth { expires_in = 3600, expires_in_string = false }
      for i = 1, 2 do
        assert.is_true(res[i].ok, "call " .. i .. ": " .. tostring(res[i].err))
        assert.is_false(res[i].lock, "call " .. i .. " left the lock held")
        assert.is_false(res[i].stored, "call " .. i .. " stored the token")
      end
      assert.are.equal(2, #server:log("token")) -- not stored: each call fetched its own
      assert.are.equal(2, #server:log("get"))
      assert.is_truthy(app:error_log():find("came with expires_in " .. e.shown .. ",", 1, true),
        "no warning in nginx's log")
    end)
  end

  it("a shared_dict that fails (a key too long for it) is an AuthError, and no lock is left", function()
    local op = server:create {}
    local res = app:result(TWO_CALLS, { name = op.name, long_scope = 70000 })
    assert.is_false(res[1].ok)
    assert.are.same({ "AuthError" }, res[1].tags, res[1].err)
    assert.matches("shared_dict 'vertexops'", res[1].err)
    assert.is_false(res[1].lock)
    assert.are.equal(0, #server:log("token"))
  end)

  it("keys tokens by credential: a client without self_signed_jwt never takes another's JWT", function()
    local testing = require "vertexops.testing"
    local endpoint = server.endpoint:gsub("127%.0%.0%.1", "localhost")
    local pem = testing.make_rsa_key(dir)
    fake.write(dir .. "/sa.json", cjson.encode { type = "service_account", client_email = "sa@p.iam.gserviceaccount.com",
      private_key = pem, token_uri = endpoint .. "/token" })
    local op = server:create {}
    -- a client with self_signed_jwt stores its JWT; one without must exchange for a token of its own
    app:result([[
      local a = vertexops.client { credentials = args.sa, self_signed_jwt = true, shared_dict = "vertexops", retry = false }
      pcall(a.get, a, args.name)  -- the fake refuses JWTs (401): the JWT was stored all the same
      return true]], { name = op.name, sa = dir .. "/sa.json" })
    local before = #server:log()
    app:result([[
      local b = vertexops.client { credentials = args.sa, shared_dict = "vertexops" }
      return b:get(args.name).name]], { name = op.name, sa = dir .. "/sa.json" })
    local log = server:log()
    assert.are.equal(before + 2, #log, "the client without self_signed_jwt sent another's token first")
    assert.are.equal("token", log[before + 1].call)
    assert.matches("^Bearer ya29%.fake%-", log[before + 2].headers.authorization)
    app:result([[ngx.shared.vertexops:flush_all()]])
  end)

  it("keys tokens by credential: a key file replaced at its path (rotation) gets a token of its own", function()
    local endpoint = server.endpoint:gsub("127%.0%.0%.1", "localhost")
    local op = server:create {}
    H.authorized_user(dir .. "/other.json", endpoint)
    app:result([[
      local c = vertexops.client { credentials = args.file, shared_dict = "vertexops" }
      return c:get(args.name).name]], { name = op.name, file = dir .. "/other.json" })
    H.authorized_user(dir .. "/other.json", endpoint,
      { client_id = "rotated-client", client_secret = "rotated-secret", refresh_token = "rotated-refresh" })
    server:oauth { client_id = "rotated-client", client_secret = "rotated-secret", refresh_token = "rotated-refresh" }
    app:result([[
      local c = vertexops.client { credentials = args.file, shared_dict = "vertexops" }
      local name = c:get(args.name).name
      ngx.shared.vertexops:flush_all()
      return name]], { name = op.name, file = dir .. "/other.json" })
    server:oauth { client_id = "test-client", client_secret = "test-secret", refresh_token = "test-refresh" }
    local calls, bodies = {}, {}
    for i, e in ipairs(server:log()) do calls[i], bodies[i] = e.call, e.body end
    assert.are.same({ "token", "get", "token", "get" }, calls)
    assert.matches("client_id=rotated%-client", bodies[3])
    assert.are_not.equal(server:log()[2].headers.authorization, server:log()[4].headers.authorization)
  end)

  it("checks shared_dict like every option: TypeError, ValueError, an unknown dict AuthError", function()
    local res = app:result([[
      local a = T.catch(vertexops.get, "projects/p/locations/l/operations/1", nil, { shared_dict = 7 })
      local b = T.catch(vertexops.get, "projects/p/locations/l/operations/1", nil, { shared_dict = "" })
      local c = T.catch(vertexops.get, "projects/p/locations/l/operations/1", nil, { shared_dict = "nope" })
      return { a.raised.tags[1], b.raised.tags[1], c.raised.tags[1], c.raised.message }]])
    assert.are.same({ "TypeError", "ValueError", "AuthError" }, { res[1], res[2], res[3] })
    assert.is_truthy(res[4]:find("lua_shared_dict", 1, true))
    assert.are.equal(0, #server:log())
  end)
end)
