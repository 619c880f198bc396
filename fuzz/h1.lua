-- Driver of fuzz/h1.c: core.h1() on the input (byte 0: the split seed; the rest: the answer's
-- bytes). Returns nil when the outcome keeps the contract, or a text naming the broken invariant.
local core = require "vertexops.core"
local TAGS = { ConnectionError = true, ResponseTypeError = true }

-- Feeds s in pieces (sizes from next_size), all of it, then eof when more was wanted; a complete
-- answer is classified by p:classify, core.classify and p:finish alike.
-- Returns "done", status, head, body, keepalive | "error", err.
local function run(s, next_size)
  local p = core.h1()
  local i, done = 1, false
  while i <= #s do
    local n = next_size()
    local r, err = p:feed(s:sub(i, i + n - 1))
    if r == nil then
      p:close()
      return "error", err
    end
    if r ~= true and r ~= false then return "bad", "feed returned " .. tostring(r) end
    done = r
    i = i + n
  end
  if not done then
    local r, err = p:eof()
    if not r then return "error", err end
  end
  local st, head, body, keep = p:result()
  local c = { p:classify(true) }
  local want = { core.classify(st, head, body, true) }
  -- p:finish: the reuse and the same classification in one call, the parser reset after it
  local f = { p:finish(true) }
  local received = p:received()
  p:close()
  if c[1] ~= want[1] or (c[1] == false and c[2].message ~= want[2].message) then
    return "bad", "p:classify differs from core.classify"
  end
  if f[1] ~= keep or f[2] ~= c[1] or (c[1] == false and f[3].message ~= c[2].message) then
    return "bad", "p:finish differs from p:keepalive and p:classify"
  end
  if received ~= 0 then return "bad", "p:finish left the parser unreset" end
  return "done", st, head, body, keep
end

-- p:take in pieces (as the cosocket transport reads): the status, keep-alive and classification
-- it gives with the piece that completed the answer (what follows is never read), or with p:eof
-- then p:finish when the input ran out first. Returns the outcome ("done", status, keepalive, ok,
-- message | "error", message) and how many bytes were fed.
local function taken(s, next_size)
  local p = core.h1()
  local i = 1
  while i <= #s do
    local n = next_size()
    local r, st, keep, ok, res = p:take(s:sub(i, i + n - 1), true)
    local fed = math.min(#s, i + n - 1)
    if r == nil then
      p:close()
      return { "error", st.message }, fed
    end
    if r == true then
      if p:received() ~= 0 then return { "bad", "p:take left the parser unreset" } end
      p:close()
      return { "done", st, keep, ok, ok == false and res.message or nil }, fed
    end
    if r ~= false then return { "bad", "take returned " .. tostring(r) } end
    i = i + n
  end
  local r, err = p:eof()
  if not r then
    p:close()
    return { "error", err.message }, #s
  end
  local st = p:status()
  local keep, ok, res = p:finish(true)
  p:close()
  return { "done", st, keep, ok, ok == false and res.message or nil }, #s
end

-- The same of s fed whole to p:feed (then p:eof when it wants more), p:status and p:finish.
local function fed_whole(s)
  local p = core.h1()
  local r, err = p:feed(s)
  if r == false then r, err = p:eof() end
  if not r then
    p:close()
    return { "error", err.message }
  end
  local st = p:status()
  local keep, ok, res = p:finish(true)
  p:close()
  return { "done", st, keep, ok, ok == false and res.message or nil }
end

local function check_error(err)
  if type(err) ~= "table" or getmetatable(err) ~= core.error_mt then return "failure without an error object" end
  if type(err.message) ~= "string" then return "error without a message" end
  if not TAGS[err.tags[1]] then return "error tag " .. tostring(err.tags[1]) end
  if err.code ~= nil and (math.type(err.code) ~= "integer" or err.code < 100 or err.code > 999) then
    return "error code " .. tostring(err.code)
  end
end

return function(data)
  local seed = data:byte(1) or 0
  local s = data:sub(2)
  local outcomes = {
    { run(s, function() return #s + 1 end) },
    { run(s, function()
        seed = (seed * 73 + 41) % 251
        return seed % 17 + 1
      end) },
    { run(s, function() return 1 end) },
  }
  -- p:take in pieces agrees with p:feed, p:status and p:finish on the bytes it was given
  local t, fed = taken(s, function()
    seed = (seed * 37 + 11) % 251
    return seed % 29 + 1
  end)
  if t[1] == "bad" then return t[2] end
  local w = fed_whole(s:sub(1, fed))
  for j = 1, 5 do
    if t[j] ~= w[j] then return "p:take's outcome differs from p:feed and p:finish's (" .. j .. ")" end
  end
  for k, o in ipairs(outcomes) do
    if o[1] == "bad" then return o[2] end
    if o[1] == "error" then
      local bad = check_error(o[2])
      if bad then return bad end
    else
      local st, head, body = o[2], o[3], o[4]
      if math.type(st) ~= "integer" or st < 200 or st > 999 then return "final status " .. tostring(st) end
      if #head > 256 * 1024 + 2 or #body > 32 * 1048576 then return "a response over the caps" end
      if head:sub(1, 7) ~= "HTTP/1." then return "head does not start with the status line" end
      if type(o[5]) ~= "boolean" then return "keepalive is not a boolean" end
    end
    if k > 1 then
      local a = outcomes[1]
      if a[1] ~= o[1] then return "split " .. k .. " gives " .. o[1] .. ", whole gives " .. a[1] end
      if a[1] == "error" and a[2].message ~= o[2].message then
        return "split " .. k .. " error '" .. o[2].message .. "', whole '" .. a[2].message .. "'"
      end
      if a[1] == "done" then
        for j = 2, 5 do
          if a[j] ~= o[j] then return "split " .. k .. " result " .. j .. " differs" end
        end
      end
    end
  end
end
