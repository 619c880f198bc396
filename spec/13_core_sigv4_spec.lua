-- AWS Signature Version 4 in C (csrc/sigv4.c, core.sigv4): the canonical request, the string to
-- sign and the signature of AWS's published aws-sig-v4-test-suite examples (credentials
-- AKIDEXAMPLE, region us-east-1, service "service", 20150830T123600Z), and the signatures
-- google-auth-library-python's RequestSigner gives GetCallerIdentity for a fixed time.
local core = require "vertexops.core"
local H = require "support.helper"

local SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
local EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

-- a request of the AWS suite: host example.amazonaws.com at 20150830T123600Z, plus fields in t
local function suite(t)
  local r = { method = "GET", path = "/", region = "us-east-1", service = "service", access_key = "AKIDEXAMPLE",
    secret_key = SECRET, date = "20150830T123600Z",
    headers = { Host = "example.amazonaws.com", ["X-Amz-Date"] = "20150830T123600Z" } }
  for k, v in pairs(t or {}) do r[k] = v end
  return r
end

describe("core.sigv4 against AWS's test suite", function()
  it("get-vanilla: the canonical request, the string to sign and the Authorization header", function()
    local r = core.sigv4(suite())
    assert.are.equal(table.concat({ "GET", "/", "", "host:example.amazonaws.com", "x-amz-date:20150830T123600Z", "",
      "host;x-amz-date", EMPTY_SHA256 }, "\n"), r.canonical_request)
    assert.are.equal("AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
      .. "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63", r.string_to_sign)
    assert.are.equal("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
      .. "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
      r.authorization)
    assert.are.equal("host;x-amz-date", r.signed_headers)
  end)

  it("get-vanilla-query-order-key-case: the query's pairs are sorted", function()
    local r = core.sigv4(suite { query = "Param2=value2&Param1=value1" })
    assert.are.equal("Param1=value1&Param2=value2", r.canonical_request:match("^GET\n/\n([^\n]*)\n"))
    assert.are.equal("b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500", r.signature)
  end)

  it("post-vanilla: the method is signed, an absent payload hashes as the empty string", function()
    assert.are.equal("5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
      core.sigv4(suite { method = "POST" }).signature)
  end)

  it("get-utf8: the path is signed as given (already URI-encoded)", function()
    assert.are.equal("8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
      core.sigv4(suite { path = "/%E1%88%B4" }).signature)
  end)

  it("header values are trimmed and their inner runs of spaces made one; names lowercased and sorted", function()
    local r = core.sigv4(suite { headers = { Host = "example.amazonaws.com", ["X-Amz-Date"] = "20150830T123600Z",
      ["My-Header1"] = "  value1 ", ["my-header2"] = "\"a   b   c\"" } })
    assert.truthy(r.canonical_request:find("host:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\n"
      .. "x-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\n", 1, true), r.canonical_request)
  end)
end)

describe("core.sigv4 against google-auth's RequestSigner", function()
  -- google.auth.aws.RequestSigner("us-east-2").get_request_options(creds, URL, "POST") with
  -- _helpers.utcnow fixed at 2026-12-06T05:30:00Z (google-auth-library-python 2.x)
  local function gci(extra)
    local r = { method = "POST", path = "/", query = "Action=GetCallerIdentity&Version=2011-06-15", region = "us-east-2",
      service = "sts", access_key = "AKIAIOSFODNN7EXAMPLE", secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
      date = "20261206T053000Z", headers = { host = "sts.us-east-2.amazonaws.com", ["x-amz-date"] = "20261206T053000Z" } }
    for k, v in pairs(extra or {}) do r.headers[k] = v end
    return core.sigv4(r)
  end

  it("GetCallerIdentity with long-term keys", function()
    assert.are.equal("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261206/us-east-2/sts/aws4_request, "
      .. "SignedHeaders=host;x-amz-date, Signature=834bcfdb3cd07b860ccf25be481e0e91f87d97baccaefe02e87b4a5198415f98",
      gci().authorization)
  end)

  it("GetCallerIdentity with a session token (x-amz-security-token signed)", function()
    assert.are.equal("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261206/us-east-2/sts/aws4_request, "
      .. "SignedHeaders=host;x-amz-date;x-amz-security-token, "
      .. "Signature=60ae5019c7b704d8a784c0dff577765340994e43f5113c8bd72c5dc9863600b9",
      gci { ["x-amz-security-token"] = "IQoJb3JpZ2luX2VjEXAMPLETOKEN" }.authorization)
  end)
end)

describe("core.sigv4's arguments", function()
  it("a date not of the form YYYYMMDDTHHMMSSZ is a ValueError naming 'date'", function()
    H.value_error("'date'", core.sigv4, suite { date = "2015-08-30T12:36:00Z" })
  end)

  it("a missing secret_key is a TypeError naming it", function()
    local err = H.raises(core.sigv4, suite { secret_key = false })
    assert.are.equal("TypeError", H.tags(err))
    assert.truthy(err.message:find("secret_key", 1, true))
  end)

  it("a header given twice (names differing in case) is a ValueError", function()
    H.value_error("given twice", core.sigv4, suite { headers = { Host = "a", host = "b", ["x-amz-date"] = "x" } })
  end)

  it("a header value with a line break is a ValueError, and no message holds the secret key", function()
    local err = H.value_error("line break", core.sigv4, suite { headers = { host = "a\r\nx: y" } })
    assert.is_nil(err.message:find(SECRET, 1, true))
    err = H.value_error("secret_key", core.sigv4, suite { secret_key = SECRET:rep(20) })
    assert.is_nil(err.message:find("wJalrXUtnFEMI", 1, true))
  end)
end)
