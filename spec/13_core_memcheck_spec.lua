-- make test: once
-- valgrind is clean: spec/memcheck.lua runs successes and every error path of the core under
-- valgrind (one round here; `make memcheck` runs many), on the builds with the most and the fewest
-- shims. A host run (valgrind), once.
-- Contract: docs/contract.md, "vertexops.core".
local H = require "support.helper"

describe("memory", function()
  -- the builds with the most and the fewest shims (valgrind is for the PUC interpreters)
  for _, lv in ipairs { "5.4", "5.1" } do
    it("runs successes and every error path under valgrind with no leak or invalid access, Lua " .. lv, function()
      if not H.have("valgrind") then return pending("valgrind missing") end
      local out, ok = H.run("valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite "
        .. "--show-leak-kinds=definite lua" .. lv .. " spec/memcheck.lua", { MEMCHECK_ROUNDS = "1",
          LUA_PATH = "./lua/?.lua;./lua/?/init.lua;./spec/?.lua;;", LUA_CPATH = "./build/" .. lv .. "/?.so;;" })
      assert.is_true(ok, out)
      assert.matches("memcheck: 1 rounds", out)
    end)
  end
end)
