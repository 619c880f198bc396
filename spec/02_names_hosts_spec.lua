-- Google's host of each kind of location (docs/contract.md, "Google's hosts"): global, the
-- multi-regions us and eu (representative endpoints), regions; the universe_domain option and
-- GOOGLE_CLOUD_UNIVERSE_DOMAIN; and the endpoint option, which overrides them all.
local vertexops = require "vertexops"
local core = require "vertexops.core"
local H = require "support.helper"

local function url(location, opts, call)
  return core.build(call or "get", "projects/p/locations/" .. location .. "/operations/7", nil, opts).url
end

describe("Google's hosts", function()
  it("sends global to https://aiplatform.googleapis.com", function()
    assert.are.equal("https://aiplatform.googleapis.com/v1beta1/projects/p/locations/global/operations/7",
      url("global"))
  end)

  it("sends the multi-region us to its representative endpoint aiplatform.us.rep.googleapis.com", function()
    assert.are.equal("https://aiplatform.us.rep.googleapis.com/v1beta1/projects/p/locations/us/operations/7",
      url("us"))
  end)

  it("sends the multi-region eu to its representative endpoint aiplatform.eu.rep.googleapis.com", function()
    assert.are.equal("https://aiplatform.eu.rep.googleapis.com/v1/projects/p/locations/eu/operations/7:cancel",
      url("eu", { api_version = "v1" }, "cancel"))
  end)

  it("sends a region to https://{region}-aiplatform.googleapis.com", function()
    assert.are.equal("https://europe-west4-aiplatform.googleapis.com/v1beta1/projects/p/locations/europe-west4/"
      .. "operations/7", url("europe-west4"))
    -- a region that merely starts like a multi-region is a region
    assert.are.equal("https://us-east5-aiplatform.googleapis.com/v1beta1/projects/p/locations/us-east5/"
      .. "operations/7", url("us-east5"))
  end)

  it("sends a list of a multi-region parent to its representative endpoint", function()
    local req = core.build("list", "projects/p/locations/eu", nil, { page_size = 5 })
    assert.are.equal("https://aiplatform.eu.rep.googleapis.com/v1beta1/projects/p/locations/eu/operations?pageSize=5",
      req.url)
  end)
end)

describe("universe_domain", function()
  local ud = { universe_domain = "example-cloud.test" }

  it("moves every kind of host into that universe", function()
    local prefix = "/v1beta1/projects/p/locations/"
    assert.are.equal("https://aiplatform.example-cloud.test" .. prefix .. "global/operations/7", url("global", ud))
    assert.are.equal("https://aiplatform.us.rep.example-cloud.test" .. prefix .. "us/operations/7", url("us", ud))
    assert.are.equal("https://aiplatform.eu.rep.example-cloud.test" .. prefix .. "eu/operations/7", url("eu", ud))
    assert.are.equal("https://asia-east1-aiplatform.example-cloud.test" .. prefix .. "asia-east1/operations/7",
      url("asia-east1", ud))
  end)

  it("defaults to googleapis.com, which the schema names", function()
    assert.are.equal("googleapis.com", require("vertexops.options").DEFAULTS.universe_domain)
    assert.are.equal(url("us-central1"), url("us-central1", { universe_domain = "googleapis.com" }))
  end)

  it("comes from GOOGLE_CLOUD_UNIVERSE_DOMAIN when no option names it", function()
    local out, ok = H.run_lua([[
      local core = require "vertexops.core"
      local options = require "vertexops.options"
      local name = "projects/p/locations/us-central1/operations/7"
      print(core.build("get", name, nil, options.apply_env({})).url)
      print(core.build("get", name, nil, options.apply_env({ universe_domain = "googleapis.com" })).url)
    ]], { GOOGLE_CLOUD_UNIVERSE_DOMAIN = "example-cloud.test" })
    assert.is_true(ok, out)
    assert.are.equal("https://us-central1-aiplatform.example-cloud.test/v1beta1/projects/p/locations/us-central1/"
      .. "operations/7\nhttps://us-central1-aiplatform.googleapis.com/v1beta1/projects/p/locations/us-central1/"
      .. "operations/7\n", out)
  end)

  it("refuses a GOOGLE_CLOUD_UNIVERSE_DOMAIN that is no domain name, naming the option", function()
    local out, ok = H.run_lua([[
      local ok, err = pcall(require("vertexops.options").apply_env, {})
      print(ok, err)
    ]], { GOOGLE_CLOUD_UNIVERSE_DOMAIN = "not a domain" })
    assert.is_true(ok, out)
    assert.is_truthy(out:find("false\tValueError: option 'universe_domain' must be a domain name", 1, true), out)
  end)

  it("refuses what is no domain name with a ValueError naming it, a non-string with a TypeError", function()
    for _, bad in ipairs { "", "com", "a..b", ".a.b", "a.b.", "-a.com", "a-.com", "a b.com", "a_b.com",
                           "a/b.com", "a.com:443", "a.com/x", "{region}.com", "é.com", ("a"):rep(64) .. ".com",
                           ("abc."):rep(64) .. "com" } do
      local err = H.raises(core.build, "get", "projects/p/locations/us/operations/7", nil, { universe_domain = bad })
      assert.are.equal("ValueError", err.tags[1], bad)
      assert.is_truthy(err.message:find("option 'universe_domain'", 1, true), err.message)
    end
    local err = H.raises(core.check_options, { universe_domain = 7 })
    assert.are.equal("TypeError: option 'universe_domain' must be a string, got number", tostring(err))
    for _, good in ipairs { "googleapis.com", "s3nsapis.fr", "example-cloud.test", "a.b.c.d", "x1.y2" } do
      assert.is_nil(core.check_options { universe_domain = good }, good)
    end
  end)
end)

describe("the endpoint option", function()
  local fake = H.fake_server()

  it("overrides the host of every kind of location and universe", function()
    local o = { endpoint = "https://{region}-aiplatform-myendpoint.p.googleapis.com", universe_domain = "example.test" }
    for loc, host in pairs { global = "global", us = "us", eu = "eu", ["us-central1"] = "us-central1" } do
      assert.are.equal("https://" .. host .. "-aiplatform-myendpoint.p.googleapis.com/v1beta1/projects/p/locations/"
        .. loc .. "/operations/7", url(loc, o))
    end
    assert.are.equal("https://10.1.2.3:8443/vertex/v1beta1/projects/p/locations/us/operations/7",
      url("us", { endpoint = "https://10.1.2.3:8443/vertex" }))
  end)

  it("reaches a server at the endpoint, with the location in its path, for a multi-region's operation", function()
    local server = fake.server
    local op = server:create { location = "us" }
    local got = vertexops.get(op.name, nil, H.opts(server, { endpoint = server.endpoint .. "/{region}",
                                                             universe_domain = "example.test" }))
    assert.are.equal(op.name, got.name)
    local log = server:log()
    assert.are.equal(1, #log)
    assert.are.equal("/us/v1beta1/projects/test-project/locations/us/operations/" .. op.name:match("(%d+)$"), log[1].path)
    assert.are.equal(server.endpoint:match("^https://(.*)$"), log[1].headers.host)
  end)
end)
