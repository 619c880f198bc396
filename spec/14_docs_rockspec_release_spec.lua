-- make test: once
-- The release rockspec (make dist: scripts/rockspec.lua) is made from vertexops-scm-1.rockspec, the
-- one list of the rock's modules: only the version and the source differ. (The artifacts built and
-- installed: spec/14_docs_release_spec.lua, make release-check.)
local H = require "support.helper"

local function load_rockspec(text)
  local env = {}
  local chunk = assert(load(text, "rockspec", "t", env))
  chunk()
  return env
end

local function make(version, url)
  return H.run(("lua5.4 scripts/rockspec.lua %s '%s' < vertexops-scm-1.rockspec 2>&1"):format(version, url))
end

describe("the release rockspec", function()
  it("is the scm rockspec with version V-1 and the source URL given, unpacking into vertexops-V", function()
    local out, ok = make("9.8.7", "https://example.invalid/vertexops-9.8.7.tar.gz")
    assert.is_true(ok, out)
    local rel, scm = load_rockspec(out), load_rockspec(H.read("vertexops-scm-1.rockspec"))
    assert.are.equal("9.8.7-1", rel.version)
    assert.are.same({ url = "https://example.invalid/vertexops-9.8.7.tar.gz", dir = "vertexops-9.8.7" }, rel.source)
    for _, k in ipairs { "package", "description", "dependencies", "external_dependencies", "build" } do
      assert.are.same(scm[k], rel[k], k)
    end
  end)

  it("marks the published URL as a template the publisher fills in", function()
    local out = make("9.8.7", "https://example.invalid/vertexops-9.8.7.tar.gz")
    assert.matches("%-%- TEMPLATE: the publisher replaces example%.invalid", out)
  end)

  it("refuses a version that is not X.Y.Z", function()
    local out, ok = make("1.0", "https://example.invalid/x.tar.gz")
    assert.is_false(ok)
    assert.matches("X%.Y%.Z", out)
  end)

  it("reads the version from csrc/vx.h (scripts/release.sh version)", function()
    local out, ok = H.run("sh scripts/release.sh version")
    assert.is_true(ok, out)
    assert.are.equal(H.read("csrc/vx.h"):match('\n#define VX_VERSION "([^"]+)"') .. "\n", out)
  end)
end)
