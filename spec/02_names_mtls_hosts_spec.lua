-- Google's mTLS hosts (docs/contract.md, "Google's hosts"): with a client certificate and no endpoint,
-- requests go to Google's mTLS names, as Google's clients do under GOOGLE_API_USE_MTLS_ENDPOINT=auto
-- (google-api-core's _get_default_mtls_endpoint: NAME.googleapis.com -> NAME.mtls.googleapis.com).
-- core.build gives the URL without sending anything.
local core = require "vertexops.core"
local H = require "support.helper"

local function url(region, opts)
  return core.build("get", "projects/p/locations/" .. region .. "/operations/1", nil, opts).url
end

describe("Google's mTLS hosts", function()
  local CERT = { client_cert = "/etc/vertexops/client.pem" } -- not read by core.build

  it("a region with a client certificate: https://{region}-aiplatform.mtls.googleapis.com", function()
    assert.are.equal("https://us-central1-aiplatform.mtls.googleapis.com/v1beta1/projects/p/locations/us-central1/"
      .. "operations/1", url("us-central1", CERT))
  end)

  it("global with a client certificate: https://aiplatform.mtls.googleapis.com", function()
    assert.matches("^https://aiplatform%.mtls%.googleapis%.com/v1beta1/", url("global", CERT))
  end)

  it("the multi-regions' representative hosts have no mTLS name: unchanged", function()
    assert.matches("^https://aiplatform%.us%.rep%.googleapis%.com/", url("us", CERT))
    assert.matches("^https://aiplatform%.eu%.rep%.googleapis%.com/", url("eu", CERT))
  end)

  it("without a client certificate: the usual hosts (mtls_endpoint \"auto\")", function()
    assert.matches("^https://us%-central1%-aiplatform%.googleapis%.com/", url("us-central1", {}))
  end)

  it("mtls_endpoint \"never\": the usual hosts even with a client certificate", function()
    assert.matches("^https://us%-central1%-aiplatform%.googleapis%.com/",
      url("us-central1", { client_cert = "/c.pem", mtls_endpoint = "never" }))
  end)

  it("mtls_endpoint \"always\": the mTLS hosts even without a client certificate", function()
    assert.matches("^https://aiplatform%.mtls%.googleapis%.com/", url("global", { mtls_endpoint = "always" }))
  end)

  it("an endpoint wins: no mTLS name is made from it", function()
    assert.matches("^https://vertex%.internal%.example/",
      url("us-central1", { client_cert = "/c.pem", endpoint = "https://vertex.internal.example" }))
  end)

  it("another universe has no mTLS hosts: a ValueError saying how to go on", function()
    local err = H.value_error("universe googleapis.com only", url, "us-central1",
      { client_cert = "/c.pem", universe_domain = "example.test" })
    assert.matches("mtls_endpoint = \"never\"", err.message, 1, true)
    assert.matches("^https://us%-central1%-aiplatform%.example%.test/",
      url("us-central1", { client_cert = "/c.pem", universe_domain = "example.test", mtls_endpoint = "never" }))
  end)

  it("mtls_endpoint takes \"auto\", \"never\" or \"always\"", function()
    H.value_error("mtls_endpoint", url, "global", { mtls_endpoint = "true" })
  end)

  it("GOOGLE_API_USE_MTLS_ENDPOINT gives its default; a bad value is a ValueError naming the option", function()
    local code = [[
      local options = require "vertexops.options"
      local ok, res = pcall(function()
        local o = options.apply_env(options.copy { token = "t" })
        return require("vertexops.core").build("get", "projects/p/locations/global/operations/1", nil, o).url
      end)
      print(tostring(res)) -- a URL, or the error (Lua 5.1 prints no error object of its own)
    ]]
    local out = H.run_lua(code, { GOOGLE_API_USE_MTLS_ENDPOINT = "always", VERTEXOPS_ENDPOINT = "" })
    assert.matches("^https://aiplatform%.mtls%.googleapis%.com/", out)
    out = H.run_lua(code, { GOOGLE_API_USE_MTLS_ENDPOINT = "sometimes", VERTEXOPS_ENDPOINT = "" })
    assert.matches("ValueError: option 'mtls_endpoint' must be", out, 1, true)
  end)
end)
