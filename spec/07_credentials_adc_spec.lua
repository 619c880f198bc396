-- Google credentials: the ADC chain, RS256 JWTs, caching, early refresh, 401 refresh-and-retry,
-- failures -- through the fake server's token and metadata endpoints.
local vertexops = require "vertexops"
local auth = require "vertexops.auth"
local core = require "vertexops.core"
local cjson = require "cjson"
local H = require "support.helper"

local function b64url_decode(s)
  local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
  local bits = s:gsub(".", function(c)
    local v = alphabet:find(c, 1, true) - 1
    local r = ""
    for i = 5, 0, -1 do r = r .. math.floor(v / 2 ^ i) % 2 end
    return r
  end)
  return (bits:gsub("%d%d%d?%d?%d?%d?%d?%d?", function(byte)
    if #byte < 8 then return "" end
    return string.char(tonumber(byte, 2))
  end))
end

local write = H.fake.write

describe("credentials", function()
  local server, dir, key_pem, seen_errors
  local SECRETS = { "test-secret", "test-refresh" }

  setup(function()
    server = H.fake.start()
    dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p " .. dir .. "/gcloud " .. dir .. "/home/.config/gcloud")
    key_pem = H.fake.make_rsa_key(dir)
    SECRETS[#SECRETS + 1] = key_pem:match("\n([^\n]+)\n") -- a line of the private key
    local sa = {
      type = "service_account", project_id = "test-project", private_key_id = "kid-123",
      private_key = key_pem, client_email = "robot@test-project.iam.gserviceaccount.com",
      client_id = "1234", token_uri = server.endpoint .. "/token",
    }
    write(dir .. "/sa.json", cjson.encode(sa))
    sa.quota_project_id = "sa-quota"
    write(dir .. "/sa_quota.json", cjson.encode(sa))
    local user = { type = "authorized_user", client_id = "test-client", client_secret = "test-secret",
                   refresh_token = "test-refresh", token_uri = server.endpoint .. "/token",
                   quota_project_id = "user-quota" }
    write(dir .. "/user.json", cjson.encode(user))
    write(dir .. "/gcloud/application_default_credentials.json", cjson.encode(user))
    write(dir .. "/home/.config/gcloud/application_default_credentials.json", cjson.encode(user))
    write(dir .. "/bad.json", "{ not json")
    write(dir .. "/external.json", cjson.encode { type = "gdch_service_account", name = "x" })
    sa.private_key = "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"
    write(dir .. "/badkey.json", cjson.encode(sa))
    seen_errors = {}
  end)
  teardown(function()
    server:stop()
    os.execute("rm -rf " .. dir)
  end)
  before_each(function()
    server:reset()
    auth.reset_metadata_cache()
  end)

  -- every error raised in these specs is kept, and checked for secrets at the end
  local function raises(f, ...)
    local err = H.raises(f, ...)
    seen_errors[#seen_errors + 1] = tostring(err)
    return err
  end

  local function client(extra)
    local o = { endpoint = server.endpoint, ca_file = server.ca_file }
    for k, v in pairs(extra or {}) do o[k] = v end
    return vertexops.client(o)
  end

  local function bearer(entry) return entry.headers.authorization:match("^Bearer (.+)$") end

  describe("service_account", function()
    it("signs an RS256 JWT and exchanges it at the file's token_uri", function()
      local op = server:create {}
      local c = client { credentials = dir .. "/sa.json" }
      c:cancel(op.name)
      local log = server:log()
      assert.are.equal("token", log[1].call)
      assert.are.equal("cancel", log[2].call)
      assert.are.equal("ya29.fake-1", bearer(log[2]))
      local assertion = log[1].body:match("assertion=([%w%-_%.]+)")
      assert.matches("grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant%-type%%3Ajwt%-bearer", log[1].body)
      local h, c64, sig = assertion:match("^([^.]+)%.([^.]+)%.([^.]+)$")
      local header, claims = cjson.decode(b64url_decode(h)), cjson.decode(b64url_decode(c64))
      assert.are.same({ alg = "RS256", typ = "JWT", kid = "kid-123" }, header)
      assert.are.equal("robot@test-project.iam.gserviceaccount.com", claims.iss)
      assert.are.equal("https://www.googleapis.com/auth/cloud-platform", claims.scope)
      assert.are.equal(server.endpoint .. "/token", claims.aud)
      assert.are.equal(3600, claims.exp - claims.iat)
      assert.is_true(math.abs(claims.iat - os.time()) < 60)
      -- the signature, checked by openssl against the public key
      write(dir .. "/signed.txt", h .. "." .. c64)
      write(dir .. "/sig.bin", b64url_decode(sig))
      local out, ok = H.run("openssl dgst -sha256 -verify " .. dir .. "/pub.pem -signature " .. dir .. "/sig.bin "
        .. dir .. "/signed.txt")
      assert.is_true(ok, out)
      assert.matches("Verified OK", out)
    end)

    it("joins opts.scopes into the scope claim", function()
      local c = client { credentials = dir .. "/sa.json", scopes = { "https://a/x", "https://b/y" } }
      c:get(server:create {}.name)
      local assertion = server:log()[1].body:match("assertion=([%w%-_%.]+)")
      local claims = cjson.decode(b64url_decode(assertion:match("^[^.]+%.([^.]+)")))
      assert.are.equal("https://a/x https://b/y", claims.scope)
    end)

    it("sends a self-signed JWT directly with self_signed_jwt = true", function()
      local c = client { credentials = dir .. "/sa.json", self_signed_jwt = true }
      local op = server:create {}
      server:tokens {} -- the fake refuses every bearer: look at what was sent
      raises(c.get, c, op.name, nil, { retry = false })
      local log = server:log()
      assert.are.equal(0, #server:log("token"))
      local jwt = bearer(log[1])
      local claims = cjson.decode(b64url_decode(jwt:match("^[^.]+%.([^.]+)")))
      assert.are.equal("robot@test-project.iam.gserviceaccount.com", claims.iss)
      assert.are.equal(claims.iss, claims.sub)
      assert.are.equal(3600, claims.exp - claims.iat)
    end)

    it("raises AuthError naming the file for a bad PEM", function()
      local err = raises(client { credentials = dir .. "/badkey.json" }.get, client { credentials = dir .. "/badkey.json" },
        H.NAME .. "1")
      assert.are.equal("AuthError", H.tags(err))
      assert.matches("badkey.json", err.message)
      assert.matches("not a PEM private key", err.message)
      assert.are.equal(0, #server:log())
    end)
  end)

  describe("authorized_user", function()
    it("exchanges the refresh token and sends the file's quota project", function()
      local c = client { credentials = dir .. "/user.json" }
      c:cancel(server:create {}.name)
      local log = server:log()
      assert.are.equal("token", log[1].call)
      assert.matches("grant_type=refresh_token", log[1].body)
      assert.matches("client_id=test%-client", log[1].body)
      assert.are.equal("ya29.fake-1", bearer(log[2]))
      assert.are.equal("user-quota", log[2].headers["x-goog-user-project"])
    end)

    it("lets opts.user_project override the file's quota project", function()
      local c = client { credentials = dir .. "/user.json", user_project = "mine" }
      c:get(server:create {}.name)
      assert.are.equal("mine", server:log("get")[1].headers["x-goog-user-project"])
    end)

    it("raises AuthError with the OAuth error for a revoked refresh token", function()
      server:oauth { refresh_token = "another" }
      local c = client { credentials = dir .. "/user.json" }
      local err = raises(c.get, c, H.NAME .. "1")
      assert.are.equal("AuthError", H.tags(err))
      assert.are.equal("invalid_grant", err.error)
      assert.are.equal("Token has been expired or revoked.", err.error_description)
      assert.are.equal(400, err.code)
      assert.are.equal(0, #server:log("get"))
    end)

    it("raises AuthError for a client the token endpoint does not know (401)", function()
      server:oauth { client_secret = "rotated" }
      local c = client { credentials = dir .. "/user.json" }
      local err = raises(c.get, c, H.NAME .. "1")
      assert.are.equal("invalid_client", err.error)
    end)
  end)

  describe("token cache", function()
    it("fetches one token for many calls", function()
      local c = client { credentials = dir .. "/sa.json" }
      local op = server:create {}
      for _ = 1, 10 do c:get(op.name) end
      c:cancel(op.name)
      assert.are.equal(1, #server:log("token"))
    end)

    it("fetches one token for a batch of requests running side by side", function()
      local c = client { credentials = dir .. "/sa.json" }
      local names = {}
      for i = 1, 20 do names[i] = server:create {}.name end
      server:fault { match = "token", delay = 0.2 } -- the fetch is still in flight when the others need it
      local results = c:cancel_many(names)
      for i = 1, 20 do assert.is_true(results[i].ok) end
      assert.are.equal(1, #server:log("token"))
      local reqs = {}
      c.auth:invalidate()
      server:fault { match = "token", delay = 0.2 }
      for i = 1, 5 do reqs[i] = c:start("get", names[i]) end
      for i = 1, 5 do reqs[i]:wait() end
      assert.are.equal(2, #server:log("token"))
    end)

    it("refreshes 300 s before expiry, by the injected clock", function()
      local t = H.fake_time()
      local c = client { credentials = dir .. "/sa.json", clock = t.clock, sleep = t.sleep }
      local op = server:create {}
      c:get(op.name)
      t.now = t.now + 3299 -- 301 s left: still good
      c:get(op.name)
      assert.are.equal(1, #server:log("token"))
      t.now = t.now + 2 -- 299 s left: replaced
      c:get(op.name)
      assert.are.equal(2, #server:log("token"))
      assert.are.equal("ya29.fake-2", bearer(server:log("get")[3]))
    end)

    it("reads expires_in given as a string", function()
      server:oauth { expires_in = 400, expires_in_string = true }
      local t = H.fake_time()
      local c = client { credentials = dir .. "/sa.json", clock = t.clock, sleep = t.sleep }
      local op = server:create {}
      c:get(op.name)
      t.now = t.now + 99
      c:get(op.name)
      assert.are.equal(1, #server:log("token"))
      t.now = t.now + 2
      c:get(op.name)
      assert.are.equal(2, #server:log("token"))
    end)

    it("refreshes once on a 401 and retries the request once", function()
      local c = client { credentials = dir .. "/sa.json" }
      local op = server:create {}
      c:get(op.name)
      server:tokens {} -- the service now refuses the cached token
      server:reset_log()
      assert.is_true(c:cancel(op.name))
      local calls = {}
      for _, e in ipairs(server:log()) do calls[#calls + 1] = e.call end
      assert.are.same({ "cancel", "token", "cancel" }, calls)
      assert.are.equal("ya29.fake-2", bearer(server:log()[3]))
    end)

    it("raises the 401 when the fresh token is refused too", function()
      local c = client { credentials = dir .. "/sa.json" }
      local op = server:create {}
      server:fault { match = "get", status = 401, times = 2 }
      local err = raises(c.get, c, op.name)
      assert.are.equal(401, err.code)
      assert.are.equal(2, #server:log("get"))
      assert.are.equal(2, #server:log("token"))
    end)

    it("does not refresh a raw token on 401", function()
      local c = client { token = "not-accepted" }
      raises(c.get, c, server:create {}.name)
      assert.are.equal(1, #server:log())
    end)

    it("retries the token endpoint on 503 like an idempotent call", function()
      local t = H.fake_time()
      local c = client { credentials = dir .. "/sa.json", clock = t.clock, sleep = t.sleep }
      server:fault { match = "token", status = 503 }
      server:fault { match = "token", status = 500 }
      c:get(server:create {}.name)
      assert.are.equal(3, #server:log("token"))
      assert.are.same({ 1, 1.25 }, t.delays)
    end)

    it("is a public provider object", function()
      local p = auth.provider { credentials = dir .. "/sa.json", ca_file = server.ca_file }
      local a, b = p:token(), p:token()
      assert.are.equal(a, b)
      assert.are.equal(1, p.fetches)
      assert.matches("service_account file .*sa%.json", tostring(p))
      local c = client { credentials = p }
      c:get(server:create {}.name)
      assert.are.equal(1, #server:log("token"))
    end)

    it("takes a token function from hosts with their own token source", function()
      local n = 0
      local c = client { token = function() n = n + 1; return "test-token" end }
      c:get(server:create {}.name)
      assert.are.equal(1, n)
    end)
  end)

  describe("bad files", function()
    local cases = {
      { "missing.json", "cannot be opened" },
      { "", "cannot be read" }, -- the directory itself
      { "bad.json", "not valid JSON" },
      { "external.json", "type 'gdch_service_account'" },
    }
    for _, case in ipairs(cases) do
      it("raises AuthError naming the file: " .. case[2], function()
        local path = dir .. "/" .. case[1]
        local c = client { credentials = path }
        local err = raises(c.get, c, H.NAME .. "1")
        assert.are.equal("AuthError", H.tags(err))
        assert.is_truthy(err.message:find(path, 1, true))
        assert.is_truthy(err.message:find(case[2], 1, true), err.message)
        assert.are.equal(0, #server:log())
      end)
    end
  end)

  describe("the chain", function()
    -- runs a get in a child process with only the given environment; prints the bearer sent
    local function child(env)
      local op = server:create {}
      local e = { GOOGLE_OAUTH_ACCESS_TOKEN = "", GOOGLE_APPLICATION_CREDENTIALS = "", CLOUDSDK_CONFIG = "",
                  GCE_METADATA_HOST = "127.0.0.1:" .. H.closed_port(), HOME = dir .. "/nohome",
                  GOOGLE_CLOUD_QUOTA_PROJECT = "" }
      for k, v in pairs(env) do e[k] = v end
      local out, ok = H.run_lua(([[
        local vertexops = require "vertexops"
        local ok, err = pcall(vertexops.get, %q, nil, { endpoint = %q, ca_file = %q })
        io.write(ok and "ok" or tostring(err))
      ]]):format(op.name, server.endpoint, server.ca_file), e)
      assert.is_true(ok, out)
      if out ~= "ok" then seen_errors[#seen_errors + 1] = out end
      local gets = server:log("get")
      return out, gets[#gets] and bearer(gets[#gets])
    end

    it("prefers GOOGLE_OAUTH_ACCESS_TOKEN to everything", function()
      local out, sent = child { GOOGLE_OAUTH_ACCESS_TOKEN = "test-token",
        GOOGLE_APPLICATION_CREDENTIALS = dir .. "/sa.json", CLOUDSDK_CONFIG = dir .. "/gcloud" }
      assert.are.equal("ok", out)
      assert.are.equal("test-token", sent)
      assert.are.equal(0, #server:log("token"))
    end)

    it("prefers GOOGLE_APPLICATION_CREDENTIALS to the gcloud file", function()
      local out = child { GOOGLE_APPLICATION_CREDENTIALS = dir .. "/sa.json", CLOUDSDK_CONFIG = dir .. "/gcloud" }
      assert.are.equal("ok", out)
      assert.matches("jwt%-bearer", server:log("token")[1].body)
    end)

    it("fails on a GOOGLE_APPLICATION_CREDENTIALS file that is missing, naming it", function()
      local out = child { GOOGLE_APPLICATION_CREDENTIALS = dir .. "/gone.json", CLOUDSDK_CONFIG = dir .. "/gcloud" }
      assert.matches("^AuthError: credentials file .*gone%.json %(GOOGLE_APPLICATION_CREDENTIALS%)", out)
    end)

    it("uses the gcloud file in $CLOUDSDK_CONFIG", function()
      local out = child { CLOUDSDK_CONFIG = dir .. "/gcloud" }
      assert.are.equal("ok", out)
      assert.matches("grant_type=refresh_token", server:log("token")[1].body)
    end)

    it("uses the gcloud file in ~/.config/gcloud without CLOUDSDK_CONFIG", function()
      local out = child { HOME = dir .. "/home" }
      assert.are.equal("ok", out)
      assert.are.equal(1, #server:log("token"))
    end)

    it("asks the metadata server last, with Metadata-Flavor: Google", function()
      local out, sent = child { GCE_METADATA_HOST = "127.0.0.1:" .. server.http_port }
      assert.are.equal("ok", out)
      local m = server:log("metadata")[1]
      assert.are.equal("Google", m.headers["metadata-flavor"])
      assert.are.equal("/computeMetadata/v1/instance/service-accounts/default/token", m.path)
      assert.are.equal("ya29.fake-1", sent)
    end)

    it("raises AuthError listing what was tried when nothing is found", function()
      local out = child {}
      assert.matches("^AuthError: no Google credentials found", out)
      assert.matches("GOOGLE_OAUTH_ACCESS_TOKEN is not set", out)
      assert.matches("GOOGLE_APPLICATION_CREDENTIALS is not set", out)
      assert.matches("no gcloud file", out)
      assert.matches("metadata server 127%.0%.0%.1:%d+: ", out)
    end)

    -- the seam a new credential type plugs into (lua/vertexops/auth/sources.lua)
    it("gives every credential type a kind, a fetch, its refreshability and its shared_dict identity", function()
      local sources = require "vertexops.auth.sources"
      assert.is_true(#sources.CHAIN >= 3 and #sources.FILE_TYPES >= 2 and next(sources.KINDS) ~= nil,
        "the credential tables list next to nothing: the spec would check nothing")
      for _, entry in ipairs(sources.CHAIN) do
        assert.are.equal("string", type(entry.name))
        assert.are.equal("function", type(entry.detect), entry.name)
      end
      for _, t in ipairs(sources.FILE_TYPES) do
        assert.are.equal(t, sources.KINDS[t.kind], tostring(t.kind))
        assert.are.equal("table", type(t.fields), t.kind)
      end
      for kind, t in pairs(sources.KINDS) do
        assert.are.equal(kind, t.kind)
        assert.are.equal("function", type(t.fetch), kind)
        assert.are.equal("boolean", type(t.refreshable), kind)
        if t.cached ~= false then assert.are.equal("function", type(t.identity), kind) end
      end
    end)
  end)

  describe("metadata server", function()
    it("is refused without Metadata-Flavor: Google", function()
      local http = require "socket.http"
      local _, code = http.request(server.http_endpoint .. "/computeMetadata/v1/instance/service-accounts/default/token")
      assert.are.equal(403, code)
    end)

    it("that never answers gives a fast AuthError, remembered for the next call", function()
      local socket = require "socket"
      local silent = assert(socket.bind("127.0.0.1", 0)) -- accepts connections, never answers
      local _, port = silent:getsockname()
      local out = H.run_lua(([[
        local auth = require "vertexops.auth"
        local p = auth.provider {}
        local ok1, e1 = pcall(p.token, p)
        local ok2, e2 = pcall(auth.provider {}.token, auth.provider {})
        print(e1.tags[1], e2.tags[1], e1.message == e2.message)
        print(e1.message)
      ]]), { GOOGLE_OAUTH_ACCESS_TOKEN = "", GOOGLE_APPLICATION_CREDENTIALS = "", HOME = dir .. "/nohome",
             CLOUDSDK_CONFIG = "", GCE_METADATA_HOST = "127.0.0.1:" .. port })
      silent:settimeout(0)
      local accepted = 0
      while silent:accept() do accepted = accepted + 1 end
      silent:close()
      seen_errors[#seen_errors + 1] = out
      assert.matches("^AuthError\tAuthError\ttrue\n", out)
      assert.matches("metadata server 127%.0%.0%.1:%d+: .*timed out", out)
      assert.are.equal(1, accepted, "the second lookup should not have asked again")
    end)
  end)

  describe("secrets", function()
    it("never appear in an error message", function()
      assert.is_true(#seen_errors > 10)
      for _, msg in ipairs(seen_errors) do
        for _, secret in ipairs(SECRETS) do
          assert.is_falsy(msg:find(secret, 1, true), "secret in: " .. msg)
        end
        assert.is_falsy(msg:find("ya29.", 1, true), "access token in: " .. msg)
        assert.is_falsy(msg:find("PRIVATE KEY", 1, true), "key in: " .. msg)
      end
    end)

    it("never appear in tostring of a provider or a client", function()
      local p = auth.provider { credentials = dir .. "/user.json", ca_file = server.ca_file }
      p:token()
      for _, s in ipairs { tostring(p), tostring(client { credentials = p }) } do
        for _, secret in ipairs(SECRETS) do assert.is_falsy(s:find(secret, 1, true)) end
        assert.is_falsy(s:find("ya29.", 1, true))
      end
    end)
  end)

  it("keeps core.rs256 quiet about key material", function()
    local sig, why = core.rs256("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "x")
    assert.is_nil(sig)
    assert.are.equal("private_key is not a PEM private key", why)
  end)
end)
