-- Operations with null and wrongly typed fields (docs/contract.md, "Answers"): proto3 JSON null
-- means absent, a numeric string code is a number, and a field of the wrong type is a
-- ResponseTypeError naming it -- always a tagged error, never Lua's own. (Paging:
-- spec/05_answers_paging_spec.lua.)
local vertexops = require "vertexops"
local H = require "support.helper"

describe("operations with null or wrongly typed fields", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  -- a 200 answer to the next `times` requests of kind `call`, with the JSON body doc (a string)
  local function answer(call, body, times)
    server:fault { match = call, body = body, times = times or 1 }
  end

  describe("operations with null or wrongly typed fields", function()
    local function body(name, fields)
      return '{"name": "' .. name .. '"' .. fields .. "}"
    end

    it("wait returns an operation done with a null error", function()
      local op = server:create {}
      answer("wait", body(op.name, ', "done": true, "error": null'))
      local final = vertexops.wait(op.name, nil, H.opts(server))
      assert.is_true(final.done)
      assert.is_nil(final.error)
    end)

    it("cancel_and_wait returns the operation, not cancelled, when its error is null", function()
      local op = server:create {}
      answer("wait", body(op.name, ', "done": true, "error": null'))
      local final, cancelled = vertexops.cancel_and_wait(op.name, nil, H.opts(server))
      assert.is_true(final.done)
      assert.is_false(cancelled)
      assert.are.equal(1, #server:log("cancel"))
    end)

    it("wait raises ResponseTypeError for an error that is a number", function()
      local op = server:create {}
      answer("wait", body(op.name, ', "done": true, "error": 5'))
      local err = H.raises(vertexops.wait, op.name, nil, H.opts(server))
      assert.are.equal("ResponseTypeError", H.tags(err))
      assert.matches("'error'", err.message, 1, true)
    end)

    it("cancel_and_wait raises ResponseTypeError for an error that is a number", function()
      local op = server:create {}
      answer("wait", body(op.name, ', "done": true, "error": 5'))
      local err = H.raises(vertexops.cancel_and_wait, op.name, nil, H.opts(server))
      assert.are.equal("ResponseTypeError", H.tags(err))
    end)

    it("reads done: null as not done and keeps waiting", function()
      local t = H.fake_time()
      local op = server:create { done = true }
      answer("wait", body(op.name, ', "done": null'))
      local final = vertexops.wait(op.name, nil, H.timed_opts(server, t))
      assert.is_true(final.done)
      assert.are.equal(2, #server:log("wait"))
    end)

    it("reads an error code sent as a string, as proto3 JSON allows", function()
      local op = server:create {}
      answer("wait", body(op.name, ', "done": true, "error": {"code": "1", "message": "cancelled"}'))
      local final, cancelled = vertexops.cancel_and_wait(op.name, nil, H.opts(server))
      assert.is_true(cancelled)
      assert.are.equal(1, final.error.code)
    end)

    it("get raises ResponseTypeError for a name that is not a string", function()
      local op = server:create {}
      answer("get", '{"name": 5, "done": false}')
      local err = H.raises(vertexops.get, op.name, nil, H.opts(server))
      assert.are.equal("ResponseTypeError", H.tags(err))
      assert.matches("'name'", err.message, 1, true)
    end)

    it("get raises ResponseTypeError for metadata that is not an object", function()
      local op = server:create {}
      answer("get", body(op.name, ', "metadata": "soon"'))
      local err = H.raises(vertexops.get, op.name, nil, H.opts(server))
      assert.are.equal("ResponseTypeError", H.tags(err))
      assert.matches("'metadata'", err.message, 1, true)
    end)
  end)
end)
