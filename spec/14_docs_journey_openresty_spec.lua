-- make test: once
-- The OpenResty journey of README.md, as a newcomer follows it: the rock installed into a private
-- tree with README's luarocks command, `vertexops fake --key-file` from that tree (docs/fake.md, "The
-- fake from nginx"), and a real nginx whose nginx.conf is README's snippet (between the
-- openresty-snippet markers) with only its ${...} placeholders filled; no line is added. A cancel
-- through it ends CANCELLED; an error is a JSON 500 and a readable line in nginx's error log.
local cjson = require "cjson"
local core = require "vertexops.core"
local testing = require "vertexops.testing"
local H = require "support.helper"
local http = require "socket.http"
local prom = require "support.prometheus"
http.TIMEOUT = 90 -- a hung nginx fails the spec instead of holding it (a cancel takes well under a second)

local function readme()
  return H.read("README.md")
end

describe("README's OpenResty section, followed to the letter", function()
  local src, tree, prefix, fake_pid, info, port, running

  setup(function()
    local text = readme()
    -- 1. README's install command, into a tree of our own (luarocks make builds in the source
    --    directory: a copy of it)
    local cmd = assert(text:match("\n(luarocks %-%-lua%-version=5%.1 %-%-tree %S+ make [^\n]+)\n"),
      "README has no luarocks --tree command")
    tree, src = H.fake.tmpdir(), H.fake.tmpdir()
    os.execute("chmod 755 '" .. tree .. "'")
    assert(H.run("cp -r csrc lua bin docs README.md vertexops-scm-1.rockspec " .. src))
    cmd = cmd:gsub("%-%-tree %S+", "--tree " .. tree, 1)
    local out, ok = H.run("sh -c 'cd " .. src .. " && " .. cmd .. "'")
    assert(ok, "README's install command failed: " .. out)
    -- 2. the fake server from the tree, with a key file in the gateway's directory
    prefix = H.fake.tmpdir()
    os.execute("chmod 755 '" .. prefix .. "'") -- nginx's workers (nobody under root) read the key file
    local outf = prefix .. "/fake.json"
    local p = io.popen(("env LUA_PATH='%s/share/lua/5.1/?.lua;%s/share/lua/5.1/?/init.lua;;' LUA_CPATH='%s/lib/lua/5.1/?.so;;' "
      .. "%s bin/vertexops fake --json --quiet --key-file %s/sa.json >%s 2>&1 & echo $!")
      :format(tree, tree, tree, "luajit", prefix, outf))
    fake_pid = p:read("*l")
    p:close()
    local line
    for _ = 1, 250 do -- well under a second; 25 s catches a hang
      line = H.read(outf, true):match("^[^\n]+\n")
      if line then break end
      core.sleep(0.1)
    end
    assert(line, "vertexops fake printed nothing: " .. H.read(outf, true))
    info = cjson.decode(line)
    running = testing.attach(info)
    -- 3. README's nginx.conf, its placeholders filled
    local snippet = assert(text:match("<!%-%- openresty%-snippet %-%->\n```nginx\n(.-)```\n<!%-%- /openresty%-snippet %-%->"),
      "README has no openresty-snippet")
    port = testing.free_port()
    -- README: the workers load the CA, so it is copied out of the fake's private directory
    local ca = prefix .. "/fake-ca.pem"
    assert(text:find("install -m 644 CA_FILE ${PREFIX}/fake-ca.pem", 1, true), "README no longer copies the CA")
    assert(H.run(("install -m 644 %s %s"):format(info.ca_file, ca)))
    local values = { PREFIX = prefix, TREE = tree, PORT = tostring(port), CA = ca, DNS = "127.0.0.1" }
    local conf = snippet:gsub("%${(%u+)}", function(k) return assert(values[k], "unknown placeholder ${" .. k .. "}") end)
    H.fake.write(prefix .. "/nginx.conf", conf)
    -- 4. started as README says, with the environment docs/fake.md gives
    -- (its output to a file: the daemon keeps a pipe open, and reading it would wait for nginx to end)
    local nginx_out, started = H.run(("nginx -p %s -c %s/nginx.conf >%s/start.log 2>&1"):format(prefix, prefix, prefix), {
      VERTEXOPS_ENDPOINT = info.nginx_endpoint, GOOGLE_APPLICATION_CREDENTIALS = prefix .. "/sa.json",
      GOOGLE_OAUTH_ACCESS_TOKEN = "" })
    assert(started, "nginx did not start: " .. nginx_out .. H.read(prefix .. "/error.log", true))
  end)

  teardown(function()
    if prefix then testing.stop_nginx(prefix) end
    if fake_pid then os.execute("kill -TERM " .. fake_pid .. " 2>/dev/null") end
    os.execute("rm -rf '" .. tostring(tree) .. "' '" .. tostring(src) .. "'")
  end)

  local function get(path)
    local body, status
    for _ = 1, 100 do -- nginx listens within a second of starting
      body, status = http.request("http://127.0.0.1:" .. port .. path)
      if body then break end
      core.sleep(0.05)
    end
    return body, status
  end

  it("installed the documents README links to (luarocks doc --list)", function()
    local out, ok = H.run(("luarocks --lua-version=5.1 --tree %s doc vertexops --list"):format(tree))
    assert.is_true(ok, out)
    assert.matches("\n%s+fake%.md\n", out)
    assert.matches("\n%s+contract%.md\n", out)
  end)

  it("cancels an operation of the fake: CANCELLED, with a token from the key file", function()
    local op = running:create { done_after = 30 }
    local body, status = get("/cancel?name=" .. op.name)
    assert.are.equal(200, status, tostring(body) .. H.read(prefix .. "/error.log", true))
    local doc = cjson.decode(body)
    assert.is_true(doc.cancelled)
    assert.are.equal(1, doc.operation.error.code)
    assert.are.equal(1, #running:log("token"))
    assert.matches("^Bearer ya29%.fake%-", running:log("cancel")[1].headers.authorization)
  end)

  it("serves vertexops.metrics on /metrics: a cancel counted as a call and its attempts as the fake's log", function()
    local function scrape()
      local body, status = get("/metrics")
      assert.are.equal(200, status, tostring(body))
      local doc = prom.parse(body)
      prom.check_histograms(doc)
      return doc
    end
    local before, logged = scrape(), #running:log("cancel")
    local op = running:create { done_after = 30 }
    local _, status = get("/cancel?name=" .. op.name)
    assert.are.equal(200, status)
    local after = scrape()
    local function delta(name, labels) return prom.value(after, name, labels) - prom.value(before, name, labels) end
    assert.are.equal(1, delta("vertexops_calls_total", { call = "cancel_and_wait", status = "2xx", tag = "" }))
    assert.are.equal(#running:log("cancel") - logged, delta("vertexops_attempts_total", { call = "cancel" }))
  end)

  it("answers an error as a JSON 500 and logs it as one readable line", function()
    local body, status = get("/cancel?name=projects/x/operations/bad")
    assert.are.equal(500, status)
    local doc = cjson.decode(body)
    assert.are.same({ "ValueError" }, doc.error.tags)
    local log = H.read(prefix .. "/error.log")
    assert.matches("ValueError: ", log, 1, true)
    assert.is_nil(log:find("unknown reason", 1, true))
  end)
end)
