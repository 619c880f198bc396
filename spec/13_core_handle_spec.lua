-- The C handle: born closed, __gc and __close are one idempotent function, closed raises.
local core = require "vertexops.core"

describe("handle", function()
  it("is open when made and closes idempotently", function()
    local h = core.handle()
    assert.is_false(h:is_closed())
    h:close()
    h:close()
    assert.is_true(h:is_closed())
    assert.matches("closed", tostring(h))
  end)

  it("raises a tagged ValueError when used closed", function()
    local h = core.handle()
    h:close()
    local ok, err = pcall(h.call, h, { method = "GET", url = "http://127.0.0.1:1/" })
    assert.is_false(ok)
    assert.are.equal("ValueError", err.tags[1])
    assert.are.equal("attempt to use a closed vertexops handle", err.message)
  end)

  it("has the same function for __gc and __close", function()
    local mt = getmetatable(core.handle())
    assert.are.equal(mt.__gc, mt.__close)
  end)

  it("closes at the end of a to-be-closed scope (Lua 5.4)", function()
    if _VERSION ~= "Lua 5.4" then return pending("no <close> before Lua 5.4") end
    local h = load([[
      local core = ...
      local keep
      do
        local h <close> = core.handle()
        keep = h
      end
      return keep
    ]])(core)
    assert.is_true(h:is_closed())
  end)

  it("refuses a request header with a line break", function()
    local h = core.handle()
    local ok, err = pcall(h.call, h, { method = "GET", url = "http://127.0.0.1:1/", headers = { "X: a\r\nY: b" } })
    assert.is_false(ok)
    assert.are.equal("ValueError", err.tags[1])
    assert.matches("request header ", err.message, 1, true)
    h:close()
  end)

  it("gives a monotonic clock and a sleep", function()
    local a = core.clock()
    core.sleep(0.001)
    assert.is_true(core.clock() >= a)
  end)
end)
