-- Driver of fuzz/page.c: core.page_names on the input (a listing page's body). Returns nil when
-- it keeps its promise (csrc/json.c, vx_pushpagenames; spec/13_core_page_names_spec.lua), or a
-- text naming the broken invariant:
--   page_names never raises; it returns nil (the page is left to the decoder) or
--   {operations = {{name = s}, ...} or nil, nextPageToken = s or nil} and nothing else;
--   a page it takes, the full path (core.classify, then operation.check on each operation) takes
--   too, with the same names in the same order and the same token.
local core = require "vertexops.core"
local root = debug.getinfo(1, "S").source:match("^@(.*)/fuzz/[^/]*$") or "."
package.path = root .. "/lua/?.lua;" .. package.path
local operation = require "vertexops.operation"

-- The full path's names and token, or nil and why when it refuses the page.
local function full(body)
  local ok, page = core.classify(200, "HTTP/2 200\r\n\r\n", body)
  if not ok then return nil, "classify: " .. tostring(page and page.message) end
  local ops = page.operations
  if ops == operation.null then ops = nil end
  if ops ~= nil and type(ops) ~= "table" then return nil, "operations is a " .. type(ops) end
  local names = {}
  for i, op in ipairs(ops or {}) do
    local fine, checked = pcall(operation.check, op, "operations[" .. i .. "]")
    if not fine then return nil, "check: " .. tostring(checked and checked.message) end
    names[i] = checked.name
  end
  local token = page.nextPageToken
  if token == operation.null then token = nil end
  if token ~= nil and type(token) ~= "string" then return nil, "nextPageToken is a " .. type(token) end
  return names, token
end

return function(body)
  local ok, page = pcall(core.page_names, body)
  if not ok then return "page_names raised: " .. tostring(page) end
  if page == nil then return nil end
  if type(page) ~= "table" then return "page_names returned a " .. type(page) end
  for k in pairs(page) do
    if k ~= "operations" and k ~= "nextPageToken" then return "page_names returned a field " .. tostring(k) end
  end
  local ops = page.operations or {} -- none when the page lists none
  if type(ops) ~= "table" then return "page_names' operations is a " .. type(ops) end
  local names, token = full(body)
  if not names then return "page_names took a page the full path refuses (" .. token .. ")" end
  if #ops ~= #names then return ("page_names read %d operations, the full path %d"):format(#ops, #names) end
  for i, op in ipairs(ops) do
    if type(op) ~= "table" or next(op, next(op)) ~= nil or op.name == nil then
      return "page_names' operation " .. i .. " is not {name = s}"
    end
    if op.name ~= names[i] then return ("operation %d: page_names %q, the full path %q"):format(i, op.name, names[i]) end
  end
  if page.nextPageToken ~= token then
    return ("nextPageToken: page_names %s, the full path %s"):format(tostring(page.nextPageToken), tostring(token))
  end
end
