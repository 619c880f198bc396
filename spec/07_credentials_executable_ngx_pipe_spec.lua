-- The executable credential source's ngx.pipe branch (lua/vertexops/auth/executable.lua, run_ngx),
-- the one an OpenResty build with ngx.pipe runs inside nginx. Debian's libnginx-mod-http-lua
-- 0.10.23 has no ngx.pipe (its .so lacks ngx_http_lua_ffi_pipe_spawn: the pipe API needs
-- OpenResty's socket_cloexec patch of nginx's core), so no real ngx.pipe runs anywhere in make test:
-- here a stand-in with ngx.pipe's API (spawn(argv, opts), set_timeouts, stdout_read_any, kill,
-- wait) records what the branch asks of it, and answers as ngx.pipe documents. What this proves:
-- the argv, the environment and the limits handed to ngx.pipe, and how its answers are read; not
-- that a real ngx.pipe behaves as the stand-in does.
local cjson = require "cjson"
local executable = require "vertexops.auth.executable"

local AUD = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q"
local JWT = "urn:ietf:params:oauth:token-type:jwt"

describe("the executable source through ngx.pipe (a stand-in of its API)", function()
  local saved_ngx, saved_getenv, spawned, script
  local ANSWER = cjson.encode { version = 1, success = true, token_type = JWT, id_token = "subject-from-pipe",
    expiration_time = os.time() + 3600 }

  -- script: {chunks = {...}, read_err = "closed" | "timeout", wait = {ok, how, status}}
  local function stand_in()
    return { spawn = function(argv, opts)
      spawned = { argv = argv, opts = opts, kills = {}, waits = 0 }
      local i = 0
      return {
        set_timeouts = function(_, w, r, e, wait) spawned.timeouts = { w, r, e, wait } end,
        stdout_read_any = function(_, max)
          spawned.max = spawned.max or max
          i = i + 1
          if script.chunks[i] then return script.chunks[i] end
          return nil, script.read_err or "closed"
        end,
        kill = function(_, sig) spawned.kills[#spawned.kills + 1] = sig return true end,
        wait = function()
          spawned.waits = spawned.waits + 1
          local w = script.wait or { true, "exit", 0 }
          return w[1], w[2], w[3]
        end,
      }
    end }
  end

  local function file(extra)
    local d = { type = "external_account", audience = AUD, subject_token_type = JWT,
      credential_source = { executable = { command = "/usr/bin/get-token --flag  value", timeout_millis = 7000 } } }
    for k, v in pairs(extra or {}) do d[k] = v end
    return d
  end

  before_each(function()
    saved_ngx, saved_getenv = rawget(_G, "ngx"), executable.getenv
    rawset(_G, "ngx", { get_phase = function() return "content" end })
    package.loaded["ngx.pipe"] = stand_in()
    executable.getenv = function(k) if k == executable.ALLOW then return "1" end return os.getenv(k) end
    script, spawned = { chunks = { ANSWER } }, nil
  end)
  after_each(function()
    rawset(_G, "ngx", saved_ngx)
    package.loaded["ngx.pipe"] = nil
    executable.getenv = saved_getenv
  end)

  it("gives ngx.pipe the command split at whitespace, stderr merged, and reads the token", function()
    assert.are.equal("subject-from-pipe", executable.subject_token(file(), "the file", nil))
    assert.are.same({ "/usr/bin/get-token", "--flag", "value" }, spawned.argv)
    assert.is_true(spawned.opts.merge_stderr)
    assert.are.equal(executable.MAX_OUTPUT + 1, spawned.max)
    assert.are.same({ 7001, 7001 }, { spawned.timeouts[2], spawned.timeouts[4] })
  end)

  it("gives the program this process's environment plus google-auth's variables, as outside nginx", function()
    executable.subject_token(file { service_account_impersonation_url =
      "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateAccessToken" },
      "the file", nil)
    local env = {}
    for _, kv in ipairs(spawned.opts.environ) do
      local k, v = kv:match("^([^=]*)=(.*)$")
      assert.is_nil(env[k], "twice in environ: " .. k)
      env[k] = v
    end
    assert.are.equal(AUD, env.GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE)
    assert.are.equal(JWT, env.GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE)
    assert.are.equal("0", env.GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE)
    assert.are.equal("sa@p.iam.gserviceaccount.com", env.GOOGLE_EXTERNAL_ACCOUNT_IMPERSONATED_EMAIL)
    assert.are.equal(os.getenv("PATH"), env.PATH)
    -- the rest of the process's environment (read through LuaJIT's FFI, as nginx's Lua is LuaJIT)
    if rawget(_G, "jit") then assert.are.equal(os.getenv("HOME"), env.HOME) end
  end)

  it("kills (SIGKILL) and reaps the program when ngx.pipe's read times out", function()
    script = { chunks = {}, read_err = "timeout" }
    local ok, err = pcall(executable.subject_token, file(), "the file", nil)
    assert.is_false(ok)
    assert.are.equal("AuthError", table.concat(err.tags, ","))
    assert.matches("timed out after 7000 ms %(timeout_millis%) and was killed", err.message)
    assert.are.same({ 9 }, spawned.kills)
    assert.are.equal(1, spawned.waits)
  end)

  it("kills the program whose output passes 64 KiB", function()
    script = { chunks = { string.rep("x", executable.MAX_OUTPUT + 1) } }
    local ok, err = pcall(executable.subject_token, file(), "the file", nil)
    assert.is_false(ok)
    assert.matches("output over 65536 bytes", err.message)
    assert.are.same({ 9 }, spawned.kills)
  end)

  it("reads ngx.pipe's exit status: a non-zero exit is an AuthError with the program's code and message", function()
    script = { chunks = { cjson.encode { version = 1, success = false, code = "E1", message = "no session" } },
      wait = { false, "exit", 3 } }
    local ok, err = pcall(executable.subject_token, file(), "the file", nil)
    assert.is_false(ok)
    assert.matches("exited with code 3: code E1, message no session", err.message)
  end)

  it("reads ngx.pipe's signal: a program killed by a signal is an AuthError saying so", function()
    script = { chunks = {}, wait = { false, "signal", 15 } }
    local ok, err = pcall(executable.subject_token, file(), "the file", nil)
    assert.is_false(ok)
    assert.matches("killed by signal 15", err.message)
  end)
end)
