-- core.build and core.build_many made cheaper, not different (issue 20 §3): for every call, option
-- set, region and name of the matrix below they give the request tables (every field, every header
-- line in order) and the errors (tags and message) that core.build gave before the work, at bb115d7.
-- What bb115d7 gave is recorded in spec/data/build_requests.json as one digest per call, option set
-- and region (over the names in order; the libcurl, Lua and vertexops versions in the header lines
-- replaced by '*', so one recording serves every interpreter and machine). A few requests are
-- written out by hand below too, and core.build_many is compared with core.build name by name.
--
-- To record again (only when a request is meant to change: say so in the commit), from the root of
-- a built checkout of the commit to record:
--   VERTEXOPS_RECORD_BUILD=spec/data/build_requests.json LUA_PATH="./lua/?.lua;./lua/?/init.lua;./spec/?.lua;;" \
--     LUA_CPATH="./build/5.4/?.so;;" busted --lua=lua5.4 spec/13_core_build_same_spec.lua
local core = require "vertexops.core"
local H = require "support.helper"

local FIXTURE = "spec/data/build_requests.json"
local RECORD = os.getenv("VERTEXOPS_RECORD_BUILD")

local LOC = "projects/p/locations/us-central1"

local CALLS = { "cancel", "get", "delete", "wait", "list" }

local LONG_ENDPOINT = "https://{region}-vertex.example.com/" .. string.rep("segment/", 400) .. "end"

-- { label, options }: the label names the set in the recording (nil options: none given)
local OPTION_SETS = {
  { "none", nil },
  { "empty", {} },
  { "endpoint-v1-project", { endpoint = "https://127.0.0.1:9", user_project = "q", api_version = "v1" } },
  { "endpoint-template-path", { endpoint = "https://{region}-vertex.example.com/base/" } },
  { "endpoint-loopback-http", { endpoint = "http://localhost:8080", token = "t", max_in_flight = 100,
    page_size = 1000, filter = "done=false", page_token = "tok en/1", wait = false } },
  { "endpoint-ipv6", { endpoint = "https://[::1]:8443" } },
  { "endpoint-long", { endpoint = LONG_ENDPOINT } },
  { "universe", { universe_domain = "s3nsapis.fr" } },
  { "mtls-always", { mtls_endpoint = "always" } },
  { "mtls-auto-cert", { client_cert = "/nonexistent/cert.pem" } },
  { "mtls-never-cert", { client_cert = "/nonexistent/cert.pem", mtls_endpoint = "never" } },
  { "mtls-universe", { mtls_endpoint = "always", universe_domain = "s3nsapis.fr" } },
  { "api-key", { api_key = "k-123_ABC" } },
  { "v1", { api_version = "v1" } },
  { "v1beta1-project-empty", { api_version = "v1beta1", user_project = "" } },
  { "project-key-v1", { user_project = "quota-project", api_key = "key", api_version = "v1", page_size = 7 } },
  { "endpoint-slashes", { endpoint = "https://127.0.0.1:9///" } },
  { "endpoint-region-twice", { endpoint = "https://{region}-x.example.com/{region}/v/" } },
  { "endpoint-other-brace", { endpoint = "https://{zone}.example.com" } },
  { "endpoint-no-scheme", { endpoint = "ftp://example.com" } },
  { "endpoint-port", { endpoint = "https://example.com:99999" } },
  { "endpoint-plain-http", { endpoint = "http://example.com" } },
  { "endpoint-query", { endpoint = "https://example.com/?a=1" } },
  { "bad-option", { timeout = "soon" } },
  { "unknown-option", { colour = "blue" } },
}

local REGIONS = { { "nil", nil }, { "us-central1", "us-central1" }, { "bad", "US" } }

local NAMES = {
  LOC .. "/operations/1",
  LOC .. "/customJobs/7/operations/2",
  "projects/p/locations/europe-west4/operations/3",
  LOC .. "/operations/4",
  "projects/p/locations/us/operations/5",
  "projects/p/locations/global/operations/6",
  "projects/p/locations/eu/datasets/1/operations/7",
  "reasoningEngines/r/sessions/s/operations/8",
  LOC .. "/tuningJobs/9/operations/10",
  LOC .. "/featureGroups/g/operations/11",
  LOC .. "/featureGroups/g/features/f/operations/12",
  LOC .. "/ragEngineConfig/operations/13",
  LOC .. "/someNewThing/x/operations/14",
  "projects/p/locations/US/operations/15",
  "projects/p/locations/us-central1-/operations/16",
  LOC .. "/customJobs/7",
  LOC .. "/batchPredictionJobs/8",
  LOC .. "/publishers/google/models/veo-2/operations/17",
  LOC .. "/publishers/google/models/veo-2",
  LOC,
  LOC .. "/customJobs/7/operations",
  "a/operations/18",
  "operations/19",
  "locations/x/operations/20",
  "projects/p/operations/21",
  "projects/p/locations/us-central1/operations/a.b_c-d~e",
  LOC .. "/operations/a%2Fb",
  LOC .. "/operations/a b",
  LOC .. "/operations/a:b",
  LOC .. "/operations/a\r\nb",
  LOC .. "/operations/\195\164",
  "projects/p//operations/22",
  LOC .. "/operations/.",
  LOC .. "/operations/..",
  "/" .. LOC .. "/operations/23",
  LOC .. "/operations/24/",
  LOC .. "/operations/" .. string.rep("x", 1024),
  "",
  "not a name",
  42,
  LOC .. "/operations/1", -- again, after others: what a build keeps from name to name must not show
  "projects/other/locations/europe-west4/operations/25",
}

