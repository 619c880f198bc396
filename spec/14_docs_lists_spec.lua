-- make test: once
-- The documents' lists that can drift from the code, checked against it: ARCHITECTURE.md's map
-- names every source file, the contract's tag table every tag the code makes (and no other), and
-- the contract's interpreters are the ones make test runs. (The README's commands and flags:
-- spec/11_cli_commands_spec.lua; the rockspec's modules: spec/14_docs_packaging_spec.lua.)
local H = require "support.helper"

local read = H.read

local function files(pattern)
  local out = {}
  for path in H.run("find " .. pattern .. " -type f | sort"):gmatch("[^\n]+") do out[#out + 1] = path end
  return out
end

local function plain(s) return (s:gsub("%p", "%%%0")) end

describe("ARCHITECTURE.md's map", function()
  local text = read("ARCHITECTURE.md")
  local map = text:match("\n## Map\n(.-)\n## ")

  -- a file is named by its path, or in the row of its directory by its own name
  local function named(path)
    if map:find("`" .. path .. "`", 1, true) then return true end
    local dir, base = path:match("^(.*/)([^/]+)$")
    for row in map:gmatch("[^\n]+") do
      if row:find("`" .. dir .. "`", 1, true) and row:find("%f[%w_]" .. plain(base)) then return true end
      if row:find("`" .. dir, 1, true) and row:find("`" .. plain(base) .. "`") then return true end
    end
    return false
  end

  it("names every Lua module of lua/vertexops/", function()
    assert.is_string(map, "ARCHITECTURE.md has no Map section")
    local paths = files("lua/vertexops -name '*.lua'")
    assert.is_true(#paths >= 10, #paths .. " Lua modules found: the check would check nothing")
    for _, path in ipairs(paths) do
      assert.is_true(named(path), "ARCHITECTURE.md's map does not name " .. path)
    end
  end)

  it("names every C file of csrc/", function()
    local paths = files("csrc -maxdepth 1 -name '*.c'")
    assert.is_true(#paths >= 5, #paths .. " C files found: the check would check nothing")
    for _, path in ipairs(paths) do
      assert.is_true(named(path), "ARCHITECTURE.md's map does not name " .. path)
    end
  end)
end)

describe("the contract's tag table", function()
  local contract = read("docs/contract.md")
  local documented = {}
  for tag in contract:match("\n| tag | when |\n(.-)\n\n"):gmatch("\n?| `(%u%a+Error)`") do documented[tag] = true end

  -- every "SomethingError" string literal of the library's sources
  local function made()
    local tags = {}
    local sources = files("csrc lua/vertexops -name '*.c' -o -name '*.h' -o -name '*.lua'")
    for _, path in ipairs(sources) do
      if not path:match("^lua/vertexops/testing/") then -- the fake answers as the service, not the library
        for tag in read(path):gmatch('"(%u%a-Error)"') do tags[tag] = path end
      end
    end
    return tags
  end

  it("lists every tag the code makes", function()
    local n = 0
    for _ in pairs(made()) do n = n + 1 end
    assert.is_true(n >= 5, n .. " tags found in the sources: the check would check nothing")
    for tag, path in pairs(made()) do
      assert.is_true(documented[tag] ~= nil, tag .. " (made in " .. path .. ") is not in docs/contract.md's tag table")
    end
  end)

  it("lists no tag the code never makes", function()
    local tags = made()
    assert.is_not_nil(next(documented), "no tag read from docs/contract.md's tag table: the check would check nothing")
    for tag in pairs(documented) do
      assert.is_truthy(tags[tag], tag .. " is in docs/contract.md's tag table, and no source makes it")
    end
  end)
end)

describe("the contract's interpreters", function()
  it("are the ones make test runs", function()
    local line = read("Makefile"):match("\ntest:[^\n]*\n\t[^\n]*scripts/test%.sh([^\n]*)")
    assert.is_string(line, "the Makefile's test recipe calls scripts/test.sh")
    local req = read("docs/contract.md"):match("\n(%- PUC Lua [^\n]*)")
    assert.is_string(req, "docs/contract.md names its interpreters in a line starting '- PUC Lua'")
    local n = 0
    for lua in line:gmatch("(lua[%w.]*):") do
      n = n + 1
      local version = lua:match("^lua(%d%.%d)$")
      if version then
        assert.is_truthy(req:find(version, 1, true), lua .. " runs in make test; docs/contract.md says: " .. req)
      else
        assert.are.equal("luajit", lua)
        assert.is_truthy(req:find("LuaJIT", 1, true), "luajit runs in make test; docs/contract.md says: " .. req)
      end
    end
    assert.is_true(n >= 2, "the Makefile's test recipe names " .. n .. " interpreters: the check would check nothing")
  end)
end)
