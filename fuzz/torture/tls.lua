-- A blocking exchange over HTTPS (HTTP/2, the fake's CA) through a shared connection cache
-- (core.share, handle:share): a new handle and share made under failure too.
local core = require "vertexops.core"
local function env(k) return assert(os.getenv(k), k .. " is not set") end
return {
  setup = function()
    local s = core.share()
    local h = core.handle()
    h:share(s)
    local req = core.build("get", env("TORTURE_OP"), nil, { endpoint = env("TORTURE_HTTPS") })
    req.ca_file = env("TORTURE_CA")
    return { h = h, s = s, req = req, token = env("TORTURE_TOKEN") }
  end,
  run = function(ctx)
    local s2 = core.share()
    local h2 = core.handle()
    h2:share(s2)
    h2:share(ctx.s)
    s2:close()
    local ok, res = ctx.h:call(ctx.req, ctx.token)
    if not ok then error(res, 0) end
    ok, res = h2:call(ctx.req, ctx.token)
    if not ok then error(res, 0) end
    h2:close()
  end,
  check = function(ctx)
    local ok, res = ctx.h:call(ctx.req, ctx.token)
    if not ok and core.is(res, "ConnectionError") and tostring(res.message):find("(curl error 18)", 1, true) then
      -- Named dependency behaviour (libcurl 7.88.1): a failed allocation inside its HTTP/2 send path
      -- (nghttp2_session_send's callback) ends that exchange with a ConnectionError but leaves the
      -- connection in the cache; the next request on it fails once with "HTTP/2 stream N was not
      -- closed cleanly" (curl error 18), a ConnectionError the client's retry policy absorbs. The
      -- request after it must succeed: a handle broken for good is still a finding.
      io.stderr:write("KNOWN libcurl: one request failed on an HTTP/2 connection a failed allocation broke\n")
      ok, res = ctx.h:call(ctx.req, ctx.token)
    end
    assert(ok, tostring(res))
  end,
}
