-- vertexops' credential requests next to google-auth-library's (make fidelity's credentials part,
-- without node): for every credential type vertexops supports, a fresh client reads the same file
-- against the fake (spec/support/auth_fidelity.lua) and the requests the fake logged must have the
-- shape google-auth-library sent in the same case -- method, path, content type, form and JSON
-- fields, JWT header and claims, the headers that matter -- recorded in
-- spec/data/google_auth_requests.json (derived data: `make fidelity-record` regenerates it with
-- node). A field may differ only where auth_fidelity.EXPLAINED says why it does not matter.
local cjson = require "cjson"
local F = require "support.auth_fidelity"
local H = require "support.helper"

local recorded = cjson.decode((assert(H.read("spec/data/google_auth_requests.json"))))

describe("credential requests, field by field against google-auth-library " .. recorded.google_auth_library, function()
  local fake = H.fake_server()
  local server, dir, paths

  setup(function()
    server = fake.server
    dir = H.fake.tmpdir()
    paths = F.write_files(server, dir)
  end)
  teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

  it("has google-auth's requests recorded for every case", function()
    for _, c in ipairs(F.CASES) do assert.is_table(recorded.cases[c.key], c.key) end
  end)

  for _, c in ipairs(F.CASES) do
    it(c[1] .. ": the same requests as google-auth-library, but for the differences explained", function()
      local rows = F.compare(c.key, recorded.cases[c.key], F.vertexops(server, dir, paths, c))
      local unexplained = {}
      for _, r in ipairs(rows) do
        if r[4] == "DIFFERS" and not r[5] then
          unexplained[#unexplained + 1] = ("%s: google-auth %s, vertexops %s"):format(r[1], tostring(r[2]), tostring(r[3]))
        end
      end
      assert.are.same({}, unexplained)
      assert.is_true(#rows > 5, "compared " .. #rows .. " fields")
    end)
  end
end)
