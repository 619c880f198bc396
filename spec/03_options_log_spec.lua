-- VERTEXOPS_LOG and the log option: one logfmt line per attempt (and per retry, token fetch, call at
-- debug), filtered by the level VERTEXOPS_LOG names, to stderr when no log function is given,
-- never a secret. (Inside nginx, to ngx.log: spec/09_hosts_hooks_nginx_spec.lua.)
-- Contract: docs/contract.md, "Hooks, trace context and logs" (Logs) and "Environment variables".
local H = require "support.helper"
local log = require "vertexops.log"

-- A child Lua that makes calls against the fake with env; returns its stdout+stderr and exit code.
local function child(server, body, env)
  local code = ([[
    package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
    local vertexops = require "vertexops"
    local o = { endpoint = %q, ca_file = %q, token = "test-token", sleep = function() end }
    %s
  ]]):format(server.endpoint, server.ca_file, body)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  local out, _, status = H.run(H.lua_command() .. " " .. path, env)
  os.remove(path)
  return out, status
end

describe("VERTEXOPS_LOG", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  it("=info writes one line per attempt and per retry to stderr, nothing secret", function()
    local op = server:create {}
    server:fault { match = "cancel", status = 503 }
    local out, status = child(server, ("vertexops.cancel(%q, nil, o)"):format(op.name), { VERTEXOPS_LOG = "info" })
    assert.are.equal(0, status, out)
    local attempts, retries = 0, 0
    for line in out:gmatch("[^\n]+") do
      if line:find("^vertexops attempt call=cancel method=POST url=https://%S+ attempt=%d status=%d+ tag=%S* ms=%d+ "
        .. "transport=curl$") then attempts = attempts + 1 end
      if line:find("^vertexops retry call=cancel attempt=1 reason=http_503 delay=") then retries = retries + 1 end
    end
    assert.are.equal(#server:log("cancel"), attempts, out)
    assert.are.equal(1, retries, out)
    assert.is_nil(out:find("test-token", 1, true))
    assert.is_nil(out:find("vertexops call ", 1, true), "a call's line is debug")
  end)

  it("=warn writes only the failed attempts", function()
    local op = server:create {}
    server:fault { match = "cancel", status = 503 }
    local out = child(server, ("vertexops.cancel(%q, nil, o)"):format(op.name), { VERTEXOPS_LOG = "warn" })
    local lines = {}
    for line in out:gmatch("vertexops [^\n]+") do lines[#lines + 1] = line end
    assert.are.equal(1, #lines, out)
    assert.is_truthy(lines[1]:find(" status=503 tag=HttpError ", 1, true))
  end)

  it("=debug adds the call's line", function()
    local op = server:create {}
    local out = child(server, ("vertexops.get(%q, nil, o)"):format(op.name), { VERTEXOPS_LOG = "debug" })
    assert.is_truthy(out:find("\nvertexops call call=get name=" .. op.name .. " ok=true status=200 tag= attempts=1 ms=",
      1, true), out)
  end)

  it("unset or empty writes nothing", function()
    local op = server:create {}
    for _, v in ipairs { "", "unset" } do
      local out, status = child(server, ("vertexops.get(%q, nil, o)"):format(op.name),
        { VERTEXOPS_LOG = v == "unset" and "" or v })
      assert.are.equal(0, status)
      assert.is_nil(out:find("vertexops ", 1, true), out)
    end
  end)

  it("naming no level is a ValueError naming the variable, before any request", function()
    local out, status = child(server, [[
      local ok, err = pcall(vertexops.get, "projects/p/locations/us-central1/operations/1", nil, o)
      io.write(tostring(err))
      os.exit(ok and 0 or 3)]], { VERTEXOPS_LOG = "verbose" })
    assert.are.equal(3, status)
    assert.is_truthy(out:find("ValueError: environment variable VERTEXOPS_LOG must be", 1, true), out)
    assert.are.equal(0, #server:log())
  end)

  it("filters what the log option receives; the function gets them instead of stderr", function()
    local op = server:create {}
    server:fault { match = "cancel", status = 503 }
    local out = child(server, ([[
      local n = 0
      o.log = function(level, line) n = n + 1; assert(level == "warn" and line:find("^vertexops attempt")) end
      vertexops.cancel(%q, nil, o)
      io.write("received ", n, "\n")]]):format(op.name), { VERTEXOPS_LOG = "warn" })
    assert.are.equal("received 1\n", out)
  end)
end)

describe("log lines", function()
  it("are logfmt: bare values, quoted when they hold a space, quote, = or a control byte", function()
    assert.are.equal('vertexops x a=1 b= c="two words" d="q\\"x" e="k=v" f="l\\x0a"',
      log.line("x", { "a", 1, "b", "", "c", "two words", "d", 'q"x', "e", "k=v", "f", "l\n" }))
  end)
end)
