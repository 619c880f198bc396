-- Error objects: core.error, core.is, __tostring, and the raises of the argument checks.
local core = require "vertexops.core"
return {
  setup = function() return {} end,
  run = function()
    local e = core.error({ "HttpError", "Other" }, "message", { code = 503, body = { a = 1 } })
    assert(core.is(e, "Other") and tostring(e) == "HttpError: message")
    local ok, err = pcall(core.b64url, 42)
    assert(not ok)
    if not core.is(err, "TypeError") then error(err, 0) end
    ok, err = pcall(core.classify, 1, "", "")
    assert(not ok)
    if not core.is(err, "ValueError") then error(err, 0) end
    local _, raised = pcall(error, core.error({ "ValueError" }, "raised " .. tostring(err)), 0)
    if not core.is(raised, "ValueError") then error(raised, 0) end
  end,
  check = function()
    local e = core.error({ "TimeoutError" }, "m", { elapsed = 1 })
    assert(core.is(e, "TimeoutError") and tostring(e) == "TimeoutError: m" and e.elapsed == 1)
  end,
}
