-- JSON nested deeply in an answer (docs/contract.md, "Answers"): in a 2xx deeper than 128 levels a
-- ResponseTypeError, in an error body still an HttpError with its code, integers kept as integers at
-- every level, and the process lives on. Calls that could crash run in a child interpreter, so a
-- crash fails the spec instead of the suite.
local core = require "vertexops.core"
local H = require "support.helper"

local NAME = H.NAME .. "1"

local function nest(n, inner)
  return string.rep("[", n) .. (inner or "") .. string.rep("]", n)
end
do
-- Runs `call` (a Lua expression using V = vertexops and O = options for the fake) in a child
-- interpreter; returns what it printed: "ok <type>" or "err <tags> <message>".
local function child(server, call)
  local code = ([[
    local V = require "vertexops"
    local O = { endpoint = %q, ca_file = %q, token = "t", retry = false }
    local ok, res = pcall(function() return %s end)
    if ok then print("ok " .. type(res)) else
      print("err " .. (type(res) == "table" and table.concat(res.tags, ",") .. " " .. tostring(res.message)
        or "untagged " .. tostring(res)))
    end
  ]]):format(server.endpoint, server.ca_file, call)
  local out, ok = H.run_lua(code)
  assert(ok, "the child interpreter died: " .. out)
  return out
end

describe("deeply nested JSON in an answer", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  describe("deeply nested JSON", function()
    it("in a 2xx body 64 levels deep is decoded", function()
      server:create { id = "1" }
      server:fault { match = "get", body = '{"name":"x","metadata":' .. nest(63, "5") .. "}" }
      assert.matches("^ok table", child(server, ("V.get(%q, nil, O)"):format(NAME)))
    end)

    it("30 to 64 levels deep in 2xx and error bodies make no invalid access (valgrind)", function()
      if H.lua_command() ~= "lua5.4" or not H.have("valgrind") then
        return pending("valgrind runs on the PUC interpreter")
      end
      for _, d in ipairs { 30, 40, 50, 64 } do
        server:fault { match = "get", body = '{"name":"x","metadata":' .. nest(d, "5") .. "}" }
        server:fault { match = "get", status = 400, content_type = "application/json",
                       body = '{"error":{"code":400,"details":' .. nest(d, "5") .. "}}" }
      end
      local dir = H.fake.tmpdir()
      H.fake.write(dir .. "/deep.lua", ([[
        local V = require "vertexops"
        local O = { endpoint = %q, ca_file = %q, token = "t", retry = false, connect_timeout = 60 }
        for _ = 1, 8 do pcall(V.get, %q, nil, O) end
        print("survived")
      ]]):format(server.endpoint, server.ca_file, NAME))
      -- connect_timeout 60 s in the child: under valgrind on a busy machine a TLS handshake can pass
      -- the default 10 s (as in spec/memcheck.lua), and a get that never reached the fake is not logged
      local out, ok = H.run("valgrind --quiet --error-exitcode=9 lua5.4 " .. dir .. "/deep.lua")
      os.execute("rm -rf " .. dir)
      assert(ok, out)
      assert.matches("survived", out)
      assert.are.equal(8, #server:log("get"))
    end)

    it("in a 2xx body 1,000 levels deep is a ResponseTypeError", function()
      server:fault { match = "get", body = '{"metadata":' .. nest(999) .. "}" }
      assert.matches("^err ResponseTypeError .*nested", child(server, ("V.get(%q, nil, O)"):format(NAME)))
    end)

    it("in a 2xx body 100,000 levels deep is a ResponseTypeError", function()
      server:fault { match = "get", body = '{"metadata":' .. nest(100000) .. "}" }
      assert.matches("^err ResponseTypeError", child(server, ("V.get(%q, nil, O)"):format(NAME)))
    end)

    it("in an error body 64 levels deep is an HttpError with its code", function()
      server:fault { match = "cancel", status = 404, content_type = "application/json",
                     body = '{"error":{"code":404,"details":' .. nest(63) .. "}}" }
      assert.matches("^err HttpError HTTP server responded with error code 404",
        child(server, ("V.cancel(%q, nil, O)"):format(NAME)))
    end)

    it("keeps integers as integers at every level it decodes (Lua 5.3+)", function()
      if not math.type then return pending("no integer subtype before Lua 5.3") end
      local ok, res = core.classify(200, "", '{"a":' .. nest(100, "7") .. "}")
      assert.is_true(ok)
      local v = res.a
      for _ = 1, 100 do v = v[1] end
      assert.are.equal("integer", math.type(v))
    end)
  end)
end)
end

do
-- a child interpreter running code that reports one outcome line (spec/support/helper.lua)
local child = H.child_outcome

describe("a hostile server", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  describe("deeply nested JSON", function()
    for _, depth in ipairs { 30, 64, 1000, 100000 } do
      it("in a 200 answer " .. depth .. " levels deep: the Operation or ResponseTypeError, process alive", function()
        local op = server:create {}
        server:fault { match = "get", json_depth = depth }
        local outcome, out, ok = child(server, ("report(pcall(vertexops.get, %q, nil, O))"):format(op.name))
        assert.is_true(ok, "the child died: " .. out:sub(1, 300))
        assert.is_true(outcome == "OUTCOME ok " .. op.name or outcome:match("^OUTCOME err ResponseTypeError ") ~= nil,
          outcome)
      end)

      it("in an error body " .. depth .. " levels deep: HttpError 503, process alive", function()
        local op = server:create {}
        server:fault { match = "cancel", status = 503, json_depth = depth }
        local outcome, out, ok = child(server, ("report(pcall(vertexops.cancel, %q, nil, O))"):format(op.name))
        assert.is_true(ok, "the child died: " .. out:sub(1, 300))
        assert.are.equal("OUTCOME err HttpError 503", outcome)
      end)

      it("arrays " .. depth .. " levels deep in a 404 body: HttpError 404, process alive", function()
        server:fault { match = "get", status = 404, json_depth = depth, json_kind = "array" }
        local outcome, out, ok = child(server, ("report(pcall(vertexops.get, %q, nil, O))"):format(H.NAME .. "1"))
        assert.is_true(ok, "the child died: " .. out:sub(1, 300))
        assert.are.equal("OUTCOME err HttpError 404", outcome)
      end)
    end
  end)
end)
end
