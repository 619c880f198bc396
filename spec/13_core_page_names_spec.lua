-- core.page_names: cancel_all's listing reads each page for its operations' names only, in C
-- (csrc/json.c). It must give exactly what decoding the page (core.classify) and checking each
-- operation (operation.check, as Client:_list does) would, and leave to them every page it cannot
-- read that way, so each ResponseTypeError of a malformed page is still theirs.
local core = require "vertexops.core"
local operation = require "vertexops.operation"

local P = "projects/p/locations/us-central1/operations/"

-- What the full path gives for a 200 with this body: the names and the page token, or nil when it
-- fails (not a JSON object, an operation the check refuses, a token that is not a string).
local function full(body)
  local ok, page = core.classify(200, "HTTP/2 200\r\n\r\n", body)
  if not ok then return nil end
  local ops = page.operations
  if ops == operation.null then ops = nil end
  if ops ~= nil and type(ops) ~= "table" then return nil end
  local names = {}
  for i, op in ipairs(ops or {}) do
    local fine, checked = pcall(operation.check, op, "operations[" .. i .. "]")
    if not fine then return nil end
    names[i] = checked.name
  end
  local token = page.nextPageToken
  if token == operation.null then token = nil end
  if token ~= nil and type(token) ~= "string" then return nil end
  return names, token
end

local function names_of(page)
  local names = {}
  for i, op in ipairs(page.operations or {}) do
    assert.are.same({ "name" }, (function()
      local keys = {}
      for k in pairs(op) do keys[#keys + 1] = k end
      return keys
    end)())
    names[i] = op.name
  end
  return names
end

-- page_names(body) either leaves it (nil) or agrees with the full path, which must then succeed.
local function agrees(body)
  local page = core.page_names(body)
  if page == nil then return false end
  local names, token = full(body)
  assert(names, "page_names took a page the full path refuses: " .. body)
  assert.are.same(names, names_of(page), body)
  assert.are.equal(token, page.nextPageToken, body)
  return true
end

local OP = '{"metadata":{"genericMetadata":{"createTime":"2026-12-06T10:53:41.489Z"},"@type":"type.x\\/M"},'
  .. '"name":"projects\\/p\\/locations\\/us-central1\\/operations\\/%d"}'

local function page(n, token)
  local ops = {}
  for i = 1, n do ops[i] = OP:format(i) end
  return '{"operations":[' .. table.concat(ops, ",") .. ']' .. (token and (',"nextPageToken":"' .. token .. '"') or "") .. "}"
end

describe("core.page_names", function()
  it("reads a page of the service's form: the names, the token", function()
    local p = core.page_names(page(3, "c2"))
    assert.are.same({ operations = { { name = P .. 1 }, { name = P .. 2 }, { name = P .. 3 } }, nextPageToken = "c2" }, p)
    assert.is_true(agrees(page(3, "c2")))
  end)

  it("agrees with the decoder on the pages it takes", function()
    local bodies = {
      "{}", " { } ", '{"operations":[]}', '{"operations":[],"nextPageToken":""}',
      '{"nextPageToken":"t","operations":[{"name":"a\\"b\\\\c\\/d\\n\\t\\r\\b\\f"}]}',
      '{"operations":[{"done":false,"name":"' .. P .. '1","response":{"x":[1,-2.5e3,0.1E+2,true,null,{}]}}]}',
      '{"operations":[{"done":true,"name":"' .. P .. '1"}],"unreachable":["a",{"b":[[]]}],"n":-0}',
      '\r\n\t{ "operations" : [ { "name" : "x" } , {"name":"y","metadata":{}} ] }\n',
      '{"operations":[{"name":"caf\xc3\xa9"}]}',
    }
    for _, b in ipairs(bodies) do assert.is_true(agrees(b), b) end
  end)

  it("leaves to the decoder what it cannot read exactly as the decoder would", function()
    local left = {
      '{"operations":[{"name":"\\u0061"}]}', -- any \u escape
      '{"operations":[{"name":"a","metadata":{"k":"\\ud800"}}]}',
      '{"operations":[{"name":"a","name":"b"}]}', -- a repeated key it reads
      '{"operations":[],"operations":[]}', '{"nextPageToken":"a","nextPageToken":"b"}',
      '{"operations":[{}]}', '{"operations":[{"done":false}]}', -- no name
      '{"operations":[{"name":"a","error":{"code":1}}]}', -- the check reads an error
      '{"operations":[{"name":null}]}', '{"operations":[{"name":"a","done":null}]}', '{"operations":null}',
      '{"operations":[{"name":"a","done":"yes"}]}', '{"operations":[{"name":"a","metadata":[]}]}',
      '{"operations":[{"name":1}]}', '{"operations":{}}', '{"operations":[1]}', '{"nextPageToken":5}',
      '{"operations":[{"name":"a"}]} x', '{"operations":[{"name":"a"}],}', '{"operations":[{"name":"a"},]}',
      '{"n":01}', '{"n":1.}', '{"n":.5}', '{"n":-}', '{"n":1e}', '{"n":0x10}', '{"n":NaN}', '{"n":1x}',
      '{"k":"a\tb"}', '{"k":"\\x"}', '{"k\\/":1}', '[]', '', '\xef\xbb\xbf{}', '{"k":tru}',
      '{"operations":[{"name":"a"}]', '{"a":' .. ("["):rep(70) .. ("]"):rep(70) .. "}",
    }
    for _, b in ipairs(left) do assert.is_nil(core.page_names(b), b) end
  end)

  it("never takes a page the full path refuses, nor reads one differently (mutated pages)", function()
    -- deterministic: a fixed linear congruential sequence, not math.random
    local seed = 12345
    local function rnd(n)
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed % n + 1
    end
    local base = page(3, "c2")
    local alphabet = '{}[]",:\\/ 0-1e.tnfu\tx'
    local taken = 0
    for _ = 1, 3000 do
      local b = base
      for _ = 1, rnd(3) do
        local i, kind = rnd(#b), rnd(3)
        local k = rnd(#alphabet)
        local c = alphabet:sub(k, k)
        if kind == 1 then b = b:sub(1, i - 1) .. c .. b:sub(i + 1)
        elseif kind == 2 then b = b:sub(1, i - 1) .. b:sub(i + 1)
        else b = b:sub(1, i - 1) .. c .. b:sub(i) end
      end
      if agrees(b) then taken = taken + 1 end
    end
    assert.is_true(taken > 0) -- some mutations (inside a string) stay pages it reads
  end)

  it("is what a handle's finished listing gives when the request asks for names only", function()
    local fake = require "support.fake"
    local H = require "support.helper"
    local server = fake.start()
    local h
    -- (one finally: busted keeps the last one a test registers)
    finally(function()
      if h then h:close() end
      server:stop()
    end)
    server:create_many(3, { done_after = 3600 })
    local req = core.build("list", H.PARENT, nil, { endpoint = server.endpoint })
    req.ca_file = server.ca_file
    h = core.handle()
    local ok, whole = h:call(req, "test-token")
    assert.is_true(ok)
    assert.is_table(whole.operations[1].metadata)
    req.names_only = true
    local ok2, names = h:call(req, "test-token")
    assert.is_true(ok2)
    assert.are.same({ { name = whole.operations[1].name }, { name = whole.operations[2].name },
                      { name = whole.operations[3].name } }, names.operations)
  end)
end)
