-- vertexops.cli.log_http: --log-http (as gcloud's): every request and answer head on stderr, redacted
-- (Authorization: REDACTED, x-goog-api-key: REDACTED, key=REDACTED in URLs), through an on_attempt
-- hook (lua/vertexops/hooks.lua) that asks for the header lines (hooks.WANT_HEADERS).
local hooks = require "vertexops.hooks"

local M = {}

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

--- hooks_for(ctx) -> a hooks table writing each attempt's heads to ctx's stderr.
function M.hooks_for(ctx)
  local function on_attempt(i)
    local out = {}
    if i.phase ~= "end" then return end
    out[#out + 1] = string.format("> %s %s", i.method, i.url)
    for _, line in ipairs(i.request_headers or {}) do out[#out + 1] = "> " .. line end
    local ms = i.timings and i.timings.total and string.format("%.0f ms", i.timings.total * 1000) or "?"
    if i.status then
      out[#out + 1] = string.format("< %d (attempt %d, %s, %s)", i.status, i.attempt, i.transport or "?", ms)
    else
      out[#out + 1] = string.format("< no answer: %s (attempt %d, %s, %s)", i.tag or "?", i.attempt,
        i.transport or "?", ms)
    end
    local h = i.response_headers
    if type(h) == "table" then
      for _, k in ipairs(sorted_keys(h)) do
        local v = tostring(h[k])
        if k == "set-cookie" or k == "authorization" then v = "REDACTED" end
        out[#out + 1] = "< " .. k .. ": " .. v
      end
    end
    ctx:note(table.concat(out, "\n"))
  end
  hooks.WANT_HEADERS[on_attempt] = true
  return { on_attempt = on_attempt }
end

return M
