-- The clock hooks and metrics measure calls on when the options give none: core.clock's
-- (CLOCK_MONOTONIC), read through LuaJIT's FFI where LuaJIT has it (lua/vertexops/hooks.lua: a C
-- function called through the Lua API ends a trace; issue 19 §4), else core.clock itself. It is
-- the same clock: a reading of it lies between two of core.clock's around it.
-- Contract: docs/contract.md, "Hooks, trace context and logs".
local core = require "vertexops.core"
local hooks = require "vertexops.hooks"

local ffi_there = rawget(_G, "jit") ~= nil and pcall(require, "ffi") and require("ffi").os == "Linux"

describe("the hooks' default clock", function()
  it("reads core.clock's clock: each reading between two of core.clock's around it", function()
    local clock = hooks._default_clock()
    for _ = 1, 1000 do
      local a = core.clock()
      local b = clock()
      local c = core.clock()
      assert.is_true(a <= b and b <= c, ("%.9f %.9f %.9f"):format(a, b, c))
    end
  end)

  it("is read through FFI under LuaJIT on Linux, and is core.clock elsewhere", function()
    local clock = hooks._default_clock()
    if ffi_there then
      assert.are_not.equal(core.clock, clock)
    else
      assert.are.equal(core.clock, clock)
    end
  end)
end)
