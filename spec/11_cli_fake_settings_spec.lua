-- make test: once
-- What `vertexops fake` prints works where it is used: its export line for the command line (the
-- library reads VERTEXOPS_ENDPOINT and VERTEXOPS_CA_FILE), and the endpoint by host name plus
-- lua_ssl_trusted_certificate for nginx (docs/fake.md, "The fake from nginx"; the nginx side is
-- spec/14_docs_journey_openresty_spec.lua).
local cjson = require "cjson"
local cli = require "vertexops.cli"
local H = require "support.helper"

local capture = H.capture

-- Runs `vertexops fake` in-process with args; during(info_text, server) runs while it serves.
local function fake(args, during)
  local out, err = capture(), capture()
  local status = cli.main(args, {
    stdout = out, stderr = err,
    foreground = function(server) during(out.text, server) end,
  })
  assert.are.equal(0, status, err.text)
end

describe("vertexops fake prints", function()
  it("an export line that bin/vertexops can use as it is", function()
    fake({ "fake", "--quiet" }, function(text, server)
      local op = require("vertexops.testing").attach(server):create {}
      local exports = assert(text:match("\nexport ([^\n]+)"), text)
      local out, ok = H.run(("env %s %s bin/vertexops get %s --json"):format(exports, H.lua_command(), op.name), {
        VERTEXOPS_ENDPOINT = "", VERTEXOPS_CA_FILE = "", GOOGLE_OAUTH_ACCESS_TOKEN = "" })
      assert.is_true(ok, out)
      assert.are.equal(op.name, cjson.decode(out).name)
    end)
  end)

  it("for nginx: the endpoint by host name and lua_ssl_trusted_certificate with its CA", function()
    fake({ "fake", "--quiet" }, function(text, server)
      local port = server.endpoint:match(":(%d+)$")
      assert.matches("# inside nginx: VERTEXOPS_ENDPOINT=https://localhost:" .. port .. " ", text, 1, true)
      assert.matches("#   lua_ssl_trusted_certificate " .. server.ca_file .. ";", text, 1, true)
    end)
  end)

  it("nginx_endpoint in its JSON", function()
    fake({ "fake", "--json", "--quiet" }, function(text, server)
      local info = cjson.decode(text)
      assert.are.equal("https://localhost:" .. server.endpoint:match(":(%d+)$"), info.nginx_endpoint)
    end)
  end)
end)

describe("vertexops fake --help", function()
  it("points at docs/fake.md and docs/contract.md, and how to find them in the rock", function()
    local out, err = capture(), capture()
    assert.are.equal(0, cli.main({ "fake", "--help" }, { stdout = out, stderr = err }))
    local text = out.text:gsub("%s+", " ")
    assert.matches("docs/fake.md", text, 1, true)
    assert.matches("docs/contract.md", text, 1, true)
    assert.matches("luarocks doc vertexops --list", text, 1, true)
  end)
end)

describe("vertexops fake --key-file", function()
  it("writes a key file, prints it, and bin/vertexops gets a token with it", function()
    local dir = H.fake.tmpdir()
    finally(function() os.execute("rm -rf '" .. dir .. "'") end)
    local path = dir .. "/sa.json"
    fake({ "fake", "--quiet", "--key-file", path }, function(text, server)
      assert.matches("\nkey_file       " .. path .. "\n", text, 1, true)
      assert.matches("GOOGLE_APPLICATION_CREDENTIALS=" .. path, text, 1, true)
      local running = require("vertexops.testing").attach(server)
      local op = running:create {}
      local out, ok = H.run(("%s bin/vertexops get %s --json"):format(H.lua_command(), op.name), {
        VERTEXOPS_ENDPOINT = server.endpoint, VERTEXOPS_CA_FILE = server.ca_file, GOOGLE_OAUTH_ACCESS_TOKEN = "",
        GOOGLE_APPLICATION_CREDENTIALS = path })
      assert.is_true(ok, out)
      assert.are.equal(op.name, cjson.decode(out).name)
      assert.are.equal(1, #running:log("token"))
    end)
  end)
end)
