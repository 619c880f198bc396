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
      local ok, err = pcall(vertexops.%s, args.name, nil,
                            T.opts { endpoint = args.endpoint, sleep = sleep, retry = { max_retries = 5 } })
      return { ok = ok, tags = err.tags, message = err.message, certificate = err.certificate,
               delays = delays, connects = T.stats.connects - before }]]):format(method),
      { name = H.NAME .. "1", endpoint = other.endpoint:gsub("127%.0%.0%.1", "localhost") })
  end

  -- The certificate failure ends the call: the retry layer sleeps (the recorder) before every retry,
  -- and with max_retries = 5 a retried certificate failure would record 5 delays. Fewer than 5 and a
  -- certificate error at the end: the attempt that met the certificate was the last. (On an idle
  -- machine no delay at all; under load in make test an attempt before it failed once otherwise, a
  -- retry the contract gives, so "no delay" is not the witness. Nor is the worker's connection
  -- counter: it counts every exchange of the worker.)
  it("cancel stops at the certificate failure: no retry after it", function()
    local res = attempt("cancel")
    assert.is_false(res.ok)
    assert.are.same({ "ConnectionFailedError", "ConnectionError" }, res.tags, cjson.encode(res))
    assert.is_true(res.certificate, cjson.encode(res))
    assert.is_true(#res.delays < 5, cjson.encode(res))
    assert.are.equal(0, #other:log())
  end)

  it("get stops at the certificate failure: no retry after it", function()
    local res = attempt("get")
    assert.is_true(res.certificate, cjson.encode(res))
    assert.is_true(#res.delays < 5, cjson.encode(res))
  end)

  it("says certificate verify failed and how to pass a CA", function()
    local res = attempt("get")
    assert.is_true(res.certificate, cjson.encode(res))
    assert.matches("^certificate verify failed: TLS handshake to localhost:%d+ failed: ", res.message)
    assert.matches("lua_ssl_trusted_certificate", res.message, 1, true)
    assert.matches("--ca-file", res.message, 1, true)
  end)
end)
