-- vertexops.safe returns nil, err where vertexops raises; programmer errors still raise.
local safe = require "vertexops.safe"
local H = require "support.helper"

describe("vertexops.safe", function()
  local fake = H.fake_server()
  local server, o
  before_each(function()
    server = fake.server
    o = H.opts(server, { retry = false })
  end)

  it("returns the result on success", function()
    local op = server:create {}
    assert.is_true(safe.cancel(op.name, nil, o))
    assert.are.equal(op.name, safe.get(op.name, nil, o).name)
  end)

  it("returns nil, err for an HttpError", function()
    local res, err = safe.get(H.NAME .. "missing", nil, o)
    assert.is_nil(res)
    assert.are.equal(404, err.code)
    assert.is_true(safe.is(err, "HttpError"))
  end)

  it("still raises TypeError and ValueError", function()
    assert.are.equal("TypeError", H.tags(H.raises(safe.get, 42, nil, o)))
    local err = H.raises(safe.get, H.NAME .. "?", nil, o)
    assert.are.equal("ValueError", H.tags(err))
    assert.matches("^name ", err.message)
  end)

  it("gives clients whose methods return nil, err", function()
    local c = safe.client(o)
    local res, err = c:get(H.NAME .. "missing")
    assert.is_nil(res)
    assert.are.equal(404, err.code)
    local op = server:create {}
    assert.is_true(c:cancel(op.name))
  end)

  it("ends operations() with false, err on failure", function()
    server:fault { match = "list", status = 500 }
    local seen = {}
    for op, err in safe.operations(H.PARENT, nil, o) do
      seen[#seen + 1] = op == false and err.code or op
    end
    assert.are.same({ 500 }, seen)
  end)
end)
