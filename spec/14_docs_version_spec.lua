-- The version is written in one place, csrc/vx.h's VX_VERSION; the code, the rockspecs and every
-- document that names a version of vertexops agree with it (docs/contract.md, "Stability and versions").
local H = require "support.helper"

-- VX_VERSION as the release tooling reads it (make dist: the same sed).
local function vx_version()
  local out, ok = H.run([[sed -n 's/^#define VX_VERSION "\(.*\)"/\1/p' csrc/vx.h]])
  assert.is_true(ok, out)
  return out
end

local function escape(s) return (s:gsub("%p", "%%%0")) end

describe("the version", function()
  local version = vx_version():gsub("\n$", "")

  it("is written once in csrc/vx.h, as semver MAJOR.MINOR.PATCH", function()
    assert.matches("^%d+%.%d+%.%d+$", version)
    local out = H.run("grep -rnE '^[[:space:]]*#[[:space:]]*define[[:space:]]+VX_VERSION' csrc lua bin scripts Makefile")
    local n = select(2, out:gsub("\n", ""))
    assert.are.equal(1, n, "one definition of VX_VERSION, in csrc/vx.h:\n" .. out)
  end)

  it("is vertexops.core.version, vertexops._VERSION and vertexops.safe._VERSION", function()
    assert.are.equal(version, require("vertexops.core").version)
    assert.are.equal(version, require("vertexops")._VERSION)
    assert.are.equal(version, require("vertexops.safe")._VERSION)
  end)

  it("names the client in the User-Agent and x-goog-api-client headers", function()
    local req = require("vertexops.core").build("cancel", "projects/p/locations/us-central1/operations/1", nil, {})
    local headers = table.concat(req.headers, "\n")
    assert.matches("User%-Agent: vertexops/" .. escape(version) .. " libcurl/", headers)
    assert.matches("x%-goog%-api%-client: gl%-lua/%d%.%d vertexops/" .. escape(version) .. "\n", headers .. "\n")
  end)

  it("is each committed rockspec's (or the rockspec is scm)", function()
    local n = 0
    for path in H.run("ls *.rockspec"):gmatch("%S+") do
      n = n + 1
      local text = H.read(path)
      local v = text:match('\nversion%s*=%s*"([^"]+)"')
      assert.is_not_nil(v, path)
      assert.is_truthy(v:match("^scm%-%d+$") or v:match("^" .. escape(version) .. "%-%d+$"),
        path .. " has version " .. v .. ", csrc/vx.h " .. version)
      assert.is_truthy(path:find(v, 1, true), path .. " is named by its version " .. v)
    end
    assert.is_true(n >= 1, "no rockspec")
  end)

  it("is the one every document names (vertexops X.Y.Z, vertexops/X.Y.Z, vertexops-X.Y.Z, _X.Y.Z)", function()
    local docs = { "README.md", "ARCHITECTURE.md", "CONTRIBUTING.md", "CHANGELOG.md", "SECURITY.md" }
    for path in H.run("ls docs/*.md docs/*.1 2>/dev/null"):gmatch("%S+") do docs[#docs + 1] = path end
    for _, path in ipairs(docs) do
      local text = H.read(path, true)
      for named in text:gmatch("vertexops[ /_-]v?(%d+%.%d+%.%d+)") do
        assert.are.equal(version, named, path .. " names vertexops " .. named)
      end
    end
  end)

  it("is CHANGELOG.md's latest release", function()
    local text = H.read("CHANGELOG.md")
    local latest = text:match("\n## %[(%d+%.%d+%.%d+)%]")
    assert.are.equal(version, latest)
  end)
end)

describe("the release's documents", function()
  local function rockspec_license()
    return H.read("vertexops-scm-1.rockspec"):match('\n%s*license%s*=%s*"([^"]+)"')
  end

  it("LICENSE is the rockspec's license, MIT, held by the vertexops authors", function()
    local text = H.read("LICENSE")
    assert.are.equal("MIT", rockspec_license())
    assert.matches("^MIT License\n\nCopyright %(c%) %d%d%d%d the vertexops authors\n", text)
    assert.matches("THE SOFTWARE IS PROVIDED \"AS IS\"", text, 1, true)
  end)

  it("CHANGELOG.md tells, for the latest release, what to do when upgrading", function()
    local text = H.read("CHANGELOG.md")
    local latest = assert(text:match("\n(## %[%d+%.%d+%.%d+%].-)\n## ") or text:match("\n(## %[%d+%.%d+%.%d+%].*)$"))
    local upgrading = latest:match("\n### Upgrading.*$")
    assert.is_truthy(upgrading, "no ### Upgrading in the latest release")
    for _, change in ipairs { "aiplatform.us.rep.googleapis.com", "skipped", "certificate = true", "generic grammar",
                              "self_signed_jwt", "ALL_PROXY", "HTTPS_PROXY", "GOOGLE_API_USE_MTLS_ENDPOINT",
                              "VERTEXOPS_LOG", "-lhiredis", "COMMAND --help" } do
      assert.is_truthy(upgrading:find(change, 1, true), "the upgrade notes name " .. change)
    end
  end)

  it("SECURITY.md says what counts as a vulnerability and where to report it", function()
    local text = H.read("SECURITY.md")
    for _, words in ipairs { "crash", "leak", "host other than the one asked", "SECURITY-CONTACT" } do
      assert.is_truthy(text:find(words, 1, true), "SECURITY.md names " .. words)
    end
  end)
end)
