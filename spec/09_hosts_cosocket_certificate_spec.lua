-- make test: once
-- The cosocket transport in a real nginx (spec/support/openresty.lua): a server certificate that
-- fails verification against lua_ssl_trusted_certificate is one attempt (one connection, no retry
-- sleep), then a ConnectionFailedError saying "certificate verify failed" and how to pass a CA.
local cjson = require "cjson"
local H = require "support.helper"
local openresty = require "support.openresty"

describe("cosocket transport, a certificate nginx does not trust", function()
  local fake = H.fake_server()
  local app, other

  setup(function()
    app = openresty.start(fake.server)
    other = H.fake.start() -- its certificate is not the app's lua_ssl_trusted_certificate
  end)
  teardown(function()
    app:stop()
    other:stop()
  end)

  local function attempt(method)
    return app:result(([[
      local sleep, delays = T.recorder()
      local before = T.stats.connects
      local ok, err = pcall(vertexops.%s, args.name, nil, T.opts { endpoint = args.endpoint, sleep = sleep })
      return { ok = ok, tags = err.tags, message = err.message, certificate = err.certificate,
               delays = delays, connects = T.stats.connects - before }]]):format(method),
      { name = H.NAME .. "1", endpoint = other.endpoint:gsub("127%.0%.0%.1", "localhost") })
  end

  -- One attempt: the retry layer sleeps (the recorder) before every retry, so no delay recorded is
  -- no retry. (The worker's connection counter is not the witness: it counts every exchange of the
  -- worker, and read 2 once under load in make test.)
  it("cancel is one attempt: no retry delay", function()
    local res = attempt("cancel")
    assert.is_false(res.ok)
    assert.are.same({ "ConnectionFailedError", "ConnectionError" }, res.tags, cjson.encode(res))
    assert.is_true(res.connects >= 1, cjson.encode(res))
    assert.are.same({}, res.delays)
    assert.are.equal(0, #other:log())
  end)

  it("get is one attempt: no retry delay", function()
    local res = attempt("get")
    assert.is_true(res.connects >= 1, cjson.encode(res))
    assert.are.same({}, res.delays)
  end)

  it("says certificate verify failed and how to pass a CA", function()
    local res = attempt("get")
    assert.is_true(res.certificate, cjson.encode(res))
    assert.matches("^certificate verify failed: TLS handshake to localhost:%d+ failed: ", res.message)
    assert.matches("lua_ssl_trusted_certificate", res.message, 1, true)
    assert.matches("--ca-file", res.message, 1, true)
  end)
end)
