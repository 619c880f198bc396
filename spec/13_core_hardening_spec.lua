-- The C core against hostile answers and bad arguments: no crash, no untagged error, nothing
-- sent that was not validated (no token kept: spec/07_credentials_tokens_spec.lua). Calls that
-- could crash run in a child interpreter, so a crash fails the spec instead of the suite.
local vertexops = require "vertexops"
local core = require "vertexops.core"
local H = require "support.helper"

local NAME = H.NAME .. "1"

describe("core hardening", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  describe("validation is ASCII whatever the locale", function()
    it("refuses byte 0xE9 in a name under an ISO-8859-1 locale", function()
      local dir = H.fake.tmpdir()
      local _, made = H.run("localedef -i fr_FR -f ISO-8859-1 " .. dir .. "/fr_FR.ISO-8859-1 >/dev/null 2>&1")
      if not made then
        os.execute("rm -rf " .. dir)
        return pending("localedef could not make an ISO-8859-1 locale (package locales)")
      end
      local out = H.run_lua([[
        assert(os.setlocale("fr_FR.ISO-8859-1", "ctype"), "no locale")
        if not rawget(_G, "jit") then assert(("\233"):match("%a"), "the locale does not class 0xE9 as a letter") end
        local core = require "vertexops.core"
        local ok, err = pcall(core.build, "get", "projects/p/locations/us-central1/operations/caf\233", nil,
          { endpoint = "https://127.0.0.1:1" })
        print(ok and "accepted" or err.tags[1] .. ": " .. err.message)
      ]], { LOCPATH = dir })
      os.execute("rm -rf " .. dir)
      assert.matches("ValueError: name contains byte 0xE9", out, 1, true)
    end)
  end)

  describe("wait seconds", function()
    local function build(secs)
      return core.build("wait", NAME, nil, { endpoint = "https://127.0.0.1:1" }, secs)
    end
    local function fails(secs)
      local ok, err = pcall(build, secs)
      assert.is_false(ok)
      assert.matches("seconds", err.message, 1, true) -- names the argument
      return err.tags[1]
    end

    it("refuse a string", function() assert.are.equal("TypeError", fails("abc")) end)
    it("refuse a table", function() assert.are.equal("TypeError", fails({})) end)
    it("refuse NaN", function() assert.are.equal("ValueError", fails(0 / 0)) end)
    it("refuse a negative number", function() assert.are.equal("ValueError", fails(-5)) end)
    it("refuse infinity", function() assert.are.equal("ValueError", fails(1 / 0)) end)
    it("refuse more than a year", function() assert.are.equal("ValueError", fails(1e300)) end)

    it("send a nanosecond as a nanosecond", function()
      assert.matches(":wait%?timeout=0%.000000001s$", build(1e-9).url)
    end)

    it("send a fraction without trailing zeros", function()
      assert.matches(":wait%?timeout=2%.5s$", build(2.5).url)
    end)

    it("send whole seconds as such", function()
      assert.matches(":wait%?timeout=30s$", build(30).url)
    end)

    it("are refused by wait_once before any I/O", function()
      local err = H.raises(vertexops.wait_once, NAME, nil, "abc", H.opts(server))
      assert.are.equal("TypeError", err.tags[1])
      assert.are.equal(0, #server:log())
    end)
  end)

  describe("endpoints", function()
    local function check(endpoint)
      local ok, err = pcall(core.check_options, { endpoint = endpoint })
      if not ok then assert.matches("^endpoint ", err.message) end -- names the option
      return ok and "ok" or err.tags[1]
    end

    it("refuse a port above 65535", function() assert.are.equal("ValueError", check("http://127.0.0.1:99999")) end)
    it("refuse a port that is not a number", function() assert.are.equal("ValueError", check("http://127.0.0.1:1x")) end)
    it("refuse port 0", function() assert.are.equal("ValueError", check("https://example.com:0")) end)
    it("refuse an IPv6 literal that is not one", function() assert.are.equal("ValueError", check("https://[zz]:443")) end)
    it("refuse plain http to 127.999.0.1", function() assert.are.equal("ValueError", check("http://127.999.0.1")) end)
    it("refuse plain http to a short form of 127.0.0.1", function() assert.are.equal("ValueError", check("http://127.1")) end)
    it("refuse a NUL byte, naming it", function()
      local ok, err = pcall(core.check_options, { endpoint = "https://a.example\0.evil" })
      assert.is_false(ok)
      assert.are.equal("ValueError", err.tags[1])
      assert.matches("endpoint contains byte 0x00 ", err.message, 1, true)
    end)
    it("accept plain http to 127.0.0.1 with a port", function() assert.are.equal("ok", check("http://127.0.0.1:8080")) end)
    it("accept plain http to localhost", function() assert.are.equal("ok", check("http://localhost/base")) end)
    it("accept plain http to [::1]", function() assert.are.equal("ok", check("http://[::1]:8080")) end)
    it("accept a region template", function()
      assert.are.equal("ok", check("https://{region}-aiplatform.googleapis.com"))
    end)

    it("with a bad port make no request and no retry", function()
      local t = H.fake_time()
      local err = H.raises(vertexops.get, NAME, nil, { endpoint = "http://127.0.0.1:99999", token = "t",
        clock = t.clock, sleep = t.sleep })
      assert.are.equal("ValueError", err.tags[1])
      assert.matches("endpoint has an invalid port", err.message, 1, true)
      assert.are.equal(0, #t.delays)
    end)
  end)

  describe("proxies", function()
    it("from the environment never carry a plain http:// request (and its token)", function()
      server:create { id = "1" }
      local dead_proxy = "http://127.0.0.1:" .. H.closed_port()
      local out = H.run_lua(([[
        local ok, res = pcall(require("vertexops").get, %q, nil, { endpoint = %q, token = "test-token", retry = false })
        print(ok and "ok" or tostring(res))
      ]]):format(NAME, server.http_endpoint), { http_proxy = dead_proxy, ALL_PROXY = dead_proxy })
      assert.matches("^ok", out)
      assert.are.equal(1, #server:log("get"))
    end)
  end)

  -- cjson decodes a JSON list to a table with keys 1..n, an object to one with string keys
  describe("error.details that is no list", function()
    local INFO = '{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"R"}'
    local function classify(body)
      local ok, err = core.classify(400, "HTTP/1.1 400 Bad\r\n", body)
      assert.is_false(ok)
      assert.are.equal("HttpError", err.tags[1])
      return err
    end

    it("an empty object or an empty list sets no details", function()
      assert.is_nil(classify('{"error":{"details":{}}}').details)
      assert.is_nil(classify('{"error":{"details":[]}}').details)
    end)

    it("an object with the keys of a list is no list", function()
      local err = classify('{"error":{"details":{"1":' .. INFO .. '}}}')
      assert.is_nil(err.details)
      assert.is_nil(err.reason)
      err = classify('{"error":{"details":[' .. INFO .. '],"details":' .. INFO .. '}}') -- the last member counts
      assert.is_nil(err.details)
      err = classify('{"error":{"details":' .. INFO .. ',"d\\u0065tails":[' .. INFO .. ']}}')
      assert.are.equal("R", err.details[1].reason)
      assert.are.equal("R", err.reason)
    end)

    it("an ErrorInfo is read only under a type URL whose last segment is google.rpc.ErrorInfo", function()
      local function reason(type_url)
        return classify(('{"error":{"details":[{"@type":%q,"reason":"R"}]}}'):format(type_url)).reason
      end
      assert.are.equal("R", reason("type.googleapis.com/google.rpc.ErrorInfo"))
      assert.are.equal("R", reason("example.test/types/google.rpc.ErrorInfo"))
      assert.is_nil(reason("type.googleapis.com/x.google.rpc.ErrorInfo"))
      assert.is_nil(reason("x/evilgoogle.rpc.ErrorInfo"))
      assert.is_nil(reason("google.rpc.ErrorInfo"))
    end)
  end)

  describe("numbers that cannot be integers", function()
    it("NaN as page_size is a TypeError", function()
      local ok, err = pcall(core.check_options, { page_size = 0 / 0 })
      assert.is_false(ok)
      assert.are.equal("TypeError", err.tags[1])
    end)

    it("1e300 as retry.max_retries is a TypeError or ValueError", function()
      local ok, err = pcall(core.check_options, { retry = { max_retries = 1e300 } })
      assert.is_false(ok)
      assert.is_truthy(err.tags[1] == "TypeError" or err.tags[1] == "ValueError")
      assert.matches("option 'retry.max_retries'", err.message, 1, true)
    end)

    it("NaN seconds make multi:wait return at once", function()
      local m = core.multi()
      local t0 = core.clock()
      m:wait(0 / 0)
      H.within(core.clock() - t0, 0, "multi:wait(NaN)")
      m:close()
    end)
  end)
end)
