-- The one place the Lua side makes its errors (lua/vertexops/errors.lua), and what becomes of each
-- made there as its call site says: errors.new builds, errors.raise raises, errors.result returns
-- false, err, errors.rethrow raises one made earlier. Then the tree: no other idiom is left in lua/.
-- Contract: docs/contract.md, "Errors".
local core = require "vertexops.core"
local errors = require "vertexops.errors"
local H = require "support.helper"

describe("errors.new", function()
  it("builds a tagged error object with the message and the fields, without raising", function()
    local cause = errors.new("HttpError", "503")
    local err = errors.new("TimeoutError", "too late", { cause = cause, requests = 3 })
    assert.are.equal(core.error_mt, getmetatable(err))
    assert.are.same({ "TimeoutError" }, err.tags)
    assert.are.equal("too late", err.message)
    assert.are.equal(cause, err.cause)
    assert.are.equal(3, err.requests)
    assert.is_true(errors.is_error(err))
    assert.is_true(core.is(err, "TimeoutError"))
  end)

  it("takes a list of tags, most specific first", function()
    local err = errors.new({ "ConnectionFailedError", "ConnectionError" }, "refused")
    assert.are.same({ "ConnectionFailedError", "ConnectionError" }, err.tags)
    assert.is_true(core.is(err, "ConnectionError"))
  end)
end)

describe("errors.raise", function()
  it("raises the error object itself, its message without a position", function()
    local ok, err = pcall(errors.raise, "ValueError", "option 'x' is bad", { option = "x" })
    assert.is_false(ok)
    assert.are.equal(core.error_mt, getmetatable(err))
    assert.are.equal("ValueError", H.tags(err))
    assert.are.equal("option 'x' is bad", err.message)
    assert.are.equal("x", err.option)
  end)
end)

describe("errors.result", function()
  it("returns false and the error object, and raises nothing", function()
    local n, ok, err = (function(...) return select("#", ...), ... end)(errors.result("AuthError", "no token"))
    assert.are.equal(2, n)
    assert.is_false(ok)
    assert.are.equal("AuthError", H.tags(err))
    assert.are.equal("no token", err.message)
  end)
end)

describe("errors.rethrow", function()
  it("raises the same object with the fields set on it", function()
    local err = errors.new("HttpError", "403")
    local ok, raised = pcall(errors.rethrow, err, { summary = { listed = 2 } })
    assert.is_false(ok)
    assert.are.equal(err, raised)
    assert.are.same({ listed = 2 }, raised.summary)
  end)

  it("raises anything else as it is", function()
    local ok, raised = pcall(errors.rethrow, "not enough memory", { summary = {} })
    assert.is_false(ok)
    assert.are.equal("not enough memory", raised)
  end)
end)

describe("the Lua sources", function()
  local function sources()
    local out = {}
    for path in H.run("find lua -name '*.lua' -type f | sort"):gmatch("[^\n]+") do
      out[#out + 1] = { path = path, text = H.read(path) }
    end
    assert.is_true(#out > 20, "found no Lua sources under lua/")
    return out
  end

  it("make error objects only in lua/vertexops/errors.lua (no core.error elsewhere)", function()
    for _, f in ipairs(sources()) do
      if f.path ~= "lua/vertexops/errors.lua" then
        assert.is_nil(f.text:find("core%.error%s*%("), f.path .. " calls core.error: use errors.new, raise or result")
        assert.is_nil(f.text:find("error%s*%(%s*core%.error"), f.path .. " raises error(core.error(...)): use errors.raise")
      end
    end
  end)

  it("keep no helper of their own that raises or returns an error under another name", function()
    for _, f in ipairs(sources()) do
      for _, name in ipairs { "fail", "raise_with", "auth_error", "type_error" } do
        local def = f.text:find("function%s+[%w_.:]-%f[%w_]" .. name .. "%s*%(")
          or f.text:find("local%s+" .. name .. "%s*=") or f.text:find("[%w_]%." .. name .. "%s*%(")
        assert.is_nil(def, f.path .. " defines or calls a '" .. name .. "' of its own: use errors.raise or errors.result")
      end
    end
  end)
end)
