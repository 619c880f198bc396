-- vertexops.nginx.handle outside nginx: its argument checks, before f runs. (In a real nginx:
-- spec/14_docs_journey_openresty_spec.lua, a JSON 500 and a readable error-log line.)
local handler = require "vertexops.nginx"
local H = require "support.helper"

describe("vertexops.nginx.handle", function()
  it("raises TypeError for an f that is not a function", function()
    assert.are.same({ "TypeError" }, H.raises(handler.handle, "f").tags)
  end)

  it("raises ValueError outside nginx, without calling f", function()
    local called = false
    local err = H.raises(handler.handle, function() called = true end)
    assert.are.same({ "ValueError" }, err.tags)
    assert.matches("not inside nginx", err.message, 1, true)
    assert.is_false(called)
  end)
end)
