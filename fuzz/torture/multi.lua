-- Non-blocking transfers: handle:start in a multi handle, multi:perform / multi:wait until done,
-- handle:finish; two transfers at once through one share; a multi, share and handle made under
-- failure too. The multi, share and handles of setup must serve the next transfer.
-- fuzz/torture/multi_tls.lua runs it over HTTPS (HTTP/2, PIPEWAIT): loadfile(...)("tls").
local tls = ... == "tls"
local core = require "vertexops.core"
local function env(k) return assert(os.getenv(k), k .. " is not set") end
local function drive(m, hs)
  for _ = 1, 2000 do
    local running = m:perform()
    local all = true
    for _, h in ipairs(hs) do all = all and h:done() end
    if all then return end
    if running > 0 then m:wait(0.05) end
  end
  error("transfers did not finish")
end
return {
  setup = function()
    local m, s = core.multi(), core.share()
    local h1, h2 = core.handle(), core.handle()
    h1:share(s)
    h2:share(s)
    local o = { endpoint = env(tls and "TORTURE_HTTPS" or "TORTURE_HTTP") }
    local get = core.build("get", env("TORTURE_OP"), nil, o)
    local missing = core.build("get", "projects/test-project/locations/us-central1/operations/missing", nil, o)
    -- a transfer libcurl would lose after a failed allocation ends at its own timeout (multi.c)
    get.timeout, missing.timeout = 3, 3
    if tls then get.ca_file, missing.ca_file = env("TORTURE_CA"), env("TORTURE_CA") end
    return {
      m = m, s = s, h1 = h1, h2 = h2, token = env("TORTURE_TOKEN"),
      get = get, missing = missing,
    }
  end,
  run = function(ctx)
    local m2, s2, h3 = core.multi(), core.share(), core.handle()
    h3:share(s2)
    ctx.h1:start(ctx.get, ctx.m, ctx.token)
    ctx.h2:start(ctx.missing, ctx.m, ctx.token)
    h3:start(ctx.get, m2, ctx.token)
    drive(ctx.m, { ctx.h1, ctx.h2 })
    drive(m2, { h3 })
    local ok, res = ctx.h1:finish()
    if not ok then error(res, 0) end
    local ok2, err = ctx.h2:finish()
    assert(not ok2)
    if err.code ~= 404 then error(err, 0) end
    ok, res = h3:finish()
    if not ok then error(res, 0) end
    m2:close()
  end,
  check = function(ctx)
    -- transfers the failing run left running end first; finished ones are collected
    for _ = 1, 2000 do
      if ctx.m:perform() == 0 then break end
      ctx.m:wait(0.05)
    end
    for _, h in ipairs { ctx.h1, ctx.h2 } do
      if h:done() then h:finish() end
    end
    ctx.h1:start(ctx.get, ctx.m, ctx.token)
    drive(ctx.m, { ctx.h1 })
    local ok, res = ctx.h1:finish()
    assert(ok, tostring(res))
  end,
}
