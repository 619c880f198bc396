-- core.build_many: the bulk calls build a request per name (cancel_many's names, each page of
-- cancel_all) with the options checked once. For each name it gives what core.build gives, or the
-- error core.build raises for that name; a bad option raises once, as core.build raises it.
local core = require "vertexops.core"

local LOC = "projects/p/locations/us-central1"
local OPTS = { endpoint = "https://127.0.0.1:9", user_project = "q", api_version = "v1" }

-- what core.build gives for one name: the request, or {tags, message} of what it raises
local function one(call, name, region, opts)
  local ok, r = pcall(core.build, call, name, region, opts)
  if ok then return r end
  return { tags = r.tags, message = r.message }
end

local function shown(r)
  if getmetatable(r) == nil then return r end
  return { tags = r.tags, message = r.message }
end

describe("core.build_many", function()
  it("gives for each name what core.build gives, errors included, in order", function()
    local names = {
      LOC .. "/operations/1",
      LOC .. "/customJobs/7/operations/2",
      "projects/p/locations/europe-west4/operations/3", -- another location: its own region and host
      "not a name",
      LOC .. "/customJobs/7", -- a job: core.build's job path
      LOC .. "/operations/a%2Fb",
      42,
    }
    for _, call in ipairs { "cancel", "get", "delete" } do
      for _, opts in ipairs { OPTS, {}, { api_key = "k" } } do
        local many = core.build_many(call, names, nil, opts)
        assert.are.equal(#names, #many)
        for i = 1, #names do
          assert.are.same(one(call, names[i], nil, opts), shown(many[i]), call .. " " .. tostring(names[i]))
        end
      end
    end
  end)

  it("gives the error object core.build raises, tagged", function()
    local many = core.build_many("cancel", { "not a name" }, nil, OPTS)
    assert.is_true(core.is(many[1], "ValueError"))
  end)

  it("raises for a bad option once, as core.build does", function()
    local bad = { timeout = "soon" }
    local ok1, e1 = pcall(core.build, "cancel", LOC .. "/operations/1", nil, bad)
    local ok2, e2 = pcall(core.build_many, "cancel", { LOC .. "/operations/1" }, nil, bad)
    assert.is_false(ok1)
    assert.is_false(ok2)
    assert.are.same(e1.tags, e2.tags)
    assert.are.equal(e1.message, e2.message)
  end)

  it("raises TypeError for names that are not a list, ValueError for an unknown call", function()
    local ok, err = pcall(core.build_many, "cancel", "x", nil, OPTS)
    assert.is_false(ok)
    assert.is_true(core.is(err, "TypeError"))
    assert.matches("names must be a list", err.message, 1, true)
    ok, err = pcall(core.build_many, "undo", {}, nil, OPTS)
    assert.is_false(ok)
    assert.is_true(core.is(err, "ValueError"))
  end)

  it("gives an empty list for no names", function()
    assert.are.same({}, core.build_many("cancel", {}, nil, OPTS))
  end)
end)
