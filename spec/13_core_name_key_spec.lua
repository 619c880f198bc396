-- cancel_all keeps the names it has seen as small keys (lua/vertexops/fleet.lua): the operation's
-- id as a number when that is exact, else the rest of the name. core.name_key (csrc/request.c)
-- makes the key in C, where a Lua pattern, a substring and tonumber cost about 2,000 instructions
-- per cancel on Lua 5.4: the same key as that Lua, witnessed here against it on crafted and random
-- names.
local core = require "vertexops.core"

local math_type = math.type
-- The Lua the C replaced.
local function reference(s, from)
  local id = s:match("^/operations/([1-9]%d*)$", from)
  local n = id and #id <= 19 and tonumber(id)
  if n and (math_type and math_type(n) == "integer" or not math_type and n < 2 ^ 53) then return n end
  return s:sub(from)
end

local P = "projects/p/locations/l"

describe("core.name_key, the key of a name cancel_all has seen", function()
  it("is the operation's id as a number", function()
    assert.equal(123, core.name_key(P .. "/operations/123", #P + 1))
    if math_type then assert.equal("integer", math_type(core.name_key(P .. "/operations/7", #P + 1))) end
  end)

  it("is the rest of the name for an id with a leading zero, a sign or anything but digits", function()
    for _, id in ipairs { "0123", "0", "+1", "-1", "1e5", "1.0", "1 ", " 1", "0x10", "12a", "", "1/2" } do
      assert.equal("/operations/" .. id, core.name_key(P .. "/operations/" .. id, #P + 1), id)
    end
  end)

  it("is the rest of the name for a name of another shape", function()
    assert.equal("/tuningJobs/1/operations/2", core.name_key(P .. "/tuningJobs/1/operations/2", #P + 1))
    assert.equal("/operation/1", core.name_key(P .. "/operation/1", #P + 1))
  end)

  it("is the rest of the name for an id past what a Lua number holds exactly", function()
    local big = "99999999999999999999" -- 20 digits
    assert.equal("/operations/" .. big, core.name_key(P .. "/operations/" .. big, #P + 1))
    local max19 = "9999999999999999999" -- 19 digits, past 2^63
    assert.equal("/operations/" .. max19, core.name_key(P .. "/operations/" .. max19, #P + 1))
    if math_type then
      assert.equal(math.maxinteger, core.name_key(P .. "/operations/" .. ("%d"):format(math.maxinteger), #P + 1))
    else
      assert.equal(2 ^ 53 - 1, core.name_key(P .. "/operations/9007199254740991", #P + 1))
      assert.equal("/operations/9007199254740992", core.name_key(P .. "/operations/9007199254740992", #P + 1))
    end
  end)

  it("is the empty string from past the name's end, as s:sub gives it", function()
    assert.equal("", core.name_key("abc", 4))
    assert.equal("", core.name_key("abc", 10))
  end)

  it("is the Lua reference's on random names", function()
    local parts = { "/operations/", "/operations", "1", "0", "9", "12", "x", "/", " ", ".", "e", "-",
                    "9223372036854775807", "9223372036854775808", "9007199254740993", "\0" }
    math.randomseed(20261206)
    for _ = 1, 5000 do
      local t = { P }
      for j = 2, math.random(1, 6) do t[j] = parts[math.random(#parts)] end
      local s = table.concat(t)
      local from = math.random(1, #s + 2) -- (cancel_all: at the '/' after its parent)
      if math.random() < 0.7 then from = #P + 1 end
      assert.equal(reference(s, from), core.name_key(s, from), ("%q %d"):format(s, from))
    end
  end)

  it("raises for a name that is not a string or a position before the name", function()
    assert.has_error(function() core.name_key(nil, 1) end)
    assert.has_error(function() core.name_key("x", "y") end)
    assert.has_error(function() core.name_key("x", 0) end)
  end)
end)
