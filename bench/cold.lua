-- make bench-cold (make bench runs it): the cold start. A fresh process makes one get, credentials
-- from a service-account key file (testing.make_key_file: the fake knows its key, so it verifies
-- self-signed JWTs), against the fake server: vertexops (a Lua script, the CLI) next to Google's Node
-- client (@google-cloud/aiplatform with google-auth-library, bench/node_cold.js) in the same auth
-- mode, and gcloud where the machine has it. Wall time of the whole process (interpreter start,
-- loading, key parsing, TLS, the requests) and the requests each call made, from the fake's log.
-- Writes the "## Cold start" section of bench/RESULTS.md (replacing the one there) and prints it.
local fake = require "support.fake"
local testing = require "vertexops.testing"
local core = require "vertexops.core"
local common = require "bench.common"

local OUT = "bench/RESULTS.md"
local RUNS = tonumber(os.getenv("BENCH_COLD_RUNS") or "5")
local ENV = 'env -u GOOGLE_APPLICATION_CREDENTIALS -u GOOGLE_OAUTH_ACCESS_TOKEN -u VERTEXOPS_ENDPOINT '
  .. 'LUA_PATH="./lua/?.lua;./lua/?/init.lua;;" '
local LUA54 = ENV .. 'LUA_CPATH="./build/5.4/?.so;;" lua5.4'
local LUAJIT = ENV .. 'LUA_CPATH="./build/jit/?.so;;" luajit'
local has_node = os.execute("test -d bench/node_modules/google-auth-library -a -d bench/node_modules/@google-cloud/aiplatform")
has_node = has_node == true or has_node == 0

