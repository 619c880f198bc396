-- A service-account key file for the fake (testing.make_key_file, `vertexops fake --key-file`),
-- and the error when a key file cannot be read: it names the file and the permission (nginx
-- workers run as another user than the file's owner).
local vertexops = require "vertexops"
local testing = require "vertexops.testing"
local H = require "support.helper"

describe("testing.make_key_file", function()
  local fake = H.fake_server()
  local server, dir
  setup(function() dir = H.fake.tmpdir() end)
  teardown(function() os.execute("rm -rf '" .. dir .. "'") end)
  before_each(function() server = fake.server end)

  it("writes a service-account file whose token_uri is the server's /token on localhost", function()
    local path = testing.make_key_file(dir .. "/sa.json", server)
    local key = require("cjson").decode(H.read(path))
    assert.are.equal("service_account", key.type)
    assert.are.equal(testing.KEY_FILE_EMAIL, key.client_email)
    assert.are.equal("https://localhost:" .. server.endpoint:match(":(%d+)$") .. "/token", key.token_uri)
    assert.matches("^%-%-%-%-%-BEGIN PRIVATE KEY", key.private_key)
  end)

  it("makes it readable by other users (mode 0644: nginx workers)", function()
    local path = testing.make_key_file(dir .. "/mode.json", server.endpoint)
    local out = H.run("stat -c %a '" .. path .. "'")
    assert.are.equal("644", out:match("%d+"))
  end)

  it("gives a key the fake exchanges for a token (one jwt-bearer request)", function()
    local path = testing.make_key_file(dir .. "/use.json", server)
    local op = server:create { done_after = 30 }
    assert.is_true(vertexops.cancel(op.name, nil,
      { endpoint = server.endpoint, ca_file = server.ca_file, credentials = path }))
    assert.are.equal(1, #server:log("token"))
    assert.matches("^Bearer ya29%.fake%-", server:log("cancel")[1].headers.authorization)
  end)

  it("refuses a path or server of the wrong type, and an endpoint that is no server's", function()
    assert.are.same({ "TypeError" }, H.raises(testing.make_key_file, 42, server).tags)
    assert.are.same({ "TypeError" }, H.raises(testing.make_key_file, dir .. "/x.json").tags)
    assert.are.same({ "ValueError" }, H.raises(testing.make_key_file, dir .. "/x.json", "not a url").tags)
  end)
end)

describe("a key file the process cannot read", function()
  it("raises AuthError naming the file, Permission denied and who must read it", function()
    local dir = H.fake.tmpdir()
    finally(function() os.execute("rm -rf '" .. dir .. "'") end)
    local path = dir .. "/locked.json"
    H.fake.write(path, "{}")
    os.execute("chmod 600 '" .. path .. "'; chmod 755 '" .. dir .. "'")
    -- as root the file is readable anyway: the child runs as nobody, like nginx's workers
    local as = H.fake.is_root and "setpriv --reuid=65534 --regid=65534 --clear-groups " or ""
    local code = ([[
      local ok, err = pcall(function()
        return require("vertexops.auth").provider({ credentials = %q }):token()
      end)
      print(ok and "OK" or (err.tags[1] .. ": " .. err.message))]]):format(path)
    local script = dir .. "/child.lua"
    H.fake.write(script, code)
    os.execute("chmod 644 '" .. script .. "'")
    -- the interpreter by a path relative to this directory when it lies inside it (make asan's
    -- scripts/asan-lua): nobody may not traverse the directories above a clone (mktemp -d's 0700)
    local lua, cwd = H.lua_command(), H.run("pwd"):match("[^\n]+")
    if lua:sub(1, #cwd + 1) == cwd .. "/" then lua = "./" .. lua:sub(#cwd + 2) end
    local out = H.run(as .. lua .. " " .. script)
    assert.matches("AuthError: credentials file " .. path, out, 1, true)
    assert.matches("Permission denied", out, 1, true)
    assert.matches("must be readable by the user this process runs as (nginx workers: nginx.conf's `user`", out, 1, true)
  end)
end)
