-- make test: release-check
-- The release artifacts as a user takes them (make release-check builds them afresh into
-- VERTEXOPS_RELEASE_DIST, then runs this file once, under Lua 5.4): the Debian packages unpacked
-- (dpkg -x) and their Depends read (dpkg-deb -I), loaded from the unpacked tree by lua5.1 ... lua5.4,
-- luajit and nginx; the source rock installed offline into a temporary tree for each Lua; the
-- rockspec and SHA256SUMS. Every interpreter cancels one operation of the fake, whose log is the
-- witness. (The scm rockspec and `luarocks make`: spec/14_docs_packaging_spec.lua.)
local H = require "support.helper"

local DIST = os.getenv("VERTEXOPS_RELEASE_DIST")
if not DIST then
  describe("the release artifacts", function()
    pending("run by make release-check (it builds them and sets VERTEXOPS_RELEASE_DIST)")
  end)
  return
end

local V = assert(H.read("csrc/vx.h"):match('\n#define VX_VERSION "([^"]+)"'), "no VX_VERSION in csrc/vx.h")
local ARCH = (H.run("dpkg --print-architecture"):gsub("%s+$", ""))
local MULTIARCH = (H.run("dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null"):gsub("%s+$", ""))
local LUAS = {
  { lua = "lua5.1", lv = "5.1" }, { lua = "lua5.2", lv = "5.2" }, { lua = "lua5.3", lv = "5.3" },
  { lua = "lua5.4", lv = "5.4" }, { lua = "luajit", lv = "5.1" },
}
local function plain(s) return (s:gsub("%p", "%%%0")) end
local function deb(name, arch) return DIST .. "/" .. name .. "_" .. V .. "-1_" .. (arch or ARCH) .. ".deb" end

-- An interpreter whose search paths name only a tree's directories (and, for the packages the
-- artifact declares as dependencies, lua-cjson's files where Debian puts them); prints where
-- vertexops and vertexops.core came from and cancels one operation of the fake.
local SCRIPT = [[
local name, endpoint, ca = ...
local function searchpath(mod, path) -- package.searchpath, which Lua 5.1 lacks
  for p in path:gmatch("[^;]+") do
    local f = io.open((p:gsub("%?", (mod:gsub("%.", "/")))), "r")
    if f then f:close() return (p:gsub("%?", (mod:gsub("%.", "/")))) end
  end
end
local vertexops = require "vertexops"
print(searchpath("vertexops", package.path))
print(searchpath("vertexops.core", package.cpath))
print(vertexops._VERSION)
assert(vertexops.cancel(name, nil, { endpoint = endpoint, ca_file = ca, token = "test-token" }))
print("cancelled")
]]
local function lua_env(lpath, cpath)
  local e = { LUA_PATH = lpath, LUA_CPATH = cpath, LUA_INIT = "" }
  for _, s in ipairs { "5_2", "5_3", "5_4" } do
    e["LUA_PATH_" .. s], e["LUA_CPATH_" .. s], e["LUA_INIT_" .. s] = lpath, cpath, ""
  end
  return e
