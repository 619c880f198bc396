-- make test: once
-- `vertexops fake` as a script runs it: a background job (its SIGINT ignored by the shell, as for
-- any `cmd &`), stopped with kill -INT, -TERM or -HUP: the process ends, its nginx is gone and its
-- directory removed. Before, SIGINT went unheard (os.execute's system() ignores it while waiting).
local cjson = require "cjson"
local core = require "vertexops.core"
local H = require "support.helper"

describe("vertexops fake, stopped by a signal", function()
  -- A process that has not ended: a zombie has (it waits for its parent, here init, to reap it).
  local function alive(pid)
    local f = io.open("/proc/" .. pid .. "/stat")
    if not f then return false end
    local stat = f:read("*a")
    f:close()
    return stat:match("^%d+ %b() (%a)") ~= "Z"
  end

  -- Starts `bin/vertexops fake --json` as a background job; returns its pid and what it printed.
  local function start()
    local outf = os.tmpname()
    local p = io.popen(("%s bin/vertexops fake --json --quiet >%s 2>&1 & echo $!"):format(H.lua_command(), outf))
    local pid = p:read("*l")
    p:close()
    local line
    for _ = 1, 250 do -- the server starts in well under a second; 25 s catches a hang
      line = assert(io.open(outf)):read("*l")
      if line then break end
      core.sleep(0.1)
    end
    os.remove(outf)
    assert(line, "no output from vertexops fake")
    local info = cjson.decode(line)
    local nginx = H.read(info.dir .. "/nginx.pid"):match("%d+")
    return pid, info, nginx
  end

  -- Waits (at most 25 s: a stop takes well under a second) until none of pids is alive and dir is gone.
  local function stopped(pids, dir)
    local t0 = core.clock()
    while core.clock() - t0 < 25 do
      local any = false
      for _, pid in ipairs(pids) do any = any or alive(pid) end
      if not any and not io.open(dir .. "/cert.pem") then return core.clock() - t0 end
      core.sleep(0.05)
    end
    return nil
  end

  for _, sig in ipairs { "INT", "TERM", "HUP" } do
    it("stops on SIG" .. sig .. ": the process and its nginx gone, its directory removed", function()
      local pid, info, nginx = start()
      finally(function()
        os.execute("kill -KILL " .. pid .. " " .. nginx .. " 2>/dev/null; rm -rf '" .. info.dir .. "'")
      end)
      assert.is_true(alive(nginx))
      os.execute("kill -" .. sig .. " " .. pid)
      local took = stopped({ pid, nginx }, info.dir)
      assert.is_not_nil(took, "still running 25 s after SIG" .. sig)
      print(("SIG%s: stopped in %.2f s"):format(sig, took))
    end)
  end

  it("stops its nginx when killed outright (SIGKILL)", function()
    local pid, info, nginx = start()
    finally(function() os.execute("kill -KILL " .. nginx .. " 2>/dev/null; rm -rf '" .. info.dir .. "'") end)
    os.execute("kill -KILL " .. pid)
    assert.is_not_nil(stopped({ pid, nginx }, info.dir), "nginx still running 25 s after SIGKILL")
  end)
end)
