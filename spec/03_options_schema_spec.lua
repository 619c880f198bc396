-- The option schema (csrc/options.c, core.OPTIONS): one table of every option's name, type, range,
-- default, environment variable and doc line. The check of an options table, the Lua front's
-- defaults (lua/vertexops/options.lua), the LuaCATS fields of lua/vertexops/init.lua and the
-- Options table of docs/contract.md are made from it or checked against it here.
local core = require "vertexops.core"
local options = require "vertexops.options"

local read = require("support.helper").read

local function entry(list, name)
  for _, e in ipairs(list) do
    if e.name == name then return e end
  end
end

local function accepted(list)
  local out = {}
  for _, e in ipairs(list) do
    if not e.planned then out[#out + 1] = e end
  end
  return out
end

-- The error a check of opts raises (nil when it passes).
local function refusal(opts)
  local ok, err = pcall(core.check_options, opts)
  if ok then return nil end
  return err
end

-- A number as the contract writes it: 100000, 1e9.
local function num(v)
  if v >= 1e6 then return (string.format("%g", v):gsub("e%+0*", "e")) end
  return string.format("%.14g", v)
end

describe("the option schema", function()
  it("lists every option check_options accepts, each once; anything else is unknown", function()
    local seen = {}
    for _, e in ipairs(core.OPTIONS) do
      assert.is_nil(seen[e.name], "listed twice: " .. e.name)
      seen[e.name] = true
      -- a value of no option's type: refused for its type (TypeError naming it), or as unknown when planned
      local err = refusal { [e.name] = coroutine.create(function() end) }
      assert.is_not_nil(err, e.name .. " accepted a thread")
      if e.planned then
        assert.are.equal("ValueError: unknown option '" .. e.name .. "'", tostring(err))
      else
        assert.is_true(core.is(err, "TypeError"), e.name .. ": " .. tostring(err))
        assert.is_truthy(tostring(err):find("option '" .. e.name .. "'", 1, true), tostring(err))
      end
    end
    assert.are.equal("ValueError: unknown option 'colour'", tostring(refusal { colour = 1 }))
  end)

  it("has the check refuse what lies past each range and outside each choice, naming the option", function()
    local checked = 0
    local function bounds(e, wrap)
      if e.type == "number" or e.type == "integer" or e.type == "choice" then checked = checked + 1 end
      if e.type == "number" or e.type == "integer" then
        local below = e.min_open and e.min or e.min - 1
        for _, v in ipairs { below, e.max + 1 } do
          local err = refusal(wrap(v))
          assert.is_not_nil(err, e.label .. " accepted " .. v)
          assert.is_true(core.is(err, "ValueError"), tostring(err))
          assert.is_truthy(tostring(err):find("option '" .. e.label .. "'", 1, true), tostring(err))
        end
        assert.is_nil(refusal(wrap(e.max)), e.label .. " refused its max")
      elseif e.type == "choice" then
        for _, c in ipairs(e.choices) do assert.is_nil(refusal(wrap(c))) end
        local err = refusal(wrap("none-of-these"))
        assert.is_true(core.is(err, "ValueError"), e.label)
        assert.is_truthy(tostring(err):find("option '" .. e.label .. "'", 1, true), tostring(err))
      end
    end
    for _, e in ipairs(accepted(core.OPTIONS)) do
      bounds(e, function(v) return { [e.name] = v } end)
      for _, f in ipairs(e.fields or {}) do
        bounds(f, function(v) return { [e.name] = { [f.name] = v } } end)
      end
    end
    assert.is_true(checked >= 10, checked .. " ranges and choices checked: the spec would check nothing")
  end)

  it("gives options.lua its defaults, policies, environment variables and the exchange timeouts", function()
    for _, e in ipairs(accepted(core.OPTIONS)) do
      if e.type ~= "fields" then assert.are.equal(e.default, options.DEFAULTS[e.name], e.name) end
      -- (a variable of another type than its option's, log's VERTEXOPS_LOG, is its feature's to read)
      assert.are.equal(not e.env_choices and e.env or nil, options.ENV[e.name], e.name)
    end
    assert.are.same(entry(core.OPTIONS, "retry").default, options.RETRY)
    assert.are.same(entry(core.OPTIONS, "polling").default, options.POLLING)
    assert.are.same({ max_retries = 5, initial_delay = 1, multiplier = 1.25, max_delay = 60 }, options.RETRY)
    assert.are.equal(60, core.EXCHANGE_TIMEOUT)
    assert.are.equal(10, core.CONNECT_TIMEOUT)
    assert.are.equal(core.EXCHANGE_TIMEOUT, options.DEFAULTS.request_timeout)
    assert.are.equal(core.CONNECT_TIMEOUT, options.DEFAULTS.connect_timeout)
  end)

  it("is the LuaCATS fields of vertexops.Options, RetryPolicy, PollingPolicy and Rate (lua/vertexops/init.lua)", function()
    local src = read("lua/vertexops/init.lua")
    local function fields(class)
      local start = assert(src:find("---@class " .. class .. " ", 1, true), class)
      local out = {}
      for line in src:sub(start):gmatch("([^\n]*)\n") do
        if line:find("^%-%-%-@field ") then out[#out + 1] = line
        elseif #out > 0 then break end
      end
      return table.concat(out, "\n")
    end
    local function want(list)
      local out = {}
      for _, e in ipairs(accepted(list)) do
        out[#out + 1] = "---@field " .. e.name .. "? " .. e.cats .. (e.doc and " " .. e.doc or "")
      end
      return table.concat(out, "\n")
    end
    -- on a mismatch the message is the block to paste
    local w = want(core.OPTIONS)
    assert.are.equal(w, fields("vertexops.Options"), "vertexops.Options should read:\n" .. w)
    w = want(entry(core.OPTIONS, "retry").fields)
    assert.are.equal(w, fields("vertexops.RetryPolicy"), "vertexops.RetryPolicy should read:\n" .. w)
    w = want(entry(core.OPTIONS, "polling").fields)
    assert.are.equal(w, fields("vertexops.PollingPolicy"), "vertexops.PollingPolicy should read:\n" .. w)
    w = want(entry(core.OPTIONS, "rate").fields)
    assert.are.equal(w, fields("vertexops.Rate"), "vertexops.Rate should read:\n" .. w)
  end)

  it("is the Options table of docs/contract.md: names, defaults, ranges, choices, variables", function()
    local doc = read("docs/contract.md")
    local section = assert(doc:match("\n## Options\n(.-)\n## "))
    local rows = {}
    for line in section:gmatch("[^\n]+") do
      local keys, meaning, default, env = line:match("^| ([^|]+) | ([^|]+) | ([^|]+) |([^|]*)|$")
      if keys and keys:find("^`") then
        env = env:match("^%s*(.-)%s*$")
        for key in keys:gmatch("`([%w_]+)`") do
          assert.is_nil(rows[key], "the contract lists " .. key .. " twice")
          rows[key] = { meaning = meaning, default = default, plain = default:gsub("`", ""), env = env }
        end
      end
    end
    for _, e in ipairs(accepted(core.OPTIONS)) do
      local row = rows[e.name]
      assert.is_not_nil(row, "docs/contract.md's Options table lacks " .. e.name)
      rows[e.name] = nil
      if e.env then
        assert.are.equal("`" .. e.env .. "`", row.env, e.name)
      else
        assert.is_truthy(row.env == "" or row.env:find("^%("), e.name .. ": " .. row.env)
      end
      local d = e.default
      if e.type == "fields" and d ~= nil then
        local parts = {}
        for _, f in ipairs(e.fields) do parts[#parts + 1] = f.name .. "=" .. num(f.default) end
        local shown = "`{" .. table.concat(parts, ", ") .. "}`"
        assert.is_truthy(row.meaning:find(shown, 1, true), e.name .. " should show " .. shown)
        assert.are.equal("as shown", row.default, e.name)
      elseif type(d) == "number" then
        assert.is_truthy(row.plain:find(num(d), 1, true), e.name .. ": " .. row.default)
      elseif type(d) == "string" then
        assert.is_truthy(row.default:find('`"' .. d .. '"`', 1, true), e.name .. ": " .. row.default)
      elseif type(d) == "boolean" then
        assert.is_truthy(row.default:find("`" .. tostring(d) .. "`", 1, true), e.name .. ": " .. row.default)
      elseif e.default_doc then
        assert.is_truthy(row.plain:find(e.default_doc, 1, true), e.name .. ": " .. row.default)
      else
        assert.is_truthy(row.plain:find("^none"), e.name .. ": " .. row.default)
      end
      local function range(f)
        if f.type == "integer" then
          local r = "integer " .. num(f.min) .. "–" .. num(f.max)
          assert.is_truthy(row.meaning:find(r, 1, true), f.label .. " should say " .. r)
        elseif f.type == "number" and f.min_open and f == e then
          assert.is_truthy(row.meaning:find("> " .. num(f.min), 1, true), f.label .. " should say > " .. f.min)
        elseif f.type == "choice" then
          for _, c in ipairs(f.choices) do
            assert.is_truthy(row.meaning:find('`"' .. c .. '"`', 1, true), f.label .. " should name " .. c)
          end
        end
      end
      range(e)
      for _, f in ipairs(e.fields or {}) do range(f) end
    end
    assert.are.same({}, rows, "docs/contract.md lists options the schema does not have")
  end)
end)

describe("the schema reader (options.read_schema)", function()
  -- The kinds of option the open issues add are in the schema, marked planned: refused as unknown
  -- today, read like the others once accepted.
  local now = options.read_schema(core.OPTIONS)

  it("leaves the planned options out until they are accepted (none is planned now)", function()
    for _, e in ipairs(core.OPTIONS) do
      if e.planned then
        assert.are.equal("ValueError: unknown option '" .. e.name .. "'", tostring(refusal { [e.name] = {} }))
        assert.is_nil(now.merge[e.name] or now.copy[e.name] or now.fields[e.name] or now.env_values[e.name], e.name)
      end
    end
  end)

  it("reads a table of functions (hooks): each field a function, copied, not merged field by field (both run)", function()
    local hooks = entry(core.OPTIONS, "hooks")
    assert.are.equal("fields", hooks.type)
    for _, f in ipairs(hooks.fields) do
      assert.are.equal("function", f.type, f.name)
      assert.are.equal("hooks." .. f.name, f.label)
    end
    assert.is_nil(now.merge.hooks)
    assert.is_true(now.copy.hooks)
  end)

  it("reads a table merged field by field with no default of its own (rate: off until given)", function()
    assert.is_true(now.merge.rate)
    assert.is_true(now.copy.rate)
    assert.is_nil(now.fields.rate)
    assert.is_nil(entry(core.OPTIONS, "rate").planned)
    assert.are.same({ "requests", "per" }, { entry(core.OPTIONS, "rate").fields[1].name,
      entry(core.OPTIONS, "rate").fields[2].name })
    assert.are.equal(60, entry(core.OPTIONS, "rate").fields[2].default)
    local merged = options.merge({ rate = { requests = 600, per = 60 } }, { rate = { requests = 300 } })
    assert.are.same({ requests = 300, per = 60 }, merged.rate)
    assert.is_false(options.merge({ rate = { requests = 600 } }, { rate = false }).rate)
  end)

  it("reads an environment variable of another type than its option's (log: a function; VERTEXOPS_LOG: a level)", function()
    local log = entry(core.OPTIONS, "log")
    assert.are.equal("function", log.type)
    assert.is_nil(now.env.log) -- not checked as a function
    assert.are.same({ var = "VERTEXOPS_LOG", choices = { "debug", "info", "warn", "error" } }, now.env_values.log)
  end)

  it("reads the accepted options' merge and copy rules as options.merge and options.copy apply them", function()
    assert.are.same({ retry = true, polling = true, rate = true }, now.merge)
    assert.are.same({ retry = true, polling = true, scopes = true, rate = true, hooks = true }, now.copy)
    local merged = options.merge({ retry = { max_retries = 1 }, scopes = { "a" } },
      { retry = { max_delay = 2 }, scopes = { "b" } })
    assert.are.same({ max_retries = 1, max_delay = 2 }, merged.retry)
    assert.are.same({ "b" }, merged.scopes)
  end)
end)
