-- Paging (docs/contract.md, "Answers" and "operations()"): a page token the server repeats or
-- cycles ends the iteration with a tagged error within the call's timeout, `operations: null` is an
-- empty page, a listed operation that is not an object a ResponseTypeError naming it.
local vertexops = require "vertexops"
local cjson = require "cjson"
local H = require "support.helper"

-- a child interpreter running code that reports one outcome line (spec/support/helper.lua)
local child = H.child_outcome

describe("paging", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  -- a 200 answer to the next `times` requests of kind `call`, with the JSON body doc (a string)
  local function answer(call, body, times)
    server:fault { match = call, body = body, times = times or 1 }
  end

  local function collect(iter)
    local names = {}
    for op in iter do names[#names + 1] = op.name end
    return names
  end

  describe("paging", function()
    it("stops with ResponseTypeError naming a page token the server repeats", function()
      answer("list", cjson.encode { operations = { { name = H.NAME .. "a" } }, nextPageToken = "again" }, 50)
      local c = vertexops.client(H.opts(server))
      local err = H.raises(collect, c:operations(H.PARENT))
      assert.are.equal("ResponseTypeError", H.tags(err))
      assert.matches("'again'", err.message, 1, true)
      assert.are.equal(2, #server:log("list"))
    end)

    it("bounds the whole iteration by opts.timeout on opts.clock", function()
      local pages = {}
      for i = 1, 5 do
        pages[i] = { match = "list", body = cjson.encode {
          operations = { { name = H.NAME .. i } }, nextPageToken = "p" .. i } }
      end
      server:fault(pages)
      local t = H.fake_time()
      local c = vertexops.client(H.timed_opts(server, t))
      local seen = 0
      local err = H.raises(function()
        for _ in c:operations(H.PARENT, nil, { timeout = 250 }) do
          seen = seen + 1
          t.now = t.now + 100 -- the caller's work between operations counts too
        end
      end)
      assert.are.equal("TimeoutError", H.tags(err))
      assert.are.equal(3, seen)
      assert.are.equal(3, #server:log("list"))
    end)

    it("reads an 'operations' null as an empty page", function()
      answer("list", '{"operations": null}')
      local page = vertexops.list(H.PARENT, nil, H.opts(server))
      assert.are.same({}, page.operations)
    end)

    it("raises ResponseTypeError for a listed operation that is not an object", function()
      answer("list", '{"operations": [5]}')
      local err = H.raises(vertexops.list, H.PARENT, nil, H.opts(server))
      assert.are.equal("ResponseTypeError", H.tags(err))
      assert.matches("operations[1]", err.message, 1, true)
    end)
  end)
end)

describe("a hostile server", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  describe("a paging loop", function()
    local code = [[
local n = 0
report(pcall(function()
  for _ in vertexops.operations(%q, nil, O) do n = n + 1 end
  return "ended"
end))
]]
    it("a nextPageToken that repeats is ResponseTypeError, after two pages", function()
      server:create {}
      server:fault { match = "list", next_page_token = "again", times = 1e9 }
      local outcome, out, ok = child(server, code:format(H.PARENT), 15)
      assert.is_true(ok, "the child did not finish: " .. out:sub(1, 300))
      assert.matches("^OUTCOME err ResponseTypeError ", outcome)
      assert.is_true(#server:log("list") <= 3, #server:log("list") .. " pages asked")
    end)

    it("tokens cycling a, b, a, b, ...: iteration ends within the timeout", function()
      server:create {}
      server:fault { match = "list", next_page_token = { "a", "b" }, times = 1e9 }
      local outcome, out, ok, secs = child(server, code:gsub("nil, O", "nil, { endpoint = O.endpoint, ca_file = "
        .. "O.ca_file, token = O.token, timeout = 3 }"):format(H.PARENT), 60)
      assert.is_true(ok, "the child did not finish: " .. out:sub(1, 300))
      assert.is_true((outcome:match("^OUTCOME err ResponseTypeError ") or outcome:match("^OUTCOME err TimeoutError "))
        ~= nil, outcome)
      H.within(secs, 3 + 1, "the child") -- the timeout, and an interpreter's start
    end)
  end)
end)
