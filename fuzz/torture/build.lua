-- core.build for every call (options, list filter/page token/size, wait seconds), core.check_options,
-- core.check_url, core.h1_request; and the refusals, each a tagged error object.
local core = require "vertexops.core"
local NAME = "projects/p/locations/us-central1/operations/123"
local PARENT = "projects/p/locations/us-central1"
-- a refusal must be a tagged error object; a memory error goes on as it came
local function refused(tag, f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok)
  if core.is(err, tag) then return end
  error(err, 0)
end
return {
  setup = function() return {} end,
  run = function()
    for _, call in ipairs { "cancel", "get", "delete" } do
      core.build(call, NAME, nil, { endpoint = "http://127.0.0.1:1" })
    end
    core.build("list", PARENT, nil, { filter = "done=false AND x=\"a b\"", page_token = "t/+=", page_size = 50 })
    core.build("wait", NAME, "us-central1", { endpoint = "https://example.com:8443/base" }, 12.5)
    core.check_options({ timeout = 3, retry = { max_retries = 2 }, ca_file = "/x" })
    core.check_url("https://127.0.0.1:8443/x")
    local req = core.build("get", NAME, nil, { endpoint = "http://127.0.0.1:1" })
    req.token = "tok"
    core.h1_request(req)
    refused("ValueError", core.build, "get", "projects/p/locations/us-central1/operations/a\r\nb")
    refused("ValueError", core.build, "get", NAME, nil, { bogus = 1 })
    refused("TypeError", core.build, "get", 42)
  end,
  check = function()
    local r = core.build("list", PARENT, nil, { page_size = 5 })
    assert(r.url:find("pageSize=5"), r.url)
    local ok, err = pcall(core.build, "get", NAME, nil, { bogus = 1 })
    assert(not ok and core.is(err, "ValueError"))
  end,
}
