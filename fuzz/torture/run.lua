-- make torture / make torture-smoke: starts the fake Vertex server (vertexops.testing), makes an
-- operation and a service-account key file, then runs build/torture/torture (fuzz/torture.c) on
-- each scenario of fuzz/torture/ under ASan + LeakSanitizer: every N (exhaustive), or the N of
-- fuzz/torture/sample (--sample). Fails when a scenario has a finding, a sanitizer report or a leak
-- that scripts/lsan.supp does not name.
-- usage: lua5.4 fuzz/torture/run.lua [--sample] [SCENARIO ...]
local testing = require "vertexops.testing"
local cjson = require "cjson"

local SCENARIOS = { "open", "error", "build", "classify", "h1", "key", "exchange", "tls", "multi", "multi_tls" }
local sample_mode, only = false, {}
for _, a in ipairs(arg) do
  if a == "--sample" then sample_mode = true else only[#only + 1] = a end
end
if #only > 0 then SCENARIOS = only end

-- fuzz/torture/sample: "scenario N N N ..." per line; # starts a comment
local samples = {}
if sample_mode then
  for line in io.lines("fuzz/torture/sample") do
    local name, rest = line:gsub("#.*", ""):match("^%s*(%S+)%s*(.*)$")
    if name then samples[name] = rest end
  end
end

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local server = testing.start()
local status = 0
local ok, err = pcall(function()
  local op = server:create {}
  local dir = server.dir
  local pem = testing.make_rsa_key(dir)
  local keyfile = dir .. "/sa.json"
  testing.write(keyfile, cjson.encode {
    type = "service_account", client_email = "torture@test-project.iam.gserviceaccount.com",
    private_key = pem, private_key_id = "k1", token_uri = server.http_endpoint .. "/token",
  })
  local supp = "scripts/lsan.supp" -- the host runs in this directory
  local envs = table.concat({
    "TORTURE_HTTP=" .. sh_quote(server.http_endpoint), "TORTURE_HTTPS=" .. sh_quote(server.endpoint),
    "TORTURE_CA=" .. sh_quote(server.ca_file), "TORTURE_OP=" .. sh_quote(op.name),
    "TORTURE_TOKEN=" .. sh_quote(server.token), "TORTURE_KEYFILE=" .. sh_quote(keyfile),
    "ASAN_OPTIONS=detect_leaks=1:exitcode=23:abort_on_error=0",
    "LSAN_OPTIONS=" .. sh_quote("suppressions=" .. supp .. ":print_suppressions=1"),
    "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1",
  }, " ")
  for _, name in ipairs(SCENARIOS) do
    local ns = ""
    if sample_mode then
      ns = samples[name]
      if not ns then error("fuzz/torture/sample has no line for " .. name) end
    end
    local t0 = os.time()
    local cmd = ("%s build/torture/torture fuzz/torture/%s.lua %s"):format(envs, name, ns)
    local done, _, code = os.execute(cmd)
    local secs = os.time() - t0
    if not done then
      print(("torture %s: FAILED (exit %s) in %d s"):format(name, tostring(code), secs))
      status = 1
    else
      print(("torture %s: clean in %d s"):format(name, secs))
    end
    io.stdout:flush()
  end
end)
server:stop()
if not ok then
  print("torture: " .. tostring(err))
  status = 1
end
print(status == 0 and "torture: every run ended in success, a memory error or a tagged error; no leak but named ones"
  or "torture: FAILED")
os.exit(status)
