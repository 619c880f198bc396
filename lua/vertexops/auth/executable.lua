-- vertexops.auth.executable: the `executable` credential source of an external_account file
-- (google-auth's "pluggable auth", google/auth/pluggable.py). The subject token comes from a
-- program the file names (credential_source.executable.command), run only when the environment
-- has GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1 (AuthError before anything runs otherwise):
--  - the command is split at whitespace (Python's str.split(), as google-auth does) and run
--    without a shell: core.spawn (csrc/spawn.c) outside nginx, ngx.pipe inside it;
--  - its environment: this process's plus GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE, _TOKEN_TYPE,
--    _INTERACTIVE=0, _IMPERSONATED_EMAIL (with impersonation) and _OUTPUT_FILE (with output_file);
--  - stdout and stderr are read as one (google-auth's stderr=STDOUT), up to MAX_OUTPUT bytes; it
--    is killed at timeout_millis (5000..120000, default 30000) or the call's deadline, whichever
--    comes first;
--  - its output is JSON: version (<= 1), success, token_type (jwt, id_token: id_token; saml2:
--    saml_response), expiration_time (Unix seconds; a token past it is refused); success false
--    carries code and message;
--  - with output_file, that file is read first: a successful, unexpired answer in it (with an
--    expiration_time) is used without running anything; an expired or failed one is passed over.
-- Messages name the step ("executable ...") and carry the program's code and message, never a
-- token nor the program's output.
local core = require "vertexops.core"
local common = require "vertexops.auth.common"
local cjson = common.json
local raise = require("vertexops.errors").raise

local io_open, math_floor, math_min, os_getenv, os_time = io.open, math.floor, math.min, os.getenv, os.time
local ipairs, pairs, pcall, rawget, require, tostring, type = ipairs, pairs, pcall, rawget, require, tostring, type
local table_concat = table.concat
local string_format = string.format
local _G = _G

local _M = {}

_M.TIMEOUT_DEFAULT = 30000 -- ms, google-auth's EXECUTABLE_TIMEOUT_MILLIS_DEFAULT
_M.TIMEOUT_MIN, _M.TIMEOUT_MAX = 5000, 120000
_M.MAX_OUTPUT = 64 * 1024 -- bytes of output read; past it the program is killed
_M.MAX_VERSION = 1
_M.ALLOW = "GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES"
_M.getenv = os.getenv -- how ALLOW is read (a spec may stand in for the environment)

local TOKEN_FIELD = {
  ["urn:ietf:params:oauth:token-type:jwt"] = "id_token",
  ["urn:ietf:params:oauth:token-type:id_token"] = "id_token",
  ["urn:ietf:params:oauth:token-type:saml2"] = "saml_response",
}

--- The argv of a command: split at runs of whitespace (Python's str.split()).
function _M.argv(command)
  local argv = {}
  for word in command:gmatch("[^ \t\n\r\f\v]+") do argv[#argv + 1] = word end
  return argv
end

--- Checks credential_source.executable (where: the file, for messages); AuthError when wrong.
function _M.check(ex, where)
  where = where .. ": credential_source executable"
  if type(ex) ~= "table" then raise("AuthError", where .. " is not an object") end
  if type(ex.command) ~= "string" or not ex.command:find("%S") then
    raise("AuthError", where .. " has no 'command' (a non-empty string)")
  end
  local t = ex.timeout_millis
  if t ~= nil and (type(t) ~= "number" or t ~= math_floor(t) or t < _M.TIMEOUT_MIN or t > _M.TIMEOUT_MAX) then
    raise("AuthError", where .. " timeout_millis must be a whole number from 5000 to 120000")
  end
  if ex.output_file ~= nil and (type(ex.output_file) ~= "string" or ex.output_file == "") then
    raise("AuthError", where .. " output_file is not a non-empty string")
  end
end

-- The subject token of a decoded answer r; else nil, the reason and whether google-auth passes
-- the reason over when it comes from the output file (expired, unsuccessful) rather than raising.
local function parse(r)
  if type(r) ~= "table" then return nil, "is not a JSON object" end
  if type(r.version) ~= "number" then return nil, "has no version" end
  if r.version > _M.MAX_VERSION then return nil, string_format("has version %.15g; supported: 1", r.version), true end
  if type(r.success) ~= "boolean" then return nil, "has no boolean success" end
  if not r.success then
    if r.code == nil or r.message == nil then return nil, "failed without its code and message" end
    return nil, string_format("failed: code %s, message %s", tostring(r.code):sub(1, 100),
      tostring(r.message):sub(1, 500)), true
  end
  if r.expiration_time ~= nil and (type(r.expiration_time) ~= "number" or r.expiration_time < os_time()) then
    return nil, "gave a token that is expired (expiration_time)", true
  end
  if type(r.token_type) ~= "string" then return nil, "has no token_type" end
  local field = TOKEN_FIELD[r.token_type]
  if not field then return nil, "gave an unsupported token_type '" .. r.token_type:sub(1, 100) .. "'", true end
  if type(r[field]) ~= "string" or r[field] == "" then return nil, "has no " .. field end
  return r[field]
end

local function read_file(path)
  local f = io_open(path, "rb")
  if not f then return nil end
  local s = f:read(_M.MAX_OUTPUT + 1)
  f:close()
  return s
end

-- This process's environment as "NAME=value" strings (inside nginx: what nginx kept, TZ and the
-- `env` directives' variables), read through LuaJIT's FFI; none without it. ngx.pipe's environ
-- replaces the environment, and google-auth gives the program os.environ plus its variables.
local function process_environ()
  local ok, ffi = pcall(require, "ffi")
  if not ok then return {} end
  pcall(ffi.cdef, "extern char **environ;")
  local got, environ = pcall(function() return ffi.C.environ end)
  local list = {}
  if not got or environ == nil then return list end
  local i = 0
  while environ[i] ~= nil do
    list[#list + 1] = ffi.string(environ[i])
    i = i + 1
  end
  return list
end

-- The program run inside nginx: ngx.pipe (lua-resty-core), which this nginx may lack.
local function run_ngx(argv, env, timeout)
  local ok, pipe = pcall(require, "ngx.pipe")
  if not ok then
    return false, "cannot start inside nginx: ngx.pipe is not available in this nginx ("
      .. tostring(pipe):match("^[^\n]*"):sub(1, 200) .. ")", ""
  end
  local environ, has_path = {}, env.PATH ~= nil
  for _, kv in ipairs(process_environ()) do
    local name = kv:match("^([^=]*)=")
    if name and env[name] == nil then -- google-auth's variables win
      environ[#environ + 1] = kv
      has_path = has_path or name == "PATH"
    end
  end
  for k, v in pairs(env) do environ[#environ + 1] = k .. "=" .. v end
  local path = os_getenv("PATH")
  if path and not has_path then environ[#environ + 1] = "PATH=" .. path end
  local proc, err = pipe.spawn(argv, { merge_stderr = true, environ = environ })
  if not proc then return false, "cannot start: " .. tostring(err), "" end
  local ms = math_floor(timeout * 1000) + 1
  proc:set_timeouts(nil, ms, nil, ms)
  local parts, got, reason = {}, 0, nil
  while true do
    local data, rerr = proc:stdout_read_any(_M.MAX_OUTPUT + 1 - got)
    if not data then
      if rerr ~= "closed" then reason = rerr == "timeout" and "timed out" or tostring(rerr) end
      break
    end
    parts[#parts + 1] = data
    got = got + #data
    if got > _M.MAX_OUTPUT then reason = string_format("output over %d bytes", _M.MAX_OUTPUT) break end
  end
  local out = table_concat(parts):sub(1, _M.MAX_OUTPUT)
  if reason then
    proc:kill(9)
    proc:wait()
    return false, reason, out
  end
  local exited, how, status = proc:wait()
  if how == "exit" then return true, status, out end
  if how == "signal" then return false, "killed by signal " .. tostring(status), out end
  return exited and true or false, exited and 0 or tostring(how), out
end

-- Runs the program: (ok, exit code or reason, output).
local function run(argv, env, timeout)
  local ngx = rawget(_G, "ngx")
  if ngx and ngx.get_phase then return run_ngx(argv, env, timeout) end
  return core.spawn(argv, env, timeout, _M.MAX_OUTPUT)
end

--- The subject token of the external_account file d (describe: the file, for messages), the
--- program given at most deadline's time.
function _M.subject_token(d, describe, deadline)
  local ex = d.credential_source.executable
  local where = describe .. ": executable " .. ex.command:sub(1, 200)
  if _M.getenv(_M.ALLOW) ~= "1" then
    raise("AuthError", string_format("%s: executables need to be explicitly allowed (set %s to '1') to run",
      where, _M.ALLOW))
  end
  -- the output file first (google-auth: a usable answer there saves the run)
  if ex.output_file then
    local r = cjson.decode(read_file(ex.output_file) or "")
    if r ~= nil then
      local token, why, pass = parse(r)
      if token and r.expiration_time ~= nil then return token end
      if not token and not pass then
        raise("AuthError", string_format("%s: output_file %s %s", where, ex.output_file, why))
      end
    end
  end
  local env = {
    GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE = d.audience,
    GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE = d.subject_token_type,
    GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE = "0",
    GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE = ex.output_file,
  }
  local imp = d.service_account_impersonation_url
  if imp then env.GOOGLE_EXTERNAL_ACCOUNT_IMPERSONATED_EMAIL = imp:match("/serviceAccounts/([^/:]+):generateAccessToken") end
  local limit = (ex.timeout_millis or _M.TIMEOUT_DEFAULT) / 1000
  local left = deadline and deadline:left() or limit
  if left <= 0 then raise("TimeoutError", where .. ": the call's deadline passed before it could run") end
  local timeout = math_min(limit, left)
  local ok, status, out = run(_M.argv(ex.command), env, timeout)
  if not ok then
    if status == "timed out" then
      raise("AuthError", string_format("%s timed out after %d ms (%s) and was killed", where, math_floor(timeout * 1000),
        timeout < limit and "the call's deadline" or "timeout_millis"))
    end
    raise("AuthError", string_format("%s %s", where, status))
  end
  local r = cjson.decode(out)
  if status ~= 0 then
    local detail = type(r) == "table" and r.code ~= nil and string_format(": code %s, message %s",
      tostring(r.code):sub(1, 100), tostring(r.message):sub(1, 500)) or string_format(" (%d bytes of output)", #out)
    raise("AuthError", string_format("%s exited with code %d%s", where, status, detail))
  end
  local from = "output"
  if out == "" and ex.output_file then
    from = "output_file " .. ex.output_file
    r = cjson.decode(read_file(ex.output_file) or "")
  end
  local token, why = parse(r)
  if not token then
    if r == nil then why = string_format("is not JSON (%d bytes)", #out) end
    raise("AuthError", string_format("%s: its %s %s", where, from, why))
  end
  return token
end

return _M
