-- core.spawn (csrc/spawn.c), the primitive behind the executable credential source outside nginx:
-- a program run without a shell, its environment this process's plus what is given, stdout and
-- stderr captured up to a cap, killed (its process group, SIGKILL) and reaped at the timeout.
local core = require "vertexops.core"
local H = require "support.helper"

describe("core.spawn", function()
  it("gives the exit code and the output of a program that exits", function()
    local ok, status, out = core.spawn({ "sh", "-c", "echo hello; exit 7" }, {}, 10)
    assert.is_true(ok)
    assert.equal(7, status)
    assert.equal("hello\n", out)
  end)

  it("passes argv as it is, without a shell: metacharacters stay literal", function()
    local ok, status, out = core.spawn({ "printf", "%s|", "a;b", "$HOME", "x y", "`id`" }, {}, 10)
    assert.is_true(ok)
    assert.equal(0, status)
    assert.equal("a;b|$HOME|x y|`id`|", out)
  end)

  it("runs with this process's environment plus the one given (given wins)", function()
    local ok, _, out = core.spawn({ "sh", "-c", 'printf "%s/%s/%s" "$VX_SPAWN_A" "$HOME" "$PATH"' },
      { VX_SPAWN_A = "x=1 y", HOME = "/given" }, 10)
    assert.is_true(ok)
    assert.equal("x=1 y//given/" .. os.getenv("PATH"), out)
  end)

  it("joins stderr to stdout and gives the child /dev/null as stdin", function()
    local ok, _, out = core.spawn({ "sh", "-c", "echo out; echo err >&2; cat" }, {}, 10)
    assert.is_true(ok)
    assert.equal("out\nerr\n", out)
  end)

  it("kills a program whose output passes the cap, keeping the cap's bytes", function()
    local ok, reason, out = core.spawn({ "sh", "-c", "while :; do echo 0123456789; done" }, {}, 10, 1000)
    assert.is_false(ok)
    assert.equal("output over 1000 bytes", reason)
    assert.equal(1000, #out)
  end)

  it("kills the program and what it started at the timeout, and reaps it: no process is left", function()
    local err, secs, ok, reason, out
    err, secs = H.timed(function()
      ok, reason, out = core.spawn({ "sh", "-c", "sleep 30 & echo $$ $!; wait" }, {}, 0.5)
    end)
    assert.is_nil(err)
    print(("spawn timed out after %.3f s (timeout 0.5 s)"):format(secs))
    H.within(secs, 0.5, "a spawn with a 0.5 s timeout")
    assert.is_true(secs >= 0.5)
    assert.is_false(ok)
    assert.equal("timed out", reason)
    local shell, sleeper = out:match("^(%d+) (%d+)\n$")
    assert.truthy(shell, out)
    assert.is_nil(H.proc_state(shell)) -- reaped: not even a zombie
    local s = H.killed_state(sleeper)    -- killed: gone, or a zombie of init's awaiting its reaping
    assert.truthy(s == nil or s == "Z", "the program's child is still running: " .. tostring(s))
  end)

  it("times out a program that closed its output but keeps running", function()
    local err, secs, ok, reason
    err, secs = H.timed(function()
      ok, reason = core.spawn({ "sh", "-c", "exec >/dev/null 2>&1; sleep 30" }, {}, 0.5)
    end)
    assert.is_nil(err)
    H.within(secs, 0.5, "a spawn with a 0.5 s timeout")
    assert.is_false(ok)
    assert.equal("timed out", reason)
  end)

  it("says when the program was killed by a signal", function()
    local ok, reason = core.spawn({ "sh", "-c", "kill -9 $$" }, {}, 10)
    assert.is_false(ok)
    assert.equal("killed by signal 9", reason)
  end)

  it("says why a program cannot start", function()
    local ok, reason, out = core.spawn({ "/nonexistent/vx-spawn" }, {}, 10)
    assert.is_false(ok)
    assert.matches("^cannot start: ", reason)
    assert.equal("", out)
  end)

  it("refuses bad arguments before running anything", function()
    assert.equal("TypeError", H.tags(H.raises(core.spawn, "sh", {}, 1)))
    assert.equal("TypeError", H.tags(H.raises(core.spawn, { "sh", 1 }, {}, 1)))
    assert.equal("TypeError", H.tags(H.raises(core.spawn, { "sh" }, { A = 1 }, 1)))
    H.value_error("argv", core.spawn, {}, {}, 1)
    H.value_error("argv[1]", core.spawn, { "s\0h" }, {}, 1)
    H.value_error("env", core.spawn, { "sh" }, { ["A=B"] = "x" }, 1)
    H.value_error("timeout", core.spawn, { "sh" }, {}, 0)
    H.value_error("cap", core.spawn, { "sh" }, {}, 1, 0)
  end)
end)
