-- The hooks option (on_call, on_attempt, on_retry, on_token, on_poll), the W3C trace context options
-- and the log option, on libcurl (the blocking and the non-blocking path) against the fake: every
-- hook's calls checked against the fake's request log; nothing secret in any info or log line.
-- Contract: docs/contract.md, "Hooks, trace context and logs".
local vertexops = require "vertexops"
local hooks = require "vertexops.hooks"
local H = require "support.helper"

local TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
local TP2 = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

-- A hooks table recording every event: rec.events[i] = {event, info}.
local function recorder()
  local rec = { events = {} }
  local function on(ev) return function(info) rec.events[#rec.events + 1] = { ev, info } end end
  rec.hooks = { on_call = on("on_call"), on_attempt = on("on_attempt"), on_retry = on("on_retry"),
                on_token = on("on_token"), on_poll = on("on_poll") }
  function rec.of(ev, phase)
    local out = {}
    for _, e in ipairs(rec.events) do
      if e[1] == ev and (phase == nil or e[2].phase == phase) then out[#out + 1] = e[2] end
    end
    return out
  end
  return rec
end

-- Every string reachable from v (the infos hooks saw), joined: what a grep for a secret reads.
local function strings(v, seen, out)
  seen, out = seen or {}, out or {}
  if type(v) == "string" then out[#out + 1] = v
  elseif type(v) == "table" and not seen[v] then
    seen[v] = true
    for k, x in pairs(v) do
      strings(k, seen, out)
      strings(x, seen, out)
    end
  end
  return table.concat(out, "\n")
end

describe("hooks", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  it("fire on_attempt start and end once per request the fake logged, with method, URL, status and timings", function()
    local op = server:create {}
    local rec = recorder()
    local t = H.fake_time()
    server:fault { match = "cancel", status = 503 }
    vertexops.cancel(op.name, nil, H.timed_opts(server, t, { hooks = rec.hooks }))
    local starts, ends = rec.of("on_attempt", "start"), rec.of("on_attempt", "end")
    assert.are.equal(#server:log("cancel"), #starts)
    assert.are.equal(2, #ends)
    for i, info in ipairs(ends) do
      assert.are.equal(i, info.attempt)
      assert.are.equal("cancel", info.call)
      assert.are.equal("POST", info.method)
      assert.are.equal(server.endpoint:gsub("{region}", "us-central1") .. "/v1beta1/" .. op.name .. ":cancel", info.url)
      assert.are.equal("curl", info.transport)
      assert.is_true(info.bytes_sent > 0 and info.bytes_received > 0)
      local tm = info.timings
      for _, k in ipairs { "connect", "tls", "first_byte", "total" } do assert.are.equal("number", type(tm[k]), k) end
      assert.is_true(tm.first_byte <= tm.total)
    end
    assert.are.same({ 503, 200 }, { ends[1].status, ends[2].status })
    assert.are.same({ "HttpError", nil }, { ends[1].tag, ends[2].tag })
  end)

  it("fire on_retry with the failed attempt, the delay slept and the reason of the fault injected", function()
    local op = server:create {}
    local rec = recorder()
    local t = H.fake_time()
    server:fault { match = "get", status = 503 }
    server:fault { match = "get", status = 429 }
    server:fault { match = "get", drop = "before" }
    vertexops.get(op.name, nil, H.timed_opts(server, t, { hooks = rec.hooks }))
    local retries = rec.of("on_retry")
    assert.are.equal(#server:log("get") - 1, #retries)
    assert.are.same({ "http_503", "http_429" }, { retries[1].reason, retries[2].reason })
    assert.are.equal(rec.of("on_attempt", "end")[3].tag, retries[3].reason) -- the transport failure's tag
    assert.is_truthy(retries[3].reason:find("Error$"))
    for i, r in ipairs(retries) do
      assert.are.equal(i, r.attempt)
      assert.are.equal(t.delays[i], r.delay)
      assert.are.equal("get", r.call)
    end
  end)

  it("fire on_call at the start and end of a call: ok, attempts as the fake logged them, status, duration (its clock)", function()
    local op = server:create {}
    local rec = recorder()
    local t = H.fake_time()
    server:fault { match = "get", status = 503 }
    vertexops.get(op.name, nil, H.timed_opts(server, t, { hooks = rec.hooks }))
    local s, e = rec.of("on_call", "start"), rec.of("on_call", "end")
    assert.are.equal(1, #s)
    assert.are.equal(1, #e)
    assert.are.same({ "get", op.name, 1000 }, { s[1].call, s[1].name, s[1].clock })
    assert.are.same({ true, nil, 200, #server:log("get"), 1 }, { e[1].ok, e[1].tag, e[1].status, e[1].attempts, e[1].duration })
    assert.are.equal(2, e[1].attempts)
  end)

  it("end a failed call with ok = false, its error's tag and status", function()
    local op = server:create {}
    local rec = recorder()
    server:fault { match = "delete", status = 404 }
    H.raises(vertexops.delete, op.name, nil, H.opts(server, { hooks = rec.hooks }))
    local e = rec.of("on_call", "end")[1]
    assert.are.same({ false, "HttpError", 404, 1 }, { e.ok, e.tag, e.status, e.attempts })
  end)

  it("run a client's hooks first, then the call's: both, for every event", function()
    local op = server:create {}
    local order = {}
    local client = vertexops.client(H.opts(server, { hooks = {
      on_call = function(i) order[#order + 1] = "client " .. i.phase end,
      on_attempt = function(i) order[#order + 1] = "client attempt " .. i.phase end } }))
    client:cancel(op.name, nil, { hooks = { on_call = function(i) order[#order + 1] = "call " .. i.phase end,
      on_attempt = function(i) order[#order + 1] = "call attempt " .. i.phase end } })
    client:close()
    assert.are.same({ "client start", "call start", "client attempt start", "call attempt start",
      "client attempt end", "call attempt end", "client end", "call end" }, order)
  end)

  it("fire on_poll once per round of a wait, done on the last, with the delay slept before the next", function()
    local t = H.virtual_time(server)
    local op = server:create { done_after = 10 }
    local rec = recorder()
    vertexops.wait(op.name, nil, H.timed_opts(server, t, { strategy = "poll", hooks = rec.hooks,
      polling = { initial_delay = 5, multiplier = 1 } }))
    local polls = rec.of("on_poll")
    assert.are.equal(#server:log("get"), #polls)
    assert.are.equal(3, #polls)
    for i, p in ipairs(polls) do
      assert.are.same({ "wait", op.name, i }, { p.call, p.name, p.round })
      assert.are.equal(i == 3, p.done)
      assert.are.equal(t.delays[i], p.delay)
    end
    local e = rec.of("on_call", "end")
    assert.are.same({ "wait", true, 3 }, { e[1].call, e[1].ok, e[1].attempts })
  end)

  it("fire on_token around a token fetch with the credential type, never the token", function()
    local dir = H.fake.tmpdir()
    local path = H.authorized_user(dir .. "/user.json", server.endpoint)
    local op = server:create {}
    local rec = recorder()
    local o = H.opts(server, { hooks = rec.hooks, credentials = path })
    o.token = nil
    vertexops.get(op.name, nil, o)
    os.execute("rm -rf '" .. dir .. "'")
    local s, e = rec.of("on_token", "start"), rec.of("on_token", "end")
    assert.are.equal(#server:log("token"), #e)
    assert.are.same({ 1, "authorized_user", "authorized_user", true }, { #s, s[1].source, e[1].source, e[1].ok })
    assert.are.equal("number", type(e[1].duration))
    -- the token request is not an attempt of the call: on_attempt saw the GET only
    assert.are.equal(#server:log("get"), #rec.of("on_attempt", "end"))
    local issued = server:log("get")[1].headers.authorization:match("^Bearer (.+)$")
    assert.is_nil(strings(rec.events):find(issued, 1, true))
    assert.is_nil(strings(rec.events):find("test-refresh", 1, true))
  end)

  it("fire on the non-blocking path (client:start, the multi handle) with libcurl's timings", function()
    local op = server:create {}
    local rec = recorder()
    local client = vertexops.client(H.opts(server, { hooks = rec.hooks }))
    local r = client:start("cancel", op.name)
    assert.is_true(r:wait())
    client:close()
    local ends = rec.of("on_attempt", "end")
    assert.are.equal(#server:log("cancel"), #ends)
    assert.are.same({ 200, "curl" }, { ends[1].status, ends[1].transport })
    assert.are.equal("number", type(ends[1].timings.total))
    assert.is_true(ends[1].bytes_received > 0)
  end)

  describe("that raise", function()
    it("do not fail the call, which goes on; the errors are counted in client:stats()", function()
      local op = server:create {}
      local client = vertexops.client(H.opts(server, { hooks = {
        on_call = function() error("broken on_call") end,
        on_attempt = function() error({ "not even a string" }) end } }))
      assert.is_true(client:cancel(op.name))
      assert.is_true(client:cancel(op.name))
      assert.are.equal(2, #server:log("cancel"))
      local st = client:stats()
      assert.are.equal(8, st.hook_errors) -- 2 calls x (on_call + on_attempt) x (start + end)
      assert.are.equal("string", type(st.last_hook_error))
      client:close()
    end)

    it("are logged once per hook function through the log option, at warn", function()
      local op = server:create {}
      local lines = {}
      local client = vertexops.client(H.opts(server, { log = function(level, line) lines[#lines + 1] = level .. " " .. line end,
        hooks = { on_attempt = function() error("broken hook") end } }))
      client:cancel(op.name)
      client:cancel(op.name)
      client:close()
      local errs = {}
      for _, l in ipairs(lines) do if l:find("hook_error", 1, true) then errs[#errs + 1] = l end end
      assert.are.equal(1, #errs)
      assert.is_truthy(errs[1]:find('^warn vertexops hook_error hook=on_attempt error=".*broken hook"$'), errs[1])
    end)
  end)

  describe("request headers", function()
    it("added by on_attempt at its start are sent on that attempt", function()
      local op = server:create {}
      local n = 0
      vertexops.cancel(op.name, nil, H.opts(server, { hooks = { on_attempt = function(i)
        if i.phase == "start" then
          n = n + 1
          i.headers["X-Request-Id"] = "req-" .. n
        end
      end } }))
      assert.are.equal("req-1", server:log("cancel")[1].headers["x-request-id"])
    end)

    it("refuse Authorization, Host, Content-Length and x-goog-* with a ValueError caught like any hook error", function()
      local op = server:create {}
      local errs = {}
      local client = vertexops.client(H.opts(server, { hooks = { on_attempt = function(i)
        if i.phase ~= "start" then return end
        i.headers["x-ok"] = "yes"
        for _, name in ipairs { "Authorization", "host", "Content-Length", "x-goog-user-project", "X-Goog-Api-Key" } do
          local ok, err = pcall(function() i.headers[name] = "evil" end)
          errs[#errs + 1] = not ok and err.tags[1] == "ValueError" and tostring(err):find(name, 1, true) and name or tostring(err)
        end
        i.headers.Authorization = "Bearer stolen" -- uncaught: the hook fails, the call goes on
      end } }))
      assert.is_true(client:cancel(op.name))
      assert.are.same({ "Authorization", "host", "Content-Length", "x-goog-user-project", "X-Goog-Api-Key" }, errs)
      assert.are.equal(1, client:stats().hook_errors)
      client:close()
      local h = server:log("cancel")[1].headers
      assert.are.same({ "yes", "Bearer test-token" }, { h["x-ok"], h.authorization })
      assert.is_nil(h["x-goog-user-project"])
    end)

    it("refuse a name that is no HTTP token and a value with a line break", function()
      for _, kv in ipairs { { "bad name", "v" }, { "x-a", "v\r\nx-b: smuggled" }, { "x-a", 42 } } do
        local ok, err = pcall(hooks.check_header, kv[1], kv[2])
        assert.is_false(ok)
        assert.are.equal("ValueError", err.tags[1])
      end
    end)
  end)

  describe("trace context", function()
    it("sends the traceparent and tracestate options on every attempt", function()
      local op = server:create {}
      local t = H.fake_time()
      server:fault { match = "cancel", status = 503 }
      vertexops.cancel(op.name, nil, H.timed_opts(server, t, { traceparent = TP, tracestate = "vx=1,other=2" }))
      local log = server:log("cancel")
      assert.are.equal(2, #log)
      for _, e in ipairs(log) do
        assert.are.same({ TP, "vx=1,other=2" }, { e.headers.traceparent, e.headers.tracestate })
      end
    end)

    it("takes a traceparent a hook provides over the option's, which the hook can read", function()
      local op = server:create {}
      local seen
      vertexops.cancel(op.name, nil, H.opts(server, { traceparent = TP, hooks = { on_attempt = function(i)
        if i.phase == "start" then
          seen = i.headers.traceparent
          i.headers.traceparent = TP2
        end
      end } }))
      assert.are.equal(TP, seen)
      assert.are.equal(TP2, server:log("cancel")[1].headers.traceparent)
    end)

    it("refuses a traceparent that is not W3C's with a ValueError naming the option, before any request", function()
      for _, bad in ipairs { "", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", TP:upper(),
          "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
          "ff" .. TP:sub(3), TP .. "-extra", "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" } do
        local err = H.raises(vertexops.cancel, H.NAME .. "1", nil, H.opts(server, { traceparent = bad }))
        assert.are.equal("ValueError", err.tags[1], bad)
        assert.is_truthy(tostring(err):find("option 'traceparent'", 1, true))
      end
      -- a later version may carry more after a '-'
      assert.is_true(pcall(require("vertexops.core").check_options, { traceparent = "01" .. TP:sub(3) .. "-more" }))
      assert.are.equal(0, #server:log())
      local err = H.raises(vertexops.client, { tracestate = ("x"):rep(513) })
      assert.are.equal("ValueError", err.tags[1])
      err = H.raises(vertexops.client, { traceparent = 1 })
      assert.are.equal("TypeError", err.tags[1])
    end)
  end)

  describe("log option", function()
    it("receives one logfmt line per attempt with fixed keys, and one per retry", function()
      local op = server:create {}
      local lines = {}
      local t = H.fake_time()
      server:fault { match = "cancel", status = 503 }
      vertexops.cancel(op.name, nil, H.timed_opts(server, t, { log = function(level, line)
        lines[#lines + 1] = level .. " " .. line end }))
      local url = server.endpoint:gsub("{region}", "us-central1") .. "/v1beta1/" .. op.name .. ":cancel"
      assert.are.equal(3, #lines)
      assert.is_truthy(lines[1]:find("^warn vertexops attempt call=cancel method=POST url=" .. url:gsub("%p", "%%%0")
        .. " attempt=1 status=503 tag=HttpError ms=%d+ transport=curl$"), lines[1])
      assert.are.equal("info vertexops retry call=cancel attempt=1 reason=http_503 delay=1", lines[2])
      assert.is_truthy(lines[3]:find("^info vertexops attempt call=cancel .* attempt=2 status=200 tag= ms=%d+ transport=curl$"),
        lines[3])
    end)
  end)

  describe("secrets", function()
    it("are in no info and no log line: the token, the API key, Authorization", function()
      local KEY = "AIzaSy-hooks-secret-0123456789abcdef"
      server:api_keys { KEY }
      local op = server:create {}
      local rec, lines = recorder(), {}
      local t = H.fake_time()
      server:fault { match = "get", status = 503 }
      local o = H.timed_opts(server, t, { api_key = KEY, hooks = rec.hooks, log = function(_, l) lines[#lines + 1] = l end })
      o.token = nil
      vertexops.get(op.name, nil, o)
      vertexops.cancel(op.name, nil, H.opts(server, { hooks = rec.hooks, log = function(_, l) lines[#lines + 1] = l end }))
      assert.are.equal(3, #server:log())
      local all = strings(rec.events) .. "\n" .. table.concat(lines, "\n")
      for _, secret in ipairs { KEY, "test-token", "Bearer", "uthorization" } do
        assert.is_nil(all:find(secret, 1, true), secret)
      end
    end)

    it("a key= query value of a URL is shown as key=REDACTED", function()
      assert.are.equal("https://h/x?a=1&key=REDACTED&b=2", hooks.redact_url("https://h/x?a=1&key=s3cr3t&b=2"))
      assert.are.equal("https://h/x?KEY=REDACTED", hooks.redact_url("https://h/x?KEY=s3cr3t"))
      assert.are.equal("https://h/x?monkey=1", hooks.redact_url("https://h/x?monkey=1"))
    end)
  end)
end)

describe("hooks around bulk and composite calls", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  local function calls(rec)
    local out = {}
    for _, e in ipairs(rec.events) do
      if e[1] == "on_call" then out[#out + 1] = e[2].phase .. " " .. e[2].call end
    end
    return out
  end

  it("fire on_call once around cancel_many, and on_attempt for each of its cancels", function()
    local a, b = server:create {}, server:create {}
    local rec = recorder()
    vertexops.cancel_many({ a.name, b.name }, nil, H.opts(server, { hooks = rec.hooks }))
    assert.are.same({ "start cancel_many", "end cancel_many" }, calls(rec))
    assert.are.equal(#server:log("cancel"), #rec.of("on_attempt", "end"))
    assert.are.equal(2, rec.of("on_call", "end")[1].attempts)
  end)

  it("fire on_call once around cancel_all with the requests it made", function()
    server:create {}
    server:create {}
    local rec = recorder()
    local summary = vertexops.cancel_all(H.PARENT, nil, H.opts(server, { hooks = rec.hooks }))
    local ends = rec.of("on_call", "end")
    assert.are.equal("cancel_all", ends[#ends].call)
    assert.are.equal(summary.requests, ends[#ends].attempts)
    assert.are.equal(#server:log(), #rec.of("on_attempt", "end"))
  end)

  it("fire on_call once around cancel_and_wait, counting the cancel and the wait's requests", function()
    local t = H.virtual_time(server)
    local op = server:create { done_after = 3, cancel = "ignore" }
    local rec = recorder()
    vertexops.cancel_and_wait(op.name, nil, H.timed_opts(server, t, { hooks = rec.hooks, strategy = "poll" }))
    assert.are.same({ "start cancel_and_wait", "end cancel_and_wait" }, calls(rec))
    assert.are.equal(#server:log(), rec.of("on_call", "end")[1].attempts)
    assert.are.equal(#server:log("get"), #rec.of("on_poll"))
  end)
end)

describe("core handle:info()", function()
  local fake = H.fake_server()

  it("gives the last transfer's status, libcurl's timings and sizes, and nothing of the request", function()
    local core = require "vertexops.core"
    local server = fake.server
    local op = server:create {}
    local h = core.handle()
    local req = core.build("get", op.name, nil, H.opts(server))
    req.ca_file = server.ca_file
    assert.is_true((h:call(req, "test-token")))
    local info = h:info()
    h:close()
    assert.are.equal(200, info.status)
    for _, k in ipairs { "connect", "tls", "first_byte", "total" } do assert.are.equal("number", type(info[k]), k) end
    assert.is_true(info.connect <= info.tls and info.tls <= info.first_byte and info.first_byte <= info.total)
    assert.is_true(info.bytes_sent > 0 and info.bytes_received > 0)
    for _, v in pairs(info) do assert.are.equal("number", type(v)) end
    assert.are.equal(1, #server:log())
  end)
end)

describe("a log function that raises", function()
  local fake = H.fake_server()

  it("does not fail the call either, and is counted in client:stats()", function()
    local server = fake.server
    local op = server:create {}
    local client = vertexops.client(H.opts(server, { log = function() error("log broken") end }))
    assert.is_true(client:cancel(op.name))
    local st = client:stats()
    client:close()
    assert.are.equal(1, st.hook_errors)
    assert.is_truthy(st.last_hook_error:find("^log: .*log broken"))
  end)
end)

describe("the observer of a call's options", function()
  it("does not keep the options or the client alive (LuaJIT and Lua 5.1 keep a weak key its value reaches)", function()
    local probe = setmetatable({}, { __mode = "k" })
    for _ = 1, 50 do
      local client = vertexops.client { hooks = { on_call = function() end } }
      local o = { hooks = { on_attempt = function() end }, traceparent = TP, log = function() end }
      client.base = o -- as Client:_options keeps its own
      assert.is_table(hooks.observe(client, o))
      probe[o], probe[client] = true, true
      client:close()
    end
    collectgarbage()
    collectgarbage()
    assert.is_nil(next(probe))
  end)
end)
