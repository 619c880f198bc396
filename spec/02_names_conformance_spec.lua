-- Conformance with Google's definition: every operations method of v1 and v1beta1 in the generated
-- table (csrc/methods.h, `make methods`), each shape instantiated with ids, walked through
-- core.build (verb, URL path, list query as Google's clients send it) and through the fake (a real
-- request, the fake's log as witness); every method a known shape lacks is a ValueError naming the
-- shape, with no request.
-- Contract: docs/contract.md, "Names and regions".
local vertexops = require "vertexops"
local core = require "vertexops.core"
local H = require "support.helper"

local CALLS = { "get", "wait", "cancel", "list", "delete" } -- the order the fake is walked in
local VERB = { get = "GET", cancel = "POST", delete = "DELETE", wait = "POST", list = "GET" }

-- The table as committed: {version = {{shape =, calls = {get = true, ...}}, ...}}, and the counts
-- its header states.
local function read_table()
  local text = assert(io.open("csrc/methods.h")):read("*a")
  local t = { v1 = {}, v1beta1 = {} }
  for shape, v1, v1beta1 in text:gmatch('{"([^"]+)",%s*([^,]*),%s*([^}]*)}') do
    for version, bits in pairs { v1 = v1, v1beta1 = v1beta1 } do
      if bits ~= "0" then
        local calls = {}
        for _, c in ipairs(CALLS) do calls[c] = bits:find("VX_M_" .. c:upper(), 1, true) ~= nil end
        t[version][#t[version] + 1] = { shape = shape, calls = calls }
      end
    end
  end
  local stated = {}
  for version, shapes, methods in text:gmatch("\n %* (v1%w*): (%d+) shapes, (%d+) methods") do
    stated[version] = { shapes = tonumber(shapes), methods = tonumber(methods) }
  end
  return t, stated
end
local TABLE, STATED = read_table()

-- A name of the shape: the project and location the fake knows, an id for every other '*'.
local function instance(shape)
  local n, segs = 0, {}
  for seg in shape:gmatch("[^/]+") do
    local prev = segs[#segs]
    if seg == "*" then
      n = n + 1
      seg = prev == "projects" and "test-project" or prev == "locations" and "us-central1" or ("id" .. n)
    end
    segs[#segs + 1] = seg
  end
  return table.concat(segs, "/")
end

local function parent_of(name) return (name:gsub("/operations/[^/]+$", "")) end

describe("Google's table (csrc/methods.h)", function()
  for version, stated in pairs(STATED) do
    it(version .. " holds the shapes and methods its header states", function()
      local methods = 0
      for _, s in ipairs(TABLE[version]) do
        for _, c in ipairs(CALLS) do methods = methods + (s.calls[c] and 1 or 0) end
      end
      assert.are.equal(stated.shapes, #TABLE[version])
      assert.are.equal(stated.methods, methods)
    end)
  end

  it("names the versions it came from and how to regenerate it", function()
    local text = assert(io.open("csrc/methods.h")):read("*a")
    assert.matches("Google Cloud SDK %d+%.%d+%.%d+", text)
    assert.matches("@google%-cloud/aiplatform %d+%.%d+%.%d+", text)
    assert.matches("make methods", text)
    local pinned = assert(io.open("bench/package.json")):read("*a"):match('"@google%-cloud/aiplatform": "([^"]+)"')
    assert.matches("@google%-cloud/aiplatform " .. pinned:gsub("%p", "%%%0") .. " ", text)
  end)
end)

for _, version in ipairs { "v1beta1", "v1" } do
  describe(version .. ": every method through core.build", function()
    for _, call in ipairs(CALLS) do
      it(("builds every %s as Google's clients send it"):format(call), function()
        local n = 0
        for _, s in ipairs(TABLE[version]) do
          if s.calls[call] then
            n = n + 1
            local name = instance(s.shape)
            local target = call == "list" and parent_of(name) or name
            local req = core.build(call, target, nil, { api_version = version, filter = "done=false",
              page_size = 50, page_token = "tok" })
            local host = name:match("^projects/") and "https://us-central1-aiplatform.googleapis.com"
              or "https://aiplatform.googleapis.com"
            local path = ({ get = name, delete = name, cancel = name .. ":cancel", wait = name .. ":wait",
              list = target .. "/operations?filter=done%3Dfalse&pageSize=50&pageToken=tok" })[call]
            assert.are.equal(VERB[call], req.method, s.shape)
            assert.are.equal(host .. "/" .. version .. "/" .. path, req.url, s.shape)
            assert.are.same(s.shape, (core.shape(name, version)), s.shape)
          end
        end
        assert.is_true(n > 0)
      end)

      it(("refuses every %s a known shape lacks, naming the shape"):format(call), function()
        for _, s in ipairs(TABLE[version]) do
          if not s.calls[call] then
            local name = instance(s.shape)
            local ok, err = pcall(core.build, call, call == "list" and parent_of(name) or name, nil,
              { api_version = version })
            assert.is_false(ok, s.shape)
            assert.are.equal("ValueError", H.tags(err))
            assert.are.equal(("%s has no %s method in %s"):format(s.shape, call, version), err.message)
          end
        end
      end)
    end
  end)

  describe(version .. ": every method through the fake", function()
    local fake = H.fake_server()
    local client
    teardown(function() if client then client:close() end end)

    for _, s in ipairs(TABLE[version]) do
      it(s.shape, function()
        local server = fake.server
        client = client or vertexops.client(H.opts(server))
        local o = { api_version = version }
        local name = instance(s.shape)
        local parent = parent_of(name)
        server:create { name = name, done = true }
        server:reset_log()
        local want = {}
        for _, call in ipairs(CALLS) do
          if s.calls[call] then
            if call == "get" then assert.are.equal(name, client:get(name, nil, o).name)
            elseif call == "wait" then assert.is_true(client:wait_once(name, nil, 5, o).done)
            elseif call == "cancel" then assert.is_true(client:cancel(name, nil, o))
            elseif call == "delete" then assert.is_true(client:delete(name, nil, o))
            else
              local page = client:list(parent, nil, { api_version = version, filter = "done=true", page_size = 50 })
              assert.are.equal(name, page.operations[1].name)
            end
            local path = "/" .. version .. "/" .. (call == "list" and parent .. "/operations" or name)
              .. (call == "cancel" and ":cancel" or call == "wait" and ":wait" or "")
            want[#want + 1] = { call = call, method = VERB[call], path = path,
              name = call == "list" and parent or name }
          else
            local err = call == "wait" and H.raises(client.wait_once, client, name, nil, 5, o)
              or H.raises(client[call], client, call == "list" and parent or name, nil, o)
            assert.are.equal("ValueError", H.tags(err))
          end
        end
        local got = {}
        for i, e in ipairs(server:log()) do
          got[i] = { call = e.call, method = e.method, path = e.path, name = e.name }
        end
        assert.are.same(want, got)
      end)
    end
  end)
end