-- A value as text: tables with their keys sorted, strings quoted; an error as its fields.
local function text(v)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) ~= "table" then return tostring(v) end
  local keys, parts = {}, {}
  for k in next, v do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. "=" .. text(rawget(v, k)) end
  return (getmetatable(v) ~= nil and "error{" or "{") .. table.concat(parts, ",") .. "}"
end

-- The versions in the header lines are the build's, not the request's make.
local function plain(s)
  return (s:gsub("libcurl/[%w%.%-]+", "libcurl/*"):gsub("gl%-lua/%d%.%d", "gl-lua/*")
    :gsub("vertexops/" .. core.version:gsub("%p", "%%%0"), "vertexops/*"))
end

local function digest(s)
  local h1, h2 = 0, 0
  for i = 1, #s, 1024 do
    local bytes = { s:byte(i, math.min(#s, i + 1023)) }
    for j = 1, #bytes do
      h1 = (h1 * 257 + bytes[j]) % 2147483629
      h2 = (h2 * 263 + bytes[j]) % 2147483587
    end
  end
  return string.format("%08x%08x", h1, h2)
end

-- What core.build gives: the request, or the error it raises.
local function one(call, name, region, opts, seconds)
  local ok, r = pcall(core.build, call, name, region, opts, seconds)
  return text(r), ok
end

-- Every group of the matrix: key, then a function giving the texts of its names in order.
local function groups()
  local list = {}
  for _, call in ipairs(CALLS) do
    for _, set in ipairs(OPTION_SETS) do
      for _, reg in ipairs(REGIONS) do
        list[#list + 1] = { key = call .. "|" .. set[1] .. "|" .. reg[1], call = call, opts = set[2], region = reg[2] }
      end
    end
  end
  local seconds = { { "0", 0 }, { "5", 5 }, { "0.25", 0.25 }, { "1e-9", 1e-9 }, { "a year", 31536000 },
    { "1.5e-10", 1.5e-10 }, { "-1", -1 }, { "NaN", 0 / 0 }, { "string 5", "5" }, { "1e300", 1e300 } }
  for _, s in ipairs(seconds) do
    for _, set in ipairs { OPTION_SETS[1], OPTION_SETS[3] } do
      list[#list + 1] = { key = "wait " .. s[1] .. "|" .. set[1] .. "|nil", call = "wait", opts = set[2], seconds = s[2] }
    end
  end
  return list
end

local function texts(g)
  local t = {}
  for i, name in ipairs(NAMES) do t[i] = plain((one(g.call, name, g.region, g.opts, g.seconds))) end
  return t
end

local function read_fixture()
  local recorded = {}
  for key, hash in assert(H.read(FIXTURE)):gmatch('"([^"\n]+)": "(%x+)"') do recorded[key] = hash end
  return recorded
end

describe("core.build after issue 20 §3", function()
  it("gives what bb115d7's core.build gave for every call, option set, region and name", function()
    if RECORD then
      local lines = {}
      for _, g in ipairs(groups()) do
        lines[#lines + 1] = string.format('  "%s": "%s"', g.key, digest(table.concat(texts(g), "\n")))
      end
      local f = assert(io.open(RECORD, "w"))
      f:write("{\n", table.concat(lines, ",\n"), "\n}\n")
      f:close()
      return
    end
    local recorded, wrong, n = read_fixture(), {}, 0
    for _, g in ipairs(groups()) do
      n = n + 1
      local t = texts(g)
      if recorded[g.key] ~= digest(table.concat(t, "\n")) then
        wrong[#wrong + 1] = g.key .. (recorded[g.key] and "" or " (not recorded)")
        if #wrong == 1 then print("\n" .. g.key .. " now gives:\n" .. table.concat(t, "\n")) end
      end
    end
    assert.are.same({}, wrong)
    local count = 0
    for _ in pairs(recorded) do count = count + 1 end
    assert.are.equal(n, count)
  end)
end)

describe("core.build_many after issue 20 §3", function()
  -- every name twice, so a build that keeps something from name to name (a region's base URL, the
  -- last shape) meets a name after every other kind
  local names = {}
  for i = 1, #NAMES do names[i], names[#NAMES + i] = NAMES[i], NAMES[i] end

  it("gives for each name what core.build gives, for every call, option set and region", function()
    for _, call in ipairs(CALLS) do
      for _, set in ipairs(OPTION_SETS) do
        for _, reg in ipairs(REGIONS) do
          local ok, many = pcall(core.build_many, call, names, reg[2], set[2])
          local what = call .. "|" .. set[1] .. "|" .. reg[1]
          if ok then
            assert.are.equal(#names, #many, what)
            for i = 1, #names do
              assert.are.equal(one(call, names[i], reg[2], set[2]), text(many[i]), what .. " " .. tostring(names[i]))
            end
          else -- a bad option: raised once, as core.build raises it for the first name
            local first, built = one(call, names[1], reg[2], set[2])
            assert.is_false(built, what)
            assert.are.equal(first, text(many), what)
          end
        end
      end
    end
  end)

  it("builds a page of names under one location and their mix with others and with jobs alike", function()
    local page = {}
    for i = 1, 300 do
      page[i] = i % 7 == 0 and ("projects/p/locations/europe-west4/operations/" .. i)
        or i % 11 == 0 and (LOC .. "/customJobs/" .. i) or (LOC .. "/operations/" .. i)
    end
    for _, call in ipairs { "cancel", "get" } do
      for _, set in ipairs(OPTION_SETS) do
        local ok, many = pcall(core.build_many, call, page, nil, set[2])
        if ok then
          for i = 1, #page do assert.are.equal(one(call, page[i], nil, set[2]), text(many[i]), set[1] .. " " .. i) end
        end
      end
    end
  end)
end)

describe("core.build's requests, written out", function()
  local UA = "User-Agent: vertexops/" .. core.version .. " libcurl/" .. core.curl_version
  local CLIENT = "x-goog-api-client: gl-lua/" .. _VERSION:match("%d%.%d") .. " vertexops/" .. core.version

  it("a cancel in a region on Google's host", function()
    assert.are.same({
      call = "cancel", method = "POST", region = "us-central1", body = "",
      url = "https://us-central1-aiplatform.googleapis.com/v1beta1/" .. LOC .. "/operations/1:cancel",
      headers = { "Accept: application/json", "Content-Type: application/json", UA, CLIENT,
        "x-goog-request-params: name=projects%2Fp%2Flocations%2Fus-central1%2Foperations%2F1" },
    }, core.build_many("cancel", { LOC .. "/operations/1" }, nil, nil)[1])
  end)

  it("a get without a location through an endpoint, v1, with a quota project", function()
    local name = "reasoningEngines/r/sessions/s/operations/8"
    local expected = {
      call = "get", method = "GET", region = "global",
      url = "https://127.0.0.1:9/v1/" .. name,
      headers = { "Accept: application/json", UA, CLIENT,
        "x-goog-request-params: name=reasoningEngines%2Fr%2Fsessions%2Fs%2Foperations%2F8",
        "x-goog-user-project: q" },
    }
    local opts = { endpoint = "https://127.0.0.1:9/", user_project = "q", api_version = "v1" }
    assert.are.same(expected, core.build("get", name, nil, opts))
    assert.are.same(expected, core.build_many("get", { name }, nil, opts)[1])
  end)

  it("cancels in a multi-region and a region with an API key, one after the other", function()
    local many = core.build_many("cancel", { "projects/p/locations/us/operations/5", LOC .. "/operations/9" }, nil,
      { api_key = "key" })
    assert.are.equal("https://aiplatform.us.rep.googleapis.com/v1beta1/projects/p/locations/us/operations/5:cancel",
      many[1].url)
    assert.are.equal("us", many[1].region)
    assert.are.equal("https://us-central1-aiplatform.googleapis.com/v1beta1/" .. LOC .. "/operations/9:cancel",
      many[2].url)
    assert.are.equal("x-goog-api-key: key", many[2].headers[6])
    assert.are.equal(6, #many[2].headers)
  end)

  it("a wait with a timeout in seconds", function()
    local r = core.build("wait", LOC .. "/operations/1", "us-central1", nil, 0.25)
    assert.are.equal("https://us-central1-aiplatform.googleapis.com/v1beta1/" .. LOC .. "/operations/1:wait?timeout=0.25s",
      r.url)
    assert.are.equal("", r.body)
    assert.are.equal("POST", r.method)
  end)

  it("the errors of a bad name, of a call its shape lacks, and of a region that is not its location", function()
    local many = core.build_many("cancel", { "projects/p//operations/1", LOC .. "/operations/2" }, "europe-west4", nil)
    assert.is_true(core.is(many[1], "ValueError"))
    assert.are.equal("name has an empty segment", many[1].message)
    assert.is_true(core.is(many[2], "ValueError"))
    assert.are.equal("region 'europe-west4' does not match the name's location", many[2].message)
    local ok, err = pcall(core.build, "delete", LOC .. "/tuningJobs/9/operations/10", nil, { api_version = "v1" })
    assert.is_false(ok)
    assert.are.equal("projects/*/locations/*/tuningJobs/*/operations/* has no delete method in v1", err.message)
  end)
end)
