-- make test: once
-- The spec tree is the contract's index: every spec file is spec/NN_<section>_<topic>_spec.lua, its
-- number and section one pair of the table below (CONTRIBUTING.md, "Where a spec goes"), so a spec
-- is found under the contract's section it checks and the tree cannot drift back to the order
-- specs were written in.
local H = require "support.helper"

local SECTIONS = {
  ["01"] = "calls", ["02"] = "names", ["03"] = "options", ["04"] = "errors", ["05"] = "answers",
  ["06"] = "retries", ["07"] = "credentials", ["08"] = "waiting", ["09"] = "hosts", ["10"] = "fleet",
  ["11"] = "cli", ["12"] = "fake", ["13"] = "core", ["14"] = "docs",
}

-- why name (a file name under spec/) breaks the scheme, or nil
local function breaks(name)
  local nn, section, topic = name:match("^(%d%d)_(%l+)_([%l%d_]+)_spec%.lua$")
  if not nn then return "is not NN_<section>_<topic>_spec.lua (lower case, digits, '_')" end
  if not SECTIONS[nn] then return "has no section numbered " .. nn end
  if SECTIONS[nn] ~= section then return nn .. " is the section " .. SECTIONS[nn] .. ", not " .. section end
  if topic:match("^_") or topic:match("__") then return "has an empty word in its topic" end
  return nil
end

describe("the spec tree", function()
  it("names every spec file NN_<section>_<topic>_spec.lua after one of the contract's sections", function()
    local names = {}
    for name in H.run("ls spec"):gmatch("[^\n]+") do
      if name:match("_spec%.lua$") then names[#names + 1] = name end
    end
    assert.is_true(#names >= 14, #names .. " spec files found: the check would check nothing")
    for _, name in ipairs(names) do
      assert.is_nil(breaks(name), "spec/" .. name .. " " .. tostring(breaks(name)))
    end
  end)

  it("refuses a name of the old scheme, a wrong section, an unknown number and no topic", function()
    assert.is_nil(breaks("06_retries_policy_spec.lua"))
    assert.is_nil(breaks("13_core_h1_spec.lua"))
    assert.is_not_nil(breaks("04_retry_spec.lua"))            -- the old scheme: no section
    assert.is_not_nil(breaks("04_retries_policy_spec.lua"))   -- 04 is errors
    assert.is_not_nil(breaks("15_misc_things_spec.lua"))      -- no section 15
    assert.is_not_nil(breaks("06_retries_spec.lua"))          -- no topic
    assert.is_not_nil(breaks("6_retries_policy_spec.lua"))    -- one digit
  end)

  it("lists the sections CONTRIBUTING.md gives, in the same words", function()
    local text = H.read("CONTRIBUTING.md")
    for nn, section in pairs(SECTIONS) do
      assert.matches("`" .. nn .. "` " .. section, text, 1, true)
    end
  end)
end)
