-- cancel_all's "no_cancel_method" from Google's table itself (csrc/methods.h through core.shape, no
-- stand-in): under a nested parent of every shape Google defines without :cancel, in each version,
-- every listed operation is skipped with that reason and no cancel is sent; a shape that has
-- :cancel in one version only is cancelled there; an operation of a publisher model (no cancel
-- method: fetchPredictOperation only) and a job that ended before its cancel are skipped too.
-- listed == cancelled + #skipped + #failed in each.
local core = require "vertexops.core"
local H = require "support.helper"

-- {version = {shape, ...}}: the shapes of csrc/methods.h with list but without cancel.
local function no_cancel_shapes()
  local text = assert(io.open("csrc/methods.h")):read("*a")
  local out = { v1 = {}, v1beta1 = {} }
  for shape, v1, v1beta1 in text:gmatch('{"([^"]+)",%s*([^,]*),%s*([^}]*)}') do
    for version, bits in pairs { v1 = v1, v1beta1 = v1beta1 } do
      if bits ~= "0" and bits:find("VX_M_LIST", 1, true) and not bits:find("VX_M_CANCEL", 1, true) then
        out[version][#out[version] + 1] = shape
      end
    end
  end
  return out
end
local SHAPES = no_cancel_shapes()

-- The parent of operations a shape's instance has (ids for every '*' after the location).
local function parent_of(shape)
  local n = 0
  local name = shape:gsub("^projects/%*/locations/%*", H.PARENT):gsub("%*", function()
    n = n + 1
    return "id" .. n
  end)
  return (name:gsub("/operations/[^/]+$", ""))
end

local function accounted(s)
  assert.are.equal(s.listed, s.cancelled + #s.skipped + #s.failed)
end

describe("cancel_all under a parent whose shape has no :cancel (Google's table)", function()
  local fake = H.fake_kept_client()
  local server, client
  before_each(function() server, client = fake.server, fake.client end)

  it("reads the table through the real core.shape", function()
    assert.are.equal("function", type(core.shape))
    assert.is_true(#SHAPES.v1 >= 4 and #SHAPES.v1beta1 >= 6) -- featureGroups, featureOnlineStores, ...
  end)

  for _, version in ipairs { "v1beta1", "v1" } do
    it(version .. ": skips every listed operation as no_cancel_method and sends no cancel", function()
      for _, shape in ipairs(SHAPES[version]) do
        local parent = parent_of(shape)
        server:reset()
        local names = {}
        for i = 1, 2 do
          names[i] = parent .. "/operations/" .. i
          server:create { name = names[i], done_after = 3600 }
        end
        local s = client:cancel_all(parent, nil, { api_version = version })
        assert.are.equal(2, s.listed, shape)
        assert.are.equal(0, s.cancelled, shape)
        assert.are.same({ { name = names[1], reason = "no_cancel_method" },
                          { name = names[2], reason = "no_cancel_method" } }, s.skipped, shape)
        assert.are.same({}, server:log("cancel"), shape)
        assert.are.equal(1, #server:log("list"), shape)
        accounted(s)
      end
    end)
  end

  it("cancels under a shape that has :cancel in the other version only (v1 has no featureMonitors)", function()
    local parent = H.PARENT .. "/featureGroups/g/featureMonitors/m"
    server:create { name = parent .. "/operations/1", done_after = 3600 }
    local beta = client:cancel_all(parent, nil, { api_version = "v1beta1" })
    assert.are.same({ { name = parent .. "/operations/1", reason = "no_cancel_method" } }, beta.skipped)
    local v1 = client:cancel_all(parent, nil, { api_version = "v1" })
    assert.are.equal(1, v1.cancelled)
    assert.are.same({}, v1.skipped)
    assert.are.equal(1, #server:log("cancel"))
    accounted(beta)
    accounted(v1)
  end)

  it("skips a listed operation of a publisher model as no_cancel_method (none is a failure)", function()
    local pm = H.PARENT .. "/publishers/google/models/veo-2.0-generate-001/operations/7"
    local op = server:create { done_after = 3600 }
    server:fault { match = "list", body = '{"operations":[{"name":"' .. pm .. '"},{"name":"' .. op.name .. '"}]}' }
    local s = client:cancel_all(H.PARENT)
    assert.are.same({ { name = pm, reason = "no_cancel_method" } }, s.skipped)
    assert.are.same({}, s.failed)
    assert.are.equal(1, s.cancelled)
    assert.are.equal(op.name, server:log("cancel")[1].name)
    accounted(s)
  end)

  it("skips a listed job that ended before its cancel as failed_precondition", function()
    local ended = server:create_job { done = true }
    local running = server:create_job {}
    local s = client:cancel_all(H.PARENT, nil, { kind = "customJobs",
      filter = 'state="JOB_STATE_SUCCEEDED" OR state="JOB_STATE_RUNNING"' })
    assert.are.equal(2, s.listed)
    assert.are.equal(1, s.cancelled)
    assert.are.equal(1, #s.skipped)
    assert.are.equal(ended.name, s.skipped[1].name)
    assert.are.equal("failed_precondition", s.skipped[1].reason)
    assert.are.equal(running.name, server:log("cancel")[#server:log("cancel")].name)
    accounted(s)
  end)
end)