end
local function cancel_from(fake, lua, lpath, cpath, root)
  local op = fake.server:create {}
  local script = os.tmpname()
  H.fake.write(script, SCRIPT)
  local out, ok = H.run(("%s %s %s %s %s"):format(lua, script, op.name, fake.server.endpoint, fake.server.ca_file),
    lua_env(lpath, cpath))
  os.remove(script)
  assert.is_true(ok, lua .. ": " .. out)
  local mod, core, version, done = out:match("^([^\n]*)\n([^\n]*)\n([^\n]*)\n([^\n]*)\n$")
  assert.matches("^" .. plain(root) .. "/", mod or out, 1)
  assert.matches("^" .. plain(root) .. "/", core or out, 1)
  assert.are.equal(V, version)
  assert.are.equal("cancelled", done)
  local log = fake.server:log("cancel")
  assert.are.equal(1, #log, lua)
  assert.are.equal(op.name, log[1].name)
end

describe("the Debian packages", function()
  local fake = H.fake_server()
  local root

  setup(function()
    root = H.fake.tmpdir()
    for _, p in ipairs { "lua-vertexops", "lua-vertexops-dev" } do
      local out, ok = H.run("dpkg -x " .. deb(p) .. " " .. root)
      assert(ok, out)
    end
    local out, ok = H.run("dpkg -x " .. deb("lua-vertexops-testing", "all") .. " " .. root)
    assert(ok, out)
  end)
  teardown(function() os.execute("rm -rf " .. root) end)

  -- the Depends of a package, by name (versions and alternatives dropped)
  local function depends(p, arch)
    local out = assert(H.run("dpkg-deb -f " .. deb(p, arch) .. " Depends"))
    local names = {}
    for alt in out:gmatch("[^,]+") do names[#names + 1] = alt:match("^%s*([%w%.%+%-]+)") end
    table.sort(names)
    return names, out
  end

  it("declares what lua-vertexops needs at run time, each installed here", function()
    local names, raw = depends("lua-vertexops")
    for _, need in ipairs { "lua-cjson", "lua-any", "libcurl4", "libssl3", "libc6" } do
      assert.is_truthy(raw:find(need, 1, true), need .. " is not in Depends: " .. raw)
    end
    for _, n in ipairs(names) do
      local _, ok = H.run("dpkg-query -W -f='${Status}' " .. n .. " | grep -q 'ok installed'")
      assert.is_true(ok, n .. " (a dependency) is not installed")
    end
  end)

  it("puts the fake's runtime (nginx, its Lua module, openssl, LuaSocket) in lua-vertexops-testing's Depends", function()
    local names = depends("lua-vertexops-testing", "all")
    assert.are.same({ "libnginx-mod-http-lua", "lua-socket", "lua-vertexops", "nginx", "openssl" }, names)
  end)

  it("ships the module for every Lua Debian ships, the command and the docs", function()
    for _, lv in ipairs { "5.1", "5.2", "5.3", "5.4" } do
      assert.is_truthy(H.fake.read(root .. "/usr/share/lua/" .. lv .. "/vertexops/init.lua"), lv)
      assert.is_truthy(H.fake.read(root .. "/usr/lib/" .. MULTIARCH .. "/lua/" .. lv .. "/vertexops/core.so"), lv)
      assert.is_truthy(H.fake.read(root .. "/usr/share/lua/" .. lv .. "/vertexops/testing/init.lua"), lv)
    end
    assert.is_truthy(H.fake.read(root .. "/usr/bin/vertexops"))
    assert.is_truthy(H.fake.read(root .. "/usr/share/doc/lua-vertexops/contract.md")
      or H.fake.read(root .. "/usr/share/doc/lua-vertexops/contract.md.gz"))
  end)

  it("ships the man page and the bash and zsh completion where man, bash-completion and zsh look", function()
    for _, f in ipairs {
      "/usr/share/man/man1/vertexops.1.gz", "/usr/share/bash-completion/completions/vertexops",
      "/usr/share/zsh/vendor-completions/_vertexops",
    } do
      assert.is_truthy(H.fake.read(root .. f), f .. " is not in lua-vertexops")
    end
    local out, ok = H.run("zcat " .. root .. "/usr/share/man/man1/vertexops.1.gz")
    assert.is_true(ok, out)
    assert.matches('\n%.TH VERTEXOPS 1 "[^"]*" "vertexops ' .. plain(V) .. '"', "\n" .. out)
  end)

  it("its bash completion, sourced from the unpacked tree, offers the commands of the command line's table", function()
    local want = {}
    for i, c in ipairs(require("vertexops.cli.commands").COMMANDS) do want[i] = c.name end
    table.sort(want)
    local out, ok = H.run(("bash --norc --noprofile -c 'source %s/usr/share/bash-completion/completions/vertexops; "
      .. "COMP_WORDS=(vertexops \"\"); COMP_CWORD=1; _vertexops; printf \"%%s\\n\" \"${COMPREPLY[@]}\"'"):format(root))
    assert.is_true(ok, out)
    local got = {}
    for w in out:gmatch("[^\n]+") do got[#got + 1] = w end
    table.sort(got)
    assert.are.same(want, got)
  end)

  -- lua-vertexops-dev as a C host's author uses it: pkg-config's answer compiles and links
  -- examples/embed/host.c (shipped in the package's examples), which cancels one operation. The
  -- unpacked tree stands for /usr (--define-variable=prefix); what its Depends bring (Lua 5.4's
  -- headers and library, libcurl, OpenSSL, libhiredis, lua-cjson) is this machine's.
  it("lua-vertexops-dev: a C host built with pkg-config --cflags --libs vertexops cancels", function()
    local pc = ("PKG_CONFIG_PATH=%s/usr/lib/%s/pkgconfig pkg-config --define-variable=prefix=%s/usr ")
      :format(root, MULTIARCH, root)
    local libs, ok1 = H.run(pc .. "--libs vertexops")
    assert.is_true(ok1, libs)
    -- the core links libhiredis (option rate.redis): a link line without it leaves its symbols undefined
    assert.matches("%-lhiredis", libs)
    assert.matches("^" .. plain(root) .. "/usr/lib/", libs)
    local cflags, ok2 = H.run(pc .. "--cflags vertexops")
    assert.is_true(ok2, cflags)
    local dir = H.fake.tmpdir()
    local src = root .. "/usr/share/doc/lua-vertexops-dev/examples/host.c"
    local out, ok = H.run(("cc -O2 -Wall -Werror %s -I/usr/include/lua5.4 -o %s/host %s %s")
      :format(cflags:gsub("\n", ""), dir, src, libs:gsub("\n", "")))
    assert.is_true(ok, out)
    local op = fake.server:create { done_after = 3600 }
    out, ok = H.run(("%s/host %s %s %s"):format(dir, op.name, fake.server.endpoint, fake.server.ca_file), {
      LUA_PATH = dir .. "/?.lua", LUA_CPATH = dir .. "/?.so", LUA_PATH_5_4 = dir .. "/?.lua",
      LUA_CPATH_5_4 = dir .. "/?.so", LUA_INIT = "", LUA_INIT_5_4 = "",
      GOOGLE_OAUTH_ACCESS_TOKEN = "test-token", GOOGLE_CLOUD_QUOTA_PROJECT = "",
      VERTEXOPS_ENDPOINT = "", VERTEXOPS_CA_FILE = "",
    })
    os.execute("rm -rf " .. dir)
    assert.is_true(ok, out)
    assert.matches("\n" .. plain(op.name) .. ": CANCELLED\n$", out)
    local log = fake.server:log("cancel")
    assert.are.equal(1, #log)
    assert.are.equal(op.name, log[1].name)
  end)

  for _, l in ipairs(LUAS) do
    it(l.lua .. " requires vertexops from the unpacked tree and cancels", function()
      local share, lib = root .. "/usr/share/lua/" .. l.lv, root .. "/usr/lib/" .. MULTIARCH .. "/lua/" .. l.lv
      cancel_from(fake, l.lua, share .. "/?.lua;" .. share .. "/?/init.lua",
        lib .. "/?.so;/usr/lib/" .. MULTIARCH .. "/lua/" .. l.lv .. "/?.so", root)
    end)
  end

  it("runs the command /usr/bin/vertexops (lua-any) from the unpacked tree", function()
    local op = fake.server:create {}
    local share, lib = root .. "/usr/share/lua/5.4", root .. "/usr/lib/" .. MULTIARCH .. "/lua/5.4"
    local e = lua_env(share .. "/?.lua;" .. share .. "/?/init.lua",
      lib .. "/?.so;/usr/lib/" .. MULTIARCH .. "/lua/5.4/?.so")
    for k, v in pairs(H.cli_env(fake.server)) do e[k] = v end
    -- lua-any runs the first of the script's Lua-Versions that is installed: 5.4
    local out, ok = H.run(root .. "/usr/bin/vertexops cancel " .. op.name .. " --ca-file " .. fake.server.ca_file, e)
    assert.is_true(ok, out)
    assert.are.equal(1, #fake.server:log("cancel"))
  end)

  it("nginx with its Lua module requires vertexops from the unpacked 5.1 tree and cancels", function()
    local op = fake.server:create {}
    local dir, port = H.fake.tmpdir(), H.fake.free_port()
    local share, lib = root .. "/usr/share/lua/5.1", root .. "/usr/lib/" .. MULTIARCH .. "/lua/5.1"
    local conf = ([[
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
worker_processes 1;
error_log DIR/error.log warn;
pid DIR/nginx.pid;
USER
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path DIR/tmp;
  # the tree first; ";;" then nginx's own defaults, where Debian's lua-resty-core is (the module
  # loads it at start): the answer says where vertexops came from
  lua_package_path "SHARE/?.lua;SHARE/?/init.lua;;";
  lua_package_cpath "LIB/?.so;;";
  lua_ssl_trusted_certificate CA;
  server {
    listen 127.0.0.1:PORT;
    location = /cancel {
      content_by_lua_block {
        local vertexops = require "vertexops"
        local ok, err = vertexops.cancel(ngx.var.arg_name, nil, { endpoint = "ENDPOINT", token = "test-token" })
        ngx.say(package.searchpath("vertexops", package.path), " ", vertexops._VERSION, " ", tostring(ok or err))
      }
    }
  }
}
]]):gsub("%u+", {
      DIR = dir, USER = H.fake.is_root and "user root root;" or "", SHARE = share, LIB = lib, MULTIARCH = MULTIARCH,
      CA = fake.server.ca_file, PORT = tostring(port),
      ENDPOINT = (fake.server.endpoint:gsub("127%.0%.0%.1", "localhost")),
    })
    assert(H.fake.run_nginx(dir, conf, {}), "nginx did not start: " .. tostring(H.fake.read(dir .. "/error.log")))
    local out
    local ok = pcall(function()
      out = H.run(("curl -s --retry 20 --retry-connrefused --retry-delay 0 'http://127.0.0.1:%d/cancel?name=%s'")
        :format(port, op.name))
    end)
    local errors = H.fake.read(dir .. "/error.log") or ""
    H.fake.stop_nginx(dir)
    os.execute("rm -rf " .. dir)
    assert.is_true(ok)
    assert.are.equal(share .. "/vertexops/init.lua " .. V .. " true\n", out, errors)
    assert.are.equal(1, #fake.server:log("cancel"))
  end)
end)

describe("the source rock", function()
  local fake = H.fake_server()
  local trees, outs, oks = {}, {}, {}

  -- installed offline (--deps-mode=none: Debian's lua-cjson serves) into a fresh tree per Lua,
  -- the four installs side by side
  setup(function()
    local rock = DIST .. "/vertexops-" .. V .. "-1.src.rock"
    local cmds = {}
    for _, lv in ipairs { "5.1", "5.2", "5.3", "5.4" } do
      trees[lv] = H.fake.tmpdir()
      cmds[#cmds + 1] = ("(cd %s && luarocks --lua-version=%s install %s --deps-mode=none --tree=%s/tree "
        .. ">%s/out 2>&1; echo $? >%s/rc) &"):format(trees[lv], lv, rock, trees[lv], trees[lv], trees[lv])
    end
    H.run("sh -c '" .. table.concat(cmds, " ") .. " wait'")
    for lv, t in pairs(trees) do
      outs[lv], oks[lv] = H.fake.read(t .. "/out") or "", (H.fake.read(t .. "/rc") or "") == "0\n"
    end
  end)
  teardown(function() for _, t in pairs(trees) do os.execute("rm -rf " .. t) end end)

  for _, l in ipairs(LUAS) do
    it("installs with luarocks --deps-mode=none for " .. l.lv .. ", and " .. l.lua .. " cancels from that tree", function()
      assert.is_true(oks[l.lv], outs[l.lv])
      local t = trees[l.lv] .. "/tree"
      local share, lib = t .. "/share/lua/" .. l.lv, t .. "/lib/lua/" .. l.lv
      cancel_from(fake, l.lua, share .. "/?.lua;" .. share .. "/?/init.lua",
        lib .. "/?.so;/usr/lib/" .. MULTIARCH .. "/lua/" .. l.lv .. "/?.so", t)
    end)
  end
end)

describe("the release rockspec", function()
  local function load_spec(path)
    local env = {}
    local chunk = assert(loadfile(path, "t", env))
    chunk()
    return env
  end

  it("is the scm rockspec with version V-1 and a source.url template for the publisher", function()
    local rel = load_spec(DIST .. "/vertexops-" .. V .. "-1.rockspec")
    local scm = load_spec("vertexops-scm-1.rockspec")
    assert.are.equal(V .. "-1", rel.version)
    assert.are.same({ url = "https://example.invalid/vertexops-" .. V .. ".tar.gz", dir = "vertexops-" .. V },
      rel.source)
    assert.are.same(scm.build, rel.build)
    assert.are.same(scm.dependencies, rel.dependencies)
    assert.matches("TEMPLATE", H.read(DIST .. "/vertexops-" .. V .. "-1.rockspec"))
  end)

  it("names a tarball whose files are the rock's sources under vertexops-V/", function()
    local out, ok = H.run("tar -tzf " .. DIST .. "/vertexops-" .. V .. ".tar.gz")
    assert.is_true(ok, out)
    for _, f in ipairs { "csrc/module.c", "lua/vertexops/init.lua", "bin/vertexops", "vertexops-scm-1.rockspec" } do
      assert.matches("\nvertexops%-" .. plain(V) .. "/" .. plain(f) .. "\n", "\n" .. out)
    end
  end)
end)

describe("SHA256SUMS", function()
  it("lists every artifact of the directory, and each sum holds", function()
    local out, ok = H.run("sh -c 'cd " .. DIST .. " && sha256sum -c SHA256SUMS'")
    assert.is_true(ok, out)
    local listed = {}
    for f in H.read(DIST .. "/SHA256SUMS"):gmatch("  ([^\n]+)") do listed[#listed + 1] = f end
    local present = {}
    for f in H.run("ls " .. DIST):gmatch("[^\n]+") do
      if f ~= "SHA256SUMS" then present[#present + 1] = f end
    end
    table.sort(listed)
    assert.are.same(present, listed)
    assert.is_true(#listed >= 6, #listed .. " artifacts")
  end)
end)
