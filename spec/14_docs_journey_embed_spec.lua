-- make test: once
-- The C-host journey of README.md: a host compiled and linked with the line README shows (between
-- its embed-link-line markers, only myhost.c and myhost placed in a directory of our own) against
-- the archives of `make static`, run against the fake server: it cancels, CANCELLED. The line is the
-- one `make -s link-line` prints, so README cannot drift from the Makefile.
local H = require "support.helper"

describe("README's link line for a C host", function()
  local line, dir

  setup(function()
    local out, ok = H.run("make -s static")
    assert(ok, out)
    local block = "<!%-%- embed%-link%-line %-%->\n```sh\n([^\n]+)\n```\n<!%-%- /embed%-link%-line %-%->"
    line = assert(H.read("README.md"):match(block), "README has no embed-link-line block")
    dir = H.fake.tmpdir()
  end)
  teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

  it("is the line make -s link-line prints for Lua 5.4", function()
    local out, ok = H.run("make -s link-line")
    assert.is_true(ok, out)
    assert.are.equal(line, out:match("^[^\n]+"))
  end)

  describe("compiles a host that", function()
    local fake = H.fake_server()

    it("cancels an operation of the fake: CANCELLED, exit 0", function()
      H.run("cp examples/embed/host.c '" .. dir .. "/myhost.c'")
      local cmd = line:gsub(" %-o myhost myhost%.c ", " -o " .. dir .. "/myhost " .. dir .. "/myhost.c ", 1)
      assert.are_not.equal(line, cmd, "README's line no longer names -o myhost myhost.c")
      local out, ok = H.run(cmd)
      assert.is_true(ok, cmd .. "\n" .. out)
      local server = fake.server
      local op = server:create { done_after = 30 }
      local ran, done = H.run(("%s/myhost %s %s %s"):format(dir, op.name, server.endpoint, server.ca_file), {
        GOOGLE_OAUTH_ACCESS_TOKEN = "test-token", VERTEXOPS_ENDPOINT = "", VERTEXOPS_CA_FILE = "" })
      assert.is_true(done, ran)
      assert.matches(op.name:gsub("%p", "%%%0") .. ": CANCELLED\n$", ran)
      assert.are.equal(1, #server:log("cancel"))
    end)
  end)
end)
