-- vertexops.testing.control: the control API (/_control/..., docs/fake.md "Control API over
-- HTTP"), what vertexops.testing's server methods send. One handler per path in CONTROLS, keyed
-- "METHOD path" (or "path": any method); each answers 200 with JSON, or 400 {"error": "..."}
-- naming what it refused (check.lua: LIMITS, and the checks of each kind of input), changing
-- nothing then. A new setting of the fake (a quota, jobs' defaults) lands here as a handler,
-- its checks beside what it sets (model.lua, faults.lua, tokens.lua, or a module of its own).
local cjson = require("cjson.safe").new()
local check = require "vertexops.testing.check"
local faults = require "vertexops.testing.faults"
local jobs = require "vertexops.testing.jobs"
local log = require "vertexops.testing.log"
local model = require "vertexops.testing.model"
local quota = require "vertexops.testing.quota"
local reply = require "vertexops.testing.reply"
local state = require "vertexops.testing.state"
local sts = require "vertexops.testing.sts"
local aws = require "vertexops.testing.aws"
local tokens = require "vertexops.testing.tokens"
local jwt = require "vertexops.testing.jwt"

local ngx = ngx
local send = reply.send
local number_in, one_of, first = check.number_in, check.one_of, check.first
local LIMITS = check.LIMITS

local M = {}

local OK = { ok = true }

local function refuse(message) return send(400, { error = message }) end

-- A handler that does action() and answers {"ok": true}.
local function ok_after(action)
  return function()
    action()
    return send(200, OK)
  end
end

-- A handler of a JSON object body (absent: {}): checked by check (nil, or the message of a 400),
-- then applied by apply(body, raw), whose result is the answer's body (default {"ok": true}).
local function checked(check_body, apply)
  return function(body, raw)
    body = body or {}
    local m = check_body(body)
    if m then return refuse(m) end
    return send(200, apply(body, raw) or OK)
  end
end

local function check_clock(body)
  if type(body) ~= "table" then return "a clock body must be a JSON object" end
  local m = first(number_in(body, "virtual", 0, LIMITS.clock), number_in(body, "advance", -LIMITS.clock, LIMITS.clock),
    one_of(body, "real", "boolean"))
  if m then return m end
  local t = body.virtual or (not body.real and state.virtual)
  if body.advance and t and (t + body.advance < 0 or t + body.advance > LIMITS.clock) then
    return ("advance would take the virtual clock out of [0, %.14g] seconds"):format(LIMITS.clock)
  end
end

-- project_number: digits; project_id: a project ID; false: back to the default
local PROJECT = { project_number = { "^%d+$", "digits" }, project_id = { "^[a-z][a-z0-9-]*$", "a project ID" } }

local function check_config(body)
  if type(body) ~= "table" then return "config must be a JSON object" end
  local m = first(one_of(body, "nolog", "boolean"), number_in(body, "hold", 0, LIMITS.seconds))
  if m then return m end
  for _, k in ipairs { "project_number", "project_id" } do
    local v, shape = body[k], PROJECT[k]
    if v ~= nil and v ~= false and not (type(v) == "string" and v:match(shape[1]) and #v <= 30) then
      return k .. " must be " .. shape[2]
    end
  end
end

local CONTROLS = {
  ["ping"] = ok_after(function() end),
  ["reset"] = ok_after(state.reset),
  ["POST operations"] = checked(model.check_spec, function(spec)
    state.made = state.made + (spec.count or 1)
    if spec.count then return model.create_many(spec) end
    return model.view(model.create(spec))
  end),
  ["POST jobs"] = checked(jobs.check_spec, function(spec)
    state.made = state.made + 1
    return jobs.view(jobs.create(spec))
  end),
  -- one fault, or a list of them
  ["POST faults"] = function(body, raw)
    local list = type(body) == "table" and body[1] ~= nil and body or { body }
    if body == nil then list = {} end
    local m = faults.queue(list, #(raw or ""))
    if m then return refuse(m) end
    return send(200, OK)
  end,
  ["DELETE faults"] = ok_after(faults.clear),
  -- {virtual = t}: switch to a virtual clock at t; {advance = s}: move it; {real = true}: back
  ["POST clock"] = checked(check_clock, function(body)
    if body.real then state.virtual = nil end
    if body.virtual then state.virtual = body.virtual end
    if body.advance and state.virtual then state.virtual = state.virtual + body.advance end
    return { now = state.now() }
  end),
  ["POST config"] = checked(check_config, function(body)
    if body.nolog ~= nil then state.nolog = body.nolog end
    if body.hold ~= nil then state.hold = body.hold > 0 and body.hold or nil end
    for k in pairs(PROJECT) do
      if body[k] ~= nil then state[k] = body[k] or nil end
    end
  end),
  ["stats"] = function() return send(200, log.stats()) end,
  ["reset_log"] = ok_after(log.clear),
  ["log"] = function() return send(200, #state.log == 0 and "[]" or state.log) end,
  ["POST oauth"] = checked(tokens.check_oauth, tokens.set_oauth),
  ["POST tokens"] = checked(tokens.check_tokens, tokens.set_tokens),
  ["POST api_keys"] = checked(tokens.check_api_keys, tokens.set_api_keys),
  -- {client_email, key_id, public_key}: a key whose self-signed JWTs the Vertex routes accept (jwt.lua)
  ["POST keys"] = checked(jwt.check_key, jwt.set_key),
  ["POST sts"] = checked(sts.check_settings, sts.set),
  ["POST aws"] = checked(aws.check_settings, aws.set),
  -- {requests = n, per = seconds}: a quota per project and region (quota.lua); {off = true}: none
  ["POST quota"] = checked(quota.check, quota.set),
  ["GET quota"] = function() return send(200, quota.show()) end,
}
M.CONTROLS = CONTROLS

-- The control API's token, when nginx was started with one (vertexops.testing: start{control_token}).
local CONTROL_TOKEN = os.getenv("VERTEXOPS_FAKE_CONTROL_TOKEN")
if CONTROL_TOKEN == "" then CONTROL_TOKEN = nil end

-- The request's JSON body: the decoded value (nil when there is none), the raw text; or nil, nil,
-- the message of a 400.
local function json_body()
  local raw = ngx.req.get_body_data()
  if not raw and ngx.req.get_body_file() then return nil, nil, "control request body too large" end
  if not (raw and raw:match("%S")) then return nil, raw end
  local body, err = cjson.decode(raw)
  if body == nil then return nil, nil, "the body is not JSON: " .. tostring(err) end
  return body, raw
end

--- Answers the control request for path (what follows /_control/).
function M.handle(path)
  if CONTROL_TOKEN and ngx.var.http_x_fake_control_token ~= CONTROL_TOKEN then
    return send(401, { error = "this fake's control API needs its token in the X-Fake-Control-Token header" })
  end
  local body, raw, bad = json_body()
  if bad then return refuse(bad) end
  local handler = CONTROLS[ngx.req.get_method() .. " " .. path] or CONTROLS[path]
  if not handler then return send(404, { error = "no such control" }) end
  return handler(body, raw)
end

return M
