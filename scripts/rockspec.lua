-- The release rockspec, made from vertexops-scm-1.rockspec (the one list of modules and sources):
-- the same text with the version "V-1" and a source a publisher fills in.
-- usage: lua scripts/rockspec.lua V URL < vertexops-scm-1.rockspec > vertexops-V-1.rockspec
local version, url = arg[1], arg[2]
assert(version and version:match("^%d+%.%d+%.%d+$"), "usage: lua scripts/rockspec.lua X.Y.Z URL")
assert(url and not url:find('"', 1, true), "a URL without quotes")
local text = io.read("a")

local function once(pattern, replacement)
  local n
  text, n = text:gsub(pattern, function() return replacement end)
  assert(n == 1, "vertexops-scm-1.rockspec: " .. n .. " matches of " .. pattern)
end

once('\nversion = "scm%-1"\n', '\nversion = "' .. version .. '-1"\n')
local comment = url:match("^file://")
  and "  -- this copy is packed into the .src.rock (make dist); the tarball travels inside it\n"
  or "  -- TEMPLATE: the publisher replaces example.invalid with the address the tarball\n"
  .. "  -- vertexops-" .. version .. ".tar.gz of this release is published at (docs/release.md)\n"
once('\nsource = {\n  url = "git%+file://%.",\n}\n', '\nsource = {\n' .. comment
  .. '  url = "' .. url .. '",\n  dir = "vertexops-' .. version .. '",\n}\n')
io.write(text)
