-- Options proxy and no_proxy (docs/contract.md, "Options"): the proxy URL's grammar and the one no_proxy
-- decision both transports use (lua/vertexops/proxy.lua). The traffic itself: spec/09_hosts_proxy_spec.lua
-- (libcurl) and spec/09_hosts_proxy_nginx_spec.lua (cosockets).
local H = require "support.helper"
local proxy = require "vertexops.proxy"
local vertexops = require "vertexops"

describe("option proxy", function()
  it("reads http://user:password@host:port, the credentials percent-decoded", function()
    local p = proxy.parse("http://al%40ice:p%3Aw@Proxy.Example:3128", "option 'proxy'")
    assert.are.same({ "proxy.example", 3128, "al@ice", "p:w", "proxy.example:3128", "http://proxy.example:3128" },
      { p.host, p.port, p.user, p.password, p.authority, p.shown })
  end)

  it("takes no scheme as http:// and no port as 80; a trailing / is allowed", function()
    local p = proxy.parse("proxy.example", "option 'proxy'")
    assert.are.same({ "proxy.example", 80 }, { p.host, p.port })
    assert.are.equal(8080, proxy.parse("http://10.0.0.1:8080/", "x").port)
    assert.are.equal("[::1]:3128", proxy.parse("http://[::1]:3128", "x").authority)
  end)

  it("refuses an https:// proxy: only CONNECT through an http:// one", function()
    local err = H.value_error("option 'proxy'", vertexops.client, { proxy = "https://proxy.example:443" })
    assert.matches("https:// proxies are not supported", err.message, 1, true)
  end)

  it("refuses socks and other schemes, paths, queries and bad ports", function()
    for _, bad in ipairs { "socks5://proxy.example:1080", "http://proxy.example:3128/path", "http://proxy.example:3128?a",
      "http://proxy.example:0", "http://proxy.example:65536", "http://proxy.example:", "http://:3128", "http://a b:1" } do
      H.value_error("option 'proxy'", vertexops.client, { proxy = bad })
    end
  end)

  it("never shows its credentials in a ValueError", function()
    local err = H.value_error("option 'proxy'", vertexops.client, { proxy = "https://alice:hunter2@proxy.example:1" })
    assert.is_nil(tostring(err):find("hunter2", 1, true))
    assert.is_nil(tostring(err):find("alice", 1, true))
  end)

  it("is a string (TypeError otherwise) of printable ASCII", function()
    assert.are.equal("TypeError", H.tags(H.raises(vertexops.client, { proxy = 3128 })))
    H.value_error("option 'proxy'", vertexops.client, { proxy = "http://proxy.example:1\r\nX: y" })
  end)

  it("\"\" is no proxy, whatever the environment says", function()
    assert.is_nil(proxy.for_target({ proxy = "" }, "https", "example.com", 443))
  end)

  it("applies to https:// targets only", function()
    assert.is_nil(proxy.for_target({ proxy = "http://p:1" }, "http", "127.0.0.1", 80))
    assert.are.equal("p:1", proxy.for_target({ proxy = "http://p:1" }, "https", "example.com", 443).authority)
  end)
end)

describe("option no_proxy", function()
  local function bypass(host, list, port) return proxy.bypass(host, port or 443, list) end

  it("'*' names every host", function()
    assert.is_true(bypass("us-central1-aiplatform.googleapis.com", "*"))
    assert.is_true(bypass("example.com", " a.test , * "))
  end)

  it("an exact host, in any case, with spaces around entries", function()
    assert.is_true(bypass("localhost", "example.com, LocalHost"))
    assert.is_false(bypass("localhost2", "localhost"))
  end)

  it("'.suffix' names the subdomains only", function()
    assert.is_true(bypass("a.googleapis.com", ".googleapis.com"))
    assert.is_true(bypass("x.y.googleapis.com", ".googleapis.com"))
    assert.is_false(bypass("googleapis.com", ".googleapis.com"))
    assert.is_false(bypass("notgoogleapis.com", ".googleapis.com"))
  end)

  it("a bare name names the host and its subdomains (as curl, Go and Python read it), not other hosts ending so", function()
    assert.is_true(bypass("googleapis.com", "googleapis.com"))
    assert.is_true(bypass("us-central1-aiplatform.googleapis.com", "googleapis.com"))
    assert.is_false(bypass("evilgoogleapis.com", "googleapis.com"))
  end)

  it("addresses exactly (IPv6 with or without brackets), no ranges", function()
    assert.is_true(bypass("127.0.0.1", "127.0.0.1"))
    assert.is_false(bypass("127.0.0.2", "127.0.0.1"))
    assert.is_false(bypass("127.0.0.1", "127.0.0.0/8"))
    assert.is_true(bypass("[::1]", "::1"))
    assert.is_true(bypass("[::1]", "[::1]"))
  end)

  it("host:port names that port only", function()
    assert.is_true(bypass("example.com", "example.com:8443", 8443))
    assert.is_false(bypass("example.com", "example.com:8443", 443))
    assert.is_true(bypass("[::1]", "[::1]:8443", 8443))
  end)

  it("empty entries and an empty list name nothing", function()
    assert.is_false(bypass("example.com", ""))
    assert.is_false(bypass("example.com", " , ,"))
    assert.is_false(bypass("example.com", nil))
  end)

  it("is the decision of for_target: a named host gets no proxy", function()
    assert.is_nil(proxy.for_target({ proxy = "http://p:1", no_proxy = ".googleapis.com" }, "https",
      "us-central1-aiplatform.googleapis.com", 443))
  end)
end)
