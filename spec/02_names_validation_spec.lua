-- Names, regions and parents (docs/contract.md, "Names and regions"): a wrong type raises TypeError,
-- a bad value ValueError naming the argument, before any I/O (the fake server's log stays empty),
-- and the name grammar is ASCII whatever the locale.
local vertexops = require "vertexops"
local H = require "support.helper"

describe("validation", function()
  local fake = H.fake_server()
  local server, o
  before_each(function()
    server = fake.server
    o = H.opts(server)
  end)
  after_each(function()
    assert.are.equal(0, #server:log(), "a request reached the server")
  end)

  -- a ValueError whose message names what it is about (spec/support/helper.lua)
  local value_error = H.value_error

  local bad_names = {
    ["a CR"] = H.NAME .. "4\r2",
    ["an LF"] = H.NAME .. "4\n2",
    ["a '?'"] = H.NAME .. "42?alt=media",
    ["a '#'"] = H.NAME .. "42#x",
    ["a '%'"] = H.NAME .. "%2e%2e",
    ["a '..' segment"] = "projects/test-project/locations/us-central1/operations/../../x/operations/1",
    ["an empty segment"] = "projects//locations/us-central1/operations/1",
    ["a trailing slash"] = H.NAME .. "42/",
    ["a leading slash"] = "/" .. H.NAME .. "42",
    ["a ':' (method suffix)"] = H.NAME .. "42:delete",
    ["a space"] = H.NAME .. "4 2",
    ["the wrong shape"] = "projects/p/operations/1",
    ["no operation id"] = "projects/p/locations/us-central1/operations",
    ["a host in it"] = "https://evil.example/projects/p/locations/l/operations/1",
  }
  for what, name in pairs(bad_names) do
    it("rejects a name with " .. what, function()
      value_error("name ", vertexops.cancel, name, "us-central1", o)
    end)
  end

  it("rejects a name that is not a string with TypeError", function()
    local err = H.raises(vertexops.cancel, 42, "us-central1", o)
    assert.are.equal("TypeError", H.tags(err))
    assert.matches("name must be a string", err.message)
  end)

  it("rejects a region that is not a string with TypeError", function()
    assert.are.equal("TypeError", H.tags(H.raises(vertexops.get, H.NAME .. "1", 5, o)))
  end)

  it("rejects a region of the wrong shape", function()
    value_error("region ", vertexops.get, "projects/p/locations/US_CENTRAL/operations/1", "US_CENTRAL", o)
  end)

  it("rejects a region that disagrees with the name", function()
    local err = value_error("region", vertexops.cancel, H.NAME .. "1", "europe-west4", o)
    assert.matches("does not match", err.message)
  end)

  it("rejects a parent of the wrong shape for list", function()
    value_error("parent ", vertexops.list, H.NAME .. "1", nil, o)
  end)
end)

describe("validation of names, regions and parents", function()
  describe("validation is ASCII whatever the locale", function()
    it("refuses byte 0xE9 in a name under an ISO-8859-1 locale", function()
      local dir = H.fake.tmpdir()
      local _, made = H.run("localedef -i fr_FR -f ISO-8859-1 " .. dir .. "/fr_FR.ISO-8859-1 >/dev/null 2>&1")
      if not made then
        os.execute("rm -rf " .. dir)
        return pending("localedef could not make an ISO-8859-1 locale (package locales)")
      end
      local out = H.run_lua([[
        assert(os.setlocale("fr_FR.ISO-8859-1", "ctype"), "no locale")
        if not rawget(_G, "jit") then assert(("\233"):match("%a"), "the locale does not class 0xE9 as a letter") end
        local core = require "vertexops.core"
        local ok, err = pcall(core.build, "get", "projects/p/locations/us-central1/operations/caf\233", nil,
          { endpoint = "https://127.0.0.1:1" })
        print(ok and "accepted" or err.tags[1] .. ": " .. err.message)
      ]], { LOCPATH = dir })
      os.execute("rm -rf " .. dir)
      assert.matches("ValueError: name contains byte 0xE9", out, 1, true)
    end)
  end)
end)
