-- A short fault soak (spec/soak.lua; `make soak` runs a long one): 1,000 seeded random calls through
-- one client, each under a random fault of the fake server, in a child interpreter.
local H = require "support.helper"

local CALLS, SEED = 1000, 19

describe("a fault soak of " .. CALLS .. " calls (seed " .. SEED .. ")", function()
  local out, ok, secs
  setup(function()
    local socket = require "socket"
    local t0 = socket.gettime()
    out, ok = H.run(("timeout -s KILL 300 %s spec/soak.lua --quiet --calls %d --seed %d")
      :format(H.lua_command(), CALLS, SEED))
    secs = socket.gettime() - t0
  end)

  it("keeps the process alive to the end", function()
    assert.is_nil(out:match("the worker ended with status [^\n]*"))
    assert.matches("soak: seed", out)
  end)

  it("ends every call in the outcome the contract gives its fault", function()
    assert.matches("\n0 failures\n", out, 1, true)
    assert.is_true(ok, out:sub(1, 3000))
  end)

  it("keeps RSS flat after the warm-up (growth under 2 MiB)", function()
    local grew, allowed = out:match("growth ([+-]%d+) KiB, allowed (%d+)")
    assert.is_not_nil(grew, out:sub(-500))
    assert.is_true(tonumber(grew) <= tonumber(allowed), "RSS grew by " .. grew .. " KiB")
  end)

  it("opens no more file descriptors after the warm-up (2 more at most)", function()
    local after, final = out:match("fds: %d+ at start, (%d+) after warm%-up, (%d+) at the end")
    assert.is_not_nil(after, out:sub(-500))
    assert.is_true(tonumber(final) - tonumber(after) <= 2, after .. " then " .. final .. " fds")
  end)

  it("ends: no call hangs", function()
    -- about 15 s alone, 30 s beside the other interpreters; under make asan's instrumented core
    -- (VERTEXOPS_ASAN_PRELOAD set) about twice that (219 s once on a machine loaded by other builds)
    H.within(secs, os.getenv("VERTEXOPS_ASAN_PRELOAD") and 60 or 30, "the soak")
  end)
end)
