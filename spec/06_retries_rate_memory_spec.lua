-- The adaptive pacing of a bulk call (lua/vertexops/rate.lua) keeps the times of the requests it let
-- go and of the answers that were not 429, to measure the quota when a 429 comes. Before any 429
-- nothing counts them, and a long sweep kept every one of them (a million cancels, two million
-- times): they are now dropped once older than the window it measures over (LEARN_PER), every few
-- thousand (TRIM_EVERY), on the injected clock.
local rate = require "vertexops.rate"

describe("a bulk call's adaptive pacing before any 429", function()
  local function kept(d) return d.tail - d.head + 1 end
  local req = { call = "cancel", url = "https://h/v1/projects/p/locations/l/operations/1" }

  it("keeps the times of the requests it let go within the window it measures over", function()
    local a, now = rate.adaptive(), 1000
    for _ = 1, 20000 do
      now = now + 0.1
      assert.is_true((rate.admit_now(a, req, now)))
    end
    local s = a.keys["p/l"]
    assert.is_true(kept(s.sent) <= 60 / 0.1 + 4096, kept(s.sent) .. " kept")
    assert.is_true(kept(s.sent) >= 60 / 0.1, kept(s.sent) .. " kept") -- the last minute, every one
  end)

  it("keeps the times of the answers within the window it measures over", function()
    local a, now = rate.adaptive(), 1000
    local o = { clock = function() return now end }
    for _ = 1, 20000 do
      now = now + 0.1
      rate.answered(a, o, req, now, true, {})
    end
    local s = a.keys["p/l"]
    assert.is_true(kept(s.accepted) <= 60 / 0.1 + 4096, kept(s.accepted) .. " kept")
    assert.is_true(kept(s.accepted) >= 60 / 0.1, kept(s.accepted) .. " kept")
  end)
end)
