-- A strict reader of Prometheus' text exposition format (version 0.0.4), for the specs of
-- vertexops.metrics: every line must match the format's grammar, or parse() raises naming it.
--
--   local prom = require "support.prometheus"
--   local doc = prom.parse(text)         -- doc.families[name] = {type, help, samples}, doc.samples
--   prom.value(doc, "vertexops_calls_total", {call = "cancel"})  -- the sum of the matching samples
--   prom.check_histograms(doc)           -- raises unless every histogram is well formed
local M = {}

local NAME = "^[%a_:][%w_:]*"
local LABEL = "^[%a_][%w_]*"
local UNESCAPE = { ["\\"] = "\\", ['"'] = '"', n = "\n" }

local function fail(n, line, why)
  error(("line %d does not match the exposition format (%s): %q"):format(n, why, line), 0)
end

local function float(s)
  if s == "+Inf" or s == "Inf" then return math.huge end
  if s == "-Inf" then return -math.huge end
  if s == "NaN" then return 0 / 0 end
  if not s:match("^[-+]?%d+%.?%d*[eE]?[-+]?%d*$") and not s:match("^[-+]?%.%d+[eE]?[-+]?%d*$") then return nil end
  return tonumber(s)
end
M.float = float

-- The labels of a sample from position i (just after "{"); returns labels, position after "}".
local function labels_at(line, i, n)
  local labels = {}
  while true do
    if line:sub(i, i) == "}" then return labels, i + 1 end
    local name = line:match(LABEL, i)
    if not name then fail(n, line, "label name at " .. i) end
    i = i + #name
    if line:sub(i, i + 1) ~= '="' then fail(n, line, "= and \" after label " .. name) end
    i = i + 2
    local value = {}
    while true do
      local c = line:sub(i, i)
      if c == "" then fail(n, line, "unterminated label value") end
      if c == '"' then i = i + 1; break end
      if c == "\\" then
        local e = UNESCAPE[line:sub(i + 1, i + 1)]
        if not e then fail(n, line, "bad escape in a label value") end
        value[#value + 1] = e
        i = i + 2
      else
        value[#value + 1] = c
        i = i + 1
      end
    end
    if labels[name] ~= nil then fail(n, line, "label " .. name .. " twice") end
    labels[name] = table.concat(value)
    local c = line:sub(i, i)
    if c == "," then i = i + 1
    elseif c ~= "}" then fail(n, line, "',' or '}' after a label value") end
  end
end

--- Parses text; raises on the first line that breaks the grammar or the format's rules (a TYPE
--- after its samples, a family's samples apart, a sample of a name no TYPE explains is allowed
--- (untyped)).
function M.parse(text)
  assert(type(text) == "string", "render() must return a string")
  assert(text == "" or text:sub(-1) == "\n", "the text must end with a newline")
  local doc = { families = {}, samples = {}, order = {} }
  local current
  local n = 0
  for line in text:gmatch("([^\n]*)\n") do
    n = n + 1
    if line:sub(1, 1) == "#" then
      local what, name, rest = line:match("^#%s+(%u+)%s+(%S+)%s*(.*)$")
      if what == "HELP" or what == "TYPE" then
        if not name:match(NAME .. "$") then fail(n, line, "metric name") end
        local f = doc.families[name]
        if not f then
          f = { name = name, samples = {} }
          doc.families[name] = f
          doc.order[#doc.order + 1] = name
        end
        if what == "TYPE" then
          if f.type then fail(n, line, "a second TYPE line") end
          if #f.samples > 0 then fail(n, line, "TYPE after the family's samples") end
          if not ({ counter = 1, gauge = 1, histogram = 1, summary = 1, untyped = 1 })[rest] then
            fail(n, line, "type")
          end
          f.type = rest
        else
          if f.help then fail(n, line, "a second HELP line") end
          f.help = rest:gsub("\\(.)", function(c) return c == "n" and "\n" or c end)
        end
        current = f
      end
    elseif line ~= "" then -- (blank lines are allowed)
      local name = line:match(NAME)
      if not name then fail(n, line, "metric name") end
      local i = #name + 1
      local labels = {}
      if line:sub(i, i) == "{" then labels, i = labels_at(line, i + 1, n) end
      local value, ts = line:sub(i):match("^ +(%S+) *(%S*)$")
      if not value or not float(value) then fail(n, line, "value") end
      if ts ~= "" and not ts:match("^-?%d+$") then fail(n, line, "timestamp") end
      local family = name
      if current and current.type == "histogram" then
        local base = name:match("^(.*)_bucket$") or name:match("^(.*)_sum$") or name:match("^(.*)_count$")
        if base == current.name then family = base end
      end
      local f = doc.families[family]
      if f and f ~= current then fail(n, line, "a sample away from its family's other lines") end
      if not f then
        f = { name = family, type = "untyped", samples = {} }
        doc.families[family] = f
        doc.order[#doc.order + 1] = family
      end
      current = f
      local s = { name = name, labels = labels, value = float(value), line = line }
      f.samples[#f.samples + 1] = s
      doc.samples[#doc.samples + 1] = s
    end
  end
  return doc
end

local function matches(s, want)
  for k, v in pairs(want or {}) do
    if s.labels[k] ~= v then return false end
  end
  return true
end

--- The sum of the values of the samples named name whose labels include want's.
function M.value(doc, name, want)
  local sum = 0
  for _, s in ipairs(doc.samples) do
    if s.name == name and matches(s, want) then sum = sum + s.value end
  end
  return sum
end

--- The samples named name whose labels include want's.
function M.samples(doc, name, want)
  local out = {}
  for _, s in ipairs(doc.samples) do
    if s.name == name and matches(s, want) then out[#out + 1] = s end
  end
  return out
end

local function key_without_le(labels)
  local keys = {}
  for k, v in pairs(labels) do
    if k ~= "le" then keys[#keys + 1] = k .. "=" .. v end
  end
  table.sort(keys)
  return table.concat(keys, ",")
end

--- Raises unless each histogram family's series have buckets in increasing le, cumulative, the
--- last one +Inf equal to _count, and one _sum and _count each; counters never negative.
function M.check_histograms(doc)
  for _, name in ipairs(doc.order) do
    local f = doc.families[name]
    if f.type == "counter" then
      for _, s in ipairs(f.samples) do
        assert(s.value >= 0, "a negative counter: " .. s.line)
        assert(name:match("_total$"), "a counter not named _total: " .. name)
      end
    elseif f.type == "histogram" then
      local series = {}
      for _, s in ipairs(f.samples) do
        local k = key_without_le(s.labels)
        series[k] = series[k] or { buckets = {} }
        local e = series[k]
        if s.name == name .. "_bucket" then
          local le = assert(s.labels.le, "a bucket without le: " .. s.line)
          assert(float(le), "le is not a float: " .. s.line)
          e.buckets[#e.buckets + 1] = { float(le), s.value, s.line }
        elseif s.name == name .. "_sum" then
          assert(not e.sum, "two _sum: " .. s.line); e.sum = s.value
        elseif s.name == name .. "_count" then
          assert(not e.count, "two _count: " .. s.line); e.count = s.value
        else
          error("a sample of no histogram part: " .. s.line)
        end
      end
      for k, e in pairs(series) do
        assert(#e.buckets > 0, "no buckets: " .. name .. "{" .. k .. "}")
        assert(e.sum and e.count, "no _sum or _count: " .. name .. "{" .. k .. "}")
        for i = 2, #e.buckets do
          assert(e.buckets[i][1] > e.buckets[i - 1][1], "le not increasing: " .. e.buckets[i][3])
          assert(e.buckets[i][2] >= e.buckets[i - 1][2], "buckets not cumulative: " .. e.buckets[i][3])
        end
        local last = e.buckets[#e.buckets]
        assert(last[1] == math.huge, "the last bucket is not +Inf: " .. last[3])
        assert(last[2] == e.count, "+Inf " .. last[2] .. " ~= _count " .. e.count .. ": " .. name .. "{" .. k .. "}")
      end
    end
  end
  return true
end

return M
