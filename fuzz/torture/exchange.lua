-- Blocking exchanges over libcurl (handle:call) with the fake server: an operation (200) and a
-- missing one (404, Google's error envelope), over plain HTTP/1.1; the handle of setup must serve
-- the next call.
local core = require "vertexops.core"
local function env(k) return assert(os.getenv(k), k .. " is not set") end
return {
  setup = function()
    local o = { endpoint = env("TORTURE_HTTP") }
    return {
      h = core.handle(), token = env("TORTURE_TOKEN"),
      get = core.build("get", env("TORTURE_OP"), nil, o),
      missing = core.build("get", "projects/test-project/locations/us-central1/operations/missing", nil, o),
    }
  end,
  run = function(ctx)
    ctx.get.want_headers = true
    local ok, res = ctx.h:call(ctx.get, ctx.token)
    if not ok then error(res, 0) end
    local ok2, err = ctx.h:call(ctx.missing, ctx.token)
    assert(not ok2)
    if err.code ~= 404 then error(err, 0) end
  end,
  check = function(ctx)
    local ok, res = ctx.h:call(ctx.get, ctx.token)
    assert(ok, tostring(res))
    assert(res.name == os.getenv("TORTURE_OP"))
    assert(ctx.h:stats().held_headers == 0)
  end,
}
