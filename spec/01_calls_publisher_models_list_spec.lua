-- Operations of publisher models have no list method (docs/contract.md, "Jobs and publisher models'
-- operations"): Vertex reads them one by one with fetchPredictOperation and serves no
-- {model}/operations, so a model as a list parent is a ValueError before any I/O, for list,
-- operations() and cancel_all alike (a job as a parent still lists that job's operations).
local core = require "vertexops.core"
local H = require "support.helper"

local MODEL = H.PARENT .. "/publishers/google/models/veo-2.0-generate-001"

describe("a publisher model as a list parent", function()
  local fake = H.fake_kept_client()
  local server, client
  before_each(function() server, client = fake.server, fake.client end)

  it("is a ValueError from core.build saying there is no list method", function()
    local ok, err = pcall(core.build, "list", MODEL, nil, {})
    assert.is_false(ok)
    assert.are.equal("ValueError", H.tags(err))
    assert.matches("operations of publisher models cannot be listed", err.message, 1, true)
  end)

  it("is a ValueError from list, operations() and cancel_all, with no request", function()
    server:create { name = MODEL .. "/operations/1", done_after = 3600 }
    server:reset_log()
    for _, f in ipairs {
      function() return client:list(MODEL) end,
      function() for _ in client:operations(MODEL) do end end,
      function() return client:cancel_all(MODEL) end,
      function() return client:cancel_all(MODEL, nil, { dry_run = true }) end,
    } do
      local ok, err = pcall(f)
      assert.is_false(ok)
      assert.are.equal("ValueError", H.tags(err))
    end
    assert.are.same({}, server:log())
  end)

  it("leaves a job as a parent listing that job's operations", function()
    local page = client:list(H.PARENT .. "/customJobs/42")
    assert.are.same({}, page.operations)
    assert.are.equal(H.PARENT .. "/customJobs/42", server:log("list")[1].name)
  end)
end)