local server = fake.start()
local dir = testing.tmpdir()
local key_file = testing.make_key_file(dir .. "/sa.json", server)
local op = server:create {}
local host, port = server.endpoint:match("^https://([^:/]+):(%d+)")
local q = function(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function vx_script(lua, mode)
  return ("%s bench/vx_cold.lua %s %s %s %s %s"):format(lua, q(server.endpoint), q(server.ca_file), q(key_file),
    q(op.name), mode)
end
local function cli()
  return ("%s bin/vertexops get %s --endpoint %s --ca-file %s --credentials %s --json"):format(LUA54, q(op.name),
    q(server.endpoint), q(server.ca_file), q(key_file))
end
local function node(mode)
  return ("cd bench && NODE_EXTRA_CA_CERTS=%s node node_cold.js %s %s %s %s %s"):format(q(server.ca_file), host, port,
    q(key_file), q(op.name), mode)
end

-- gcloud ai operations describe, pointed at the fake as the issue says (api_endpoint_overrides/aiplatform,
-- auth/access_token_file, core/custom_ca_certs_file) in a configuration directory of its own; the CA file
-- also as REQUESTS_CA_BUNDLE, which otherwise wins over gcloud's property when the environment sets it
local has_gcloud = os.execute("command -v gcloud >/dev/null 2>&1")
has_gcloud = has_gcloud == true or has_gcloud == 0
local function gcloud()
  local cfg = dir .. "/gcloud"
  testing.write(dir .. "/gcloud-token", server.token)
  os.execute("mkdir -p " .. q(cfg .. "/configurations"))
  testing.write(cfg .. "/active_config", "default")
  testing.write(cfg .. "/configurations/config_default", table.concat({
    "[api_endpoint_overrides]", "aiplatform = " .. server.endpoint .. "/",
    "[auth]", "access_token_file = " .. dir .. "/gcloud-token",
    "[core]", "custom_ca_certs_file = " .. server.ca_file, "disable_usage_reporting = true",
    "[component_manager]", "disable_update_check = true" }, "\n"))
  local project, region, id = op.name:match("^projects/([^/]+)/locations/([^/]+)/operations/([^/]+)$")
  return ("env CLOUDSDK_CONFIG=%s CLOUDSDK_CORE_DISABLE_PROMPTS=1 CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE=%s "
    .. "REQUESTS_CA_BUNDLE=%s gcloud ai operations describe %s --region=%s --project=%s --format=json 2>&1")
    :format(q(cfg), q(server.ca_file), q(server.ca_file), id, region, project)
end

local function median(xs)
  local s = {}
  for i, x in ipairs(xs) do s[i] = x end
  table.sort(s)
  local n = #s
  return n % 2 == 1 and s[(n + 1) / 2] or (s[n / 2] + s[n / 2 + 1]) / 2
end

-- RUNS fresh processes of cmd (after one warm-up for the page cache): median wall seconds, and the
-- requests (all, and to the token endpoint) each made, from the log; nil and the output on failure.
local function measure(label, cmd, ok_pattern)
  io.stderr:write("  cold start: ", label, " ...\n")
  common.sh(cmd)
  local walls, cpus, requests, tokens = {}, {}, {}, {}
  for i = 1, RUNS do
    server:reset_log()
    local t0 = core.clock()
    local out = common.sh("(" .. cmd .. "); times")
    walls[i] = core.clock() - t0
    if not out:find(ok_pattern) then return nil, out end
    -- `times`: the shell's user and system time, then its children's (the contender's process)
    local um, us, sm, ss = out:match("\n(%d+)m([%d.]+)s (%d+)m([%d.]+)s%s*$")
    cpus[i] = um and (um * 60 + us + sm * 60 + ss) or 0
    requests[i], tokens[i] = #server:log(), #server:log("token")
  end
  return { wall = median(walls), cpu = median(cpus), requests = median(requests), tokens = median(tokens) }
end

local rows, lines = {}, {}
local function add(s) lines[#lines + 1] = s end
local OK_VX, OK_NODE = '"ok": true', '"ok":true'
local contenders = {
  { "vertexops, Lua 5.4 script", "self-signed JWT", vx_script(LUA54, "self"), OK_VX, key = "vx_self" },
  { "vertexops, LuaJIT script", "self-signed JWT", vx_script(LUAJIT, "self"), OK_VX, key = "jit_self" },
  { "vertexops, Lua 5.4 script", "token exchange", vx_script(LUA54, "exchange"), OK_VX, key = "vx_exchange" },
  { "vertexops CLI (`vertexops get`)", "token exchange (an endpoint is given: the default)", cli(), '"name"',
    key = "cli" },
}
if has_node then
  contenders[#contenders + 1] = { "Node client (google-auth-library)", "self-signed JWT (the client's default)",
    node("self"), OK_NODE, key = "node_self" }
  contenders[#contenders + 1] = { "Node client (google-auth-library)", "token exchange (JWT client with scopes)",
    node("exchange"), OK_NODE, key = "node_exchange" }
end
if has_gcloud then
  contenders[#contenders + 1] = { "gcloud ai operations describe", "access token file (no token request)", gcloud(),
    '"name"', key = "gcloud" }
end
for _, c in ipairs(contenders) do
  local r, out = measure(c[1] .. ", " .. c[2], c[3], c[4])
  if not r then io.stderr:write("    failed:\n", out, "\n") end
  rows[c.key] = r
  c.result, c.failure = r, out
end
server:stop()
os.execute("rm -rf " .. q(dir))

local function ms(s) return ("%.0f ms"):format(s * 1000) end
local node_version = has_node
  and common.sh("cd bench && node -p \"require('google-auth-library/package.json').version + ' / ' + "
    .. "require('@google-cloud/aiplatform/package.json').version + ' / node ' + process.versions.node\"")
    :gsub("%s+$", "") or "not installed"
add("## Cold start")
add("")
add(("A fresh process makes one `get`, credentials from a service-account key file (made by "
  .. "`testing.make_key_file`: the fake verifies the self-signed JWTs of its key), against the fake "
  .. "server on loopback (HTTPS). Wall time of the whole process (start, loading, key, TLS, the "
  .. "requests), median of %d runs after a warm-up; requests per call from the fake's log. "
  .. "google-auth-library / @google-cloud/aiplatform / node: %s. `bench/cold.lua` (`make bench-cold`)."):format(RUNS,
  node_version))
add("")
add("| contender | auth mode | wall time | CPU time (user + system) | requests per call | of them token requests |")
add("|---|---|---|---|---|---|")
for _, c in ipairs(contenders) do
  local r = c.result
  if r then
    add(("| %s | %s | %s | %s | %g | %g |"):format(c[1], c[2], ms(r.wall), ms(r.cpu), r.requests, r.tokens))
  else
    add(("| %s | %s | failed: %s | | | |"):format(c[1], c[2], (c.failure or ""):gsub("\n", " "):sub(1, 120)))
  end
end
if not has_gcloud then add("| gcloud ai operations describe | — | not on this machine | | | |") end
add("")
local load = common.sh("cat /proc/loadavg"):match("^(%S+)")
add(("Load average when written: %s on %s cores: on a busy machine wall time is mostly waiting for a CPU, "
  .. "and the CPU time is the steadier measure. A target is judged on wall time."):format(load or "?",
  (common.sh("nproc"):gsub("%s+", ""))))
add("")
add("Targets:")
local function target(text, met, detail)
  add(("- %s: **%s** (%s)"):format(text, met and "MET" or "NOT MET", detail))
end
local s = rows.vx_self
target("one HTTPS round trip to Vertex and no token request when `self_signed_jwt` is on", s and s.requests == 1
  and s.tokens == 0, s and ("%g request, %g token requests"):format(s.requests, s.tokens) or "failed")
-- the ratio of wall times, and of CPU times (steadier on a loaded machine)
local function faster(text, ours, theirs)
  if not (ours and theirs) then return end
  local wall, cpu = theirs.wall / ours.wall, theirs.cpu / math.max(ours.cpu, 1e-3)
  target(text, wall >= 30, ("wall %.1f×: %s against %s; CPU %.1f×: %s against %s"):format(wall, ms(ours.wall),
    ms(theirs.wall), cpu, ms(ours.cpu), ms(theirs.cpu)))
end
faster("vertexops ≥ 30× faster than the Node client's cold call (both self-signed JWT; Lua 5.4 script)", s,
  rows.node_self)
faster("the CLI ≥ 30× faster than the Node client's cold call (both token exchange)", rows.cli, rows.node_exchange)
if not rows.node_self then add("- the Node client is not installed (npm unreachable?): no comparison") end
faster("vertexops ≥ 30× faster than gcloud's cold call (Lua 5.4 script, self-signed JWT; gcloud with a token "
  .. "file: neither makes a token request)", s, rows.gcloud)
if not has_gcloud then add("- gcloud: not measured (not on this machine).") end
add("")
add("The Node client's time is mostly loading (`require` of @google-cloud/aiplatform and its protos); "
  .. "what vertexops saves on the wire with a self-signed JWT is the token exchange: one round trip of two.")
common.write_section(OUT, "Cold start", table.concat(lines, "\n") .. "\n")
