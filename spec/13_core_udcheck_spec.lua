-- Which userdata a core method takes (csrc/error.c vx_checkudarg): the methods of a class carry
-- its metatable and its name's address as upvalues (csrc/module.c vx_newclass) and check a
-- userdata of their own class with one comparison (issue 19 §4: several method calls per exchange
-- inside nginx, each looked the metatable up by name); any other check goes by name. What a method
-- takes is unchanged: any userdata of its class, and TypeError for anything else -- another class's
-- userdata, also where a method of that other class asks for one of this class, or a table with
-- the class's metatable.
-- Contract: docs/contract.md, "vertexops.core".
local core = require "vertexops.core"

local function type_error(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok)
  assert.are.equal("table", type(err), tostring(err))
  assert.are.equal("TypeError", err.tags[1], tostring(err.message))
  return err.message
end

describe("a core method", function()
  it("takes any userdata of its class", function()
    local a, b = core.h1(), core.h1()
    assert.are.equal(0, a.received(b))
    assert.is_false(a.is_closed(b))
    b:close()
    assert.is_true(a.is_closed(b))
    a:close()
  end)

  it("refuses another class's userdata as its object, naming the class it wants", function()
    local p, h = core.h1(), core.handle()
    assert.matches("expected a vertexops h1 parser, got userdata", type_error(p.received, h))
    assert.matches("expected a vertexops handle, got userdata", type_error(h.stats, p))
    p:close()
    h:close()
  end)

  it("refuses a userdata of its own class where it asks for another class's", function()
    local h = core.handle()
    assert.matches("expected a vertexops share", type_error(h.share, h, h))
    h:close()
  end)

  it("refuses a table with its class's metatable, and a value of another type", function()
    local p = core.h1()
    local t = setmetatable({}, getmetatable(p))
    assert.matches("expected a vertexops h1 parser, got table", type_error(p.received, t))
    setmetatable(t, nil) -- (its __gc, a parser's close, would raise the same at its collection on 5.2+)
    assert.matches("expected a vertexops h1 parser, got number", type_error(p.received, 1))
    p:close()
  end)
end)
