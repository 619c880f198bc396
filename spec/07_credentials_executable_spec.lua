-- The `executable` credential source of external_account files (docs/contract.md, "Credentials";
-- lua/vertexops/auth/executable.lua), as google-auth does it (google/auth/pluggable.py): real
-- programs written here (shell scripts in a temporary directory), run without a shell only when
-- GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1, with google-auth's environment, killed at
-- timeout_millis or the call's deadline; their JSON answer (and the output_file cache) gives the
-- subject token that the fake's STS exchanges (its request log is the witness).
local vertexops = require "vertexops"
local executable = require "vertexops.auth.executable"
local cjson = require "cjson"
local H = require "support.helper"

local write = H.fake.write
local AUD = "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/providers/prov"
local JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
local SA = "robot@test-project.iam.gserviceaccount.com"
local SUBJECT = "test-subject-token" -- the fake's STS accepts this one

-- An answer of the program (a JSON string), version 1, with the fields of extra.
local function answer(extra)
  local r = { version = 1, success = true, token_type = JWT_TYPE, id_token = SUBJECT,
              expiration_time = os.time() + 3600 }
  for k, v in pairs(extra or {}) do r[k] = v end
  return cjson.encode(r)
end

local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

describe("external_account credentials: the executable source", function()
  local server, dir
  local real_getenv = executable.getenv
  local allowed = "1"

  -- a script name in dir: records its argv, the GOOGLE_EXTERNAL_ACCOUNT_* environment and each
  -- run, then runs body
  local function script(name, body)
    local path = dir .. "/" .. name
    write(path, "#!/bin/sh\n"
      .. "printf '%s\\n' \"$@\" > " .. dir .. "/argv.txt\n"
      .. "env | grep '^GOOGLE_EXTERNAL_ACCOUNT_' | sort > " .. dir .. "/env.txt\n"
      .. "echo run >> " .. dir .. "/runs.txt\n" .. body .. "\n")
    os.execute("chmod +x '" .. path .. "'")
    return path
  end

  -- a credentials file whose executable is ex (its fields; command required), extra top-level fields
  local function creds(ex, extra)
    local d = { type = "external_account", audience = AUD, subject_token_type = JWT_TYPE,
                token_url = server.endpoint .. "/v1/token", credential_source = { executable = ex } }
    for k, v in pairs(extra or {}) do d[k] = v end
    local path = dir .. "/creds.json"
    write(path, cjson.encode(d))
    return path
  end

  local function client(path, extra)
    local o = { endpoint = server.endpoint, ca_file = server.ca_file, credentials = path }
    for k, v in pairs(extra or {}) do o[k] = v end
    return vertexops.client(o)
  end

  local function runs() return #H.read(dir .. "/runs.txt", true):gsub("[^\n]", "") end

  setup(function()
    server = H.fake.start()
    dir = H.fake.tmpdir()
  end)
  teardown(function()
    executable.getenv = real_getenv
    server:stop()
    os.execute("rm -rf '" .. dir .. "'")
  end)
  before_each(function()
    server:reset()
    os.remove(dir .. "/runs.txt")
    os.remove(dir .. "/cache.json")
    allowed = "1"
    executable.getenv = function(k)
      if k == executable.ALLOW then return allowed end
      return real_getenv(k)
    end
  end)

  it("runs nothing and raises AuthError unless GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES is 1", function()
    local c = client(creds { command = script("ok.sh", "printf '%s' '" .. answer() .. "'") })
    for _, v in ipairs { false, "0", "true" } do
      allowed = v or nil
      local err = H.raises(c.get, c, H.NAME .. "1")
      assert.equal("AuthError", H.tags(err))
      assert.matches("executable .*ok%.sh: executables need to be explicitly allowed "
        .. "%(set GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES", err.message)
    end
    assert.equal(0, runs())
    assert.equal(0, #server:log())
  end)

  it("reads GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES from the process environment", function()
    local path = creds { command = script("ok.sh", "printf '%s' '" .. answer() .. "'") }
    local name = server:create {}.name
    local code = ("local vertexops = require \"vertexops\"\n"
      .. "local c = vertexops.client { endpoint = %q, ca_file = %q, credentials = %q }\n"
      .. "local ok, err = pcall(c.get, c, %q)\nprint(ok and 'OK' or ('ERR ' .. tostring(err)))\n")
      :format(server.endpoint, server.ca_file, path, name)
    local out = H.run_lua(code, { GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES = "" })
    assert.matches("ERR AuthError: .*executables need to be explicitly allowed", out)
    assert.equal(0, runs())
    out = H.run_lua(code, { GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES = "1" })
    assert.matches("^OK\n", out)
    assert.equal(1, runs())
    assert.equal(1, #server:log("sts"))
  end)

  it("exchanges the program's id_token at the STS and calls Vertex with the STS token", function()
    local c = client(creds { command = script("ok.sh", "printf '%s' '" .. answer() .. "'") })
    c:get(server:create {}.name)
    local sts = server:log("sts")
    assert.equal(1, #sts)
    assert.matches("subject_token=" .. SUBJECT, sts[1].body, 1, true)
    assert.matches("^Bearer ya29%.sts%-", server:log("get")[1].headers.authorization)
    assert.equal(1, runs())
  end)

  it("splits the command at whitespace and runs it without a shell: metacharacters stay literal", function()
    local path = script("ok.sh", "printf '%s' '" .. answer() .. "'")
    local c = client(creds { command = path .. "  a;b\t$HOME `id` >x |y" })
    c:get(server:create {}.name)
    assert.equal("a;b\n$HOME\n`id`\n>x\n|y\n", H.read(dir .. "/argv.txt"))
    assert.is_false(exists(dir .. "/x"))
  end)

  it("gives the program google-auth's environment (impersonated email, output file, not interactive)", function()
    local path = script("ok.sh", "printf '%s' '" .. answer() .. "'")
    local c = client(creds({ command = path, output_file = dir .. "/cache.json" }, {
      service_account_impersonation_url = server.endpoint .. "/v1/projects/-/serviceAccounts/" .. SA
        .. ":generateAccessToken" }))
    c:get(server:create {}.name)
    -- (ALLOW_EXECUTABLES is there only when the real environment has it: filtered out)
    assert.equal("GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE=" .. AUD .. "\n"
      .. "GOOGLE_EXTERNAL_ACCOUNT_IMPERSONATED_EMAIL=" .. SA .. "\n"
      .. "GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE=0\n"
      .. "GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE=" .. dir .. "/cache.json\n"
      .. "GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE=" .. JWT_TYPE .. "\n",
      (H.read(dir .. "/env.txt"):gsub("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=[^\n]*\n", "")))
  end)

  it("uses an unexpired answer in output_file without running the program", function()
    write(dir .. "/cache.json", answer())
    local c = client(creds { command = script("ok.sh", "exit 3"), output_file = dir .. "/cache.json" })
    c:get(server:create {}.name)
    assert.equal(0, runs())
    assert.equal(1, #server:log("sts"))
  end)

  it("runs the program when output_file's answer is expired, and reads output_file when it prints nothing", function()
    write(dir .. "/cache.json", answer { expiration_time = os.time() - 10 })
    local c = client(creds { command = script("ok.sh", "printf '%s' '" .. answer() .. "' > " .. dir .. "/cache.json"),
                             output_file = dir .. "/cache.json" })
    c:get(server:create {}.name)
    assert.equal(1, runs())
    assert.equal(1, #server:log("sts"))
  end)

  it("names the step with the program's code and message when it answers success false", function()
    local c = client(creds { command = script("fail.sh",
      "printf '%s' '" .. cjson.encode { version = 1, success = false, code = "401", message = "denied by policy" }
      .. "'; exit 1") })
    local err = H.raises(c.get, c, H.NAME .. "1")
    assert.equal("AuthError", H.tags(err))
    assert.matches("executable .*fail%.sh exited with code 1: code 401, message denied by policy", err.message)
    assert.equal(0, #server:log())
  end)

  it("refuses an expired token, an unsupported version and output that is not JSON, never showing the output", function()
    for _, case in ipairs {
      { answer { expiration_time = os.time() - 10 }, "its output gave a token that is expired" },
      { answer { version = 2 }, "its output has version 2; supported: 1" },
      { answer { success = false, code = "X1", message = "nope" }, "its output failed: code X1, message nope" },
      { "not json " .. SUBJECT, "its output is not JSON %(27 bytes%)" },
    } do
      local c = client(creds { command = script("bad.sh", "printf '%s' '" .. case[1] .. "'") })
      local err = H.raises(c.get, c, H.NAME .. "1")
      assert.equal("AuthError", H.tags(err))
      assert.matches("executable .*bad%.sh: " .. case[2], err.message)
      assert.is_nil(err.message:find(SUBJECT, 1, true))
    end
    assert.equal(0, #server:log())
  end)

  it("kills the program at the call's deadline, and leaves no process behind", function()
    local c = client(creds { command = script("slow.sh", "sleep 30 & echo $$ $! > " .. dir .. "/pids.txt; wait") },
      { timeout = 0.5, retry = false })
    local err, secs = H.timed(c.get, c, H.NAME .. "1")
    print(("the program was killed after %.3f s (the call's timeout 0.5 s)"):format(secs))
    H.within(secs, 0.5, "a call with timeout 0.5 s")
    assert.equal("AuthError", H.tags(err))
    assert.matches("executable .*slow%.sh timed out after %d+ ms %(the call's deadline%) and was killed", err.message)
    local shell, sleeper = H.read(dir .. "/pids.txt"):match("^(%d+) (%d+)")
    assert.is_nil(H.proc_state(shell))
    local s = H.killed_state(sleeper)
    assert.truthy(s == nil or s == "Z", "the program's child is still running")
    assert.equal(0, #server:log())
  end)

  it("kills the program at timeout_millis", function()
    local c = client(creds { command = script("slow.sh", "sleep 30 & wait"), timeout_millis = 5000 },
      { retry = false })
    local err, secs = H.timed(c.get, c, H.NAME .. "1")
    print(("the program was killed after %.3f s (timeout_millis 5000)"):format(secs))
    H.within(secs, 5, "a program with timeout_millis 5000")
    assert.is_true(secs >= 5)
    assert.matches("executable .*slow%.sh timed out after 5000 ms %(timeout_millis%) and was killed", err.message)
  end)

  it("refuses a bad executable object when the file is read", function()
    for _, case in ipairs {
      { {}, "has no 'command'" },
      { { command = "/bin/true", timeout_millis = 1000 }, "timeout_millis must be a whole number from 5000 to 120000" },
      { { command = "/bin/true", output_file = 3 }, "output_file is not a non%-empty string" },
    } do
      local c = client(creds(case[1]))
      local err = H.raises(c.get, c, H.NAME .. "1")
      assert.equal("AuthError", H.tags(err))
      assert.matches("credential_source executable .*" .. case[2], err.message)
    end
    assert.equal(0, runs())
  end)
end)
