-- make test: once
-- Subject-token URLs of cloud metadata services are plain http:// to link-local addresses: AWS's
-- instance metadata service at 169.254.169.254 and [fd00:ec2::254], Azure's IMDS at
-- 169.254.169.254 (docs/contract.md, Security: the endpoint rules of credential_source URLs). A
-- loopback fake alone would never show that a real AWS or Azure deployment fails, so this spec
-- gives those very addresses to a network namespace of its own (`unshare -rn`: the loopback
-- interface there holds them, port 80 forwarded to the fake by a plain nginx) and runs
-- spec/support/link_local.lua in it: credentials files naming http://169.254.169.254 and
-- http://[fd00:ec2::254] go through real sockets, with libcurl and with nginx's cosockets. The
-- fake's request log of each call is the witness. Where user and network namespaces cannot be made
-- (a locked-down CI runner), the spec says so and is pending.
local cjson = require "cjson"
local H = require "support.helper"

local SETUP = "ip link set lo up && ip addr add 169.254.169.254/32 dev lo"
  .. " && ip -6 addr add fd00:ec2::254/128 dev lo nodad"

describe("credential_source URLs at the cloud metadata services' link-local addresses", function()
  local results, why = {}, nil

  setup(function()
    local _, can = H.run("unshare -rn sh -c '" .. SETUP .. "'")
    if not can then
      why = "no network namespace here (unshare -rn, ip): the link-local addresses cannot be tested"
      return
    end
    local out, ok = H.run(("timeout -s KILL 240 unshare -rn sh -c '%s && exec %s spec/support/link_local.lua'")
      :format(SETUP, H.lua_command()))
    for line in out:gmatch("RESULT ([^\n]*)") do
      local r = cjson.decode(line)
      results[r.case] = r
    end
    assert(ok, "spec/support/link_local.lua failed:\n" .. out:sub(-3000))
  end)

  -- the result of one case (its call succeeded), or pending where namespaces are not available
  local function case(name)
    if why then
      print(why)
      pending(why)
      return nil
    end
    local r = assert(results[name], "no result for " .. name)
    assert(r.ok, name .. ": " .. tostring(r.error))
    return r
  end

  local function calls(r)
    local out = {}
    for i, e in ipairs(r.log) do out[i] = e.method .. " " .. e.call end
    return out
  end

  local AWS = { "PUT aws_token", "GET aws_metadata", "GET aws_metadata", "GET aws_metadata", "POST sts", "GET get" }

  for _, transport in ipairs { "curl", "cosocket" } do
    it(transport .. ": aws1 at http://169.254.169.254: the IMDSv2 PUT, GETs with its token, the exchange", function()
      local r = case(transport .. " aws_v4")
      if not r then return end
      assert.are.same(AWS, calls(r))
      for i = 2, 4 do assert.is_true(r.log[i].imds_token) end
    end)

    it(transport .. ": aws1 at http://[fd00:ec2::254] (IPv6-only instances)", function()
      local r = case(transport .. " aws_v6")
      if not r then return end
      assert.are.same(AWS, calls(r))
      for i = 2, 4 do assert.is_true(r.log[i].imds_token) end
    end)

    it(transport .. ": a url source at Azure's IMDS (http://169.254.169.254, its query, Metadata: True)", function()
      local r = case(transport .. " azure")
      if not r then return end
      assert.are.same({ "GET subject_token", "POST sts", "GET get" }, calls(r))
      assert.are.equal("api-version=2018-02-01&resource=api://AzureADTokenExchange", r.log[1].query)
      assert.are.equal("True", r.log[1].metadata)
    end)
  end
end)
