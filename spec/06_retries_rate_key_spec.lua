-- The adaptive pacing of a bulk call (lua/vertexops/rate.lua) counts a request under the project and
-- location its quota is kept by: the first /projects/P/locations/L of its URL. The search is a plain
-- find of each "/projects/" with the pattern anchored there (the unanchored pattern's search from
-- every position cost about 5,000 instructions per cancel of a cancel_many): the same key as
-- that search, witnessed here against it on crafted and random URLs.
local rate = require "vertexops.rate"

local PATTERN = "/projects/([^/?]+)/locations/([^/?:]+)"

-- The key admit_now counts url's request under (false: not paced).
local function key(url)
  local a = rate.adaptive()
  local may, sent = rate.admit_now(a, { call = "cancel", url = url }, 1000)
  assert.is_true(may)
  if sent == nil then
    assert.is_nil(next(a.keys))
    return false
  end
  local k = next(a.keys)
  assert.is_nil(next(a.keys, k))
  return k
end

local function reference(url)
  local p, l = url:match(PATTERN)
  return p and p .. "/" .. l or false
end

describe("the quota key of a bulk call's request", function()
  it("is the project and location of the URL's path", function()
    assert.equal("p/us-central1",
      key("https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/operations/1:cancel"))
  end)

  it("ends the location at a ':', '/' or '?'", function()
    assert.equal("p/l", key("https://h/v1/projects/p/locations/l:wait"))
    assert.equal("p/l", key("https://h/v1/projects/p/locations/l?pageSize=5"))
  end)

  it("is the first /projects/P/locations/L when an earlier /projects/ has no location", function()
    assert.equal("p/l", key("https://h/projects/x/v1/projects/p/locations/l/operations/1"))
    assert.equal("p/l", key("https://h/v1/projects//locations/q/projects/p/locations/l/operations/1"))
  end)

  it("is none for a URL without a project and location (not paced)", function()
    assert.is_false(key("https://h/v1/operations/1:cancel"))
    assert.is_false(key("https://h/v1/projects/p/operations/1"))
  end)

  it("is the unanchored pattern's on random URLs", function()
    local parts = { "/projects/", "/locations/", "p", "l", "/", "?", ":", "x", "projects", "/projects" }
    math.randomseed(20261206)
    for _ = 1, 3000 do
      local t = { "https://h" }
      for j = 2, math.random(1, 12) do t[j] = parts[math.random(#parts)] end
      local url = table.concat(t)
      assert.equal(reference(url), key(url), url)
    end
  end)
end)
