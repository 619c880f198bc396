-- The command line: bin/vertexops run as a subprocess against the fake server (output, --json, exit
-- codes, progress), and vertexops.cli.main driven in-process; its table against --help and README.
local cjson = require "cjson"
local H = require "support.helper"

describe("command line", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  local function env(extra) return H.cli_env(server, extra) end
  -- runs the CLI; returns stdout, stderr, exit code
  local function cli(args, extra_env) return H.cli(server, args, extra_env) end

  it("cancels", function()
    local op = server:create {}
    local out, err, code = cli("cancel " .. op.name)
    assert.are.equal(0, code, err)
    assert.are.equal("cancel requested: " .. op.name .. "\n", out)
    assert.are.equal("cancel", server:log()[1].call)
  end)

  it("cancels and waits, printing one JSON document with --json", function()
    local op = server:create { done_after = 3600 }
    local out, err, code = cli("cancel " .. op.name .. " --wait --json")
    assert.are.equal(0, code, err)
    local doc = cjson.decode(out)
    assert.is_true(doc.cancelled)
    assert.are.equal(1, doc.operation.error.code)
  end)

  it("reports an operation that completed despite the cancel", function()
    local op = server:create { done_after = 3600, cancel = "late" }
    local out, _, code = cli("cancel " .. op.name .. " --wait")
    assert.are.equal(0, code)
    assert.matches("SUCCEEDED", out)
    assert.matches("completed before the cancel", out)
  end)

  it("gets an operation, readable by default", function()
    local op = server:create { done = true }
    local out, _, code = cli("get " .. op.name .. " --region us-central1")
    assert.are.equal(0, code)
    assert.matches("state:    SUCCEEDED", out, 1, true)
  end)

  it("lists every page with --json", function()
    for _ = 1, 5 do server:create {} end
    local out, _, code = cli("list " .. H.PARENT .. " --page-size 2 --json")
    assert.are.equal(0, code)
    assert.are.equal(5, #cjson.decode(out).operations)
    assert.are.equal(3, #server:log("list"))
  end)

  it("deletes", function()
    local op = server:create {}
    local out, _, code = cli("delete " .. op.name .. " --json")
    assert.are.equal(0, code)
    assert.is_true(cjson.decode(out).deleted)
  end)

  it("waits, and shows no progress when stderr is not a terminal", function()
    local op = server:create { done_after = 0.5, progress = true }
    local out, err, code = cli("wait " .. op.name .. " --json")
    assert.are.equal(0, code)
    assert.is_true(cjson.decode(out).done)
    assert.are.equal("", err)
  end)

  it("shows a one-line progress display on a terminal", function()
    if not H.have("script") then return pending("no script(1)") end
    -- an operation that runs past the wait's timeout: its first poll shows it RUNNING however long
    -- the command takes to start on a busy machine (an operation that ends by the clock may not)
    local op = server:create { done_after = 3600, progress = true }
    local out = H.run("script -qec '" .. H.lua_command() .. " bin/vertexops wait " .. op.name .. " --strategy poll"
      .. " --timeout 3 --ca-file " .. server.ca_file .. "' /dev/null", env())
    assert.matches("waiting%s+%d+s%s+RUNNING", out)
    assert.matches("request", out)
  end)

  it("prints nothing with --quiet", function()
    local op = server:create {}
    local out, _, code = cli("cancel " .. op.name .. " --quiet")
    assert.are.equal(0, code)
    assert.are.equal("", out)
  end)

  it("fake takes the control token from $VERTEXOPS_FAKE_CONTROL_TOKEN and prints it with --json", function()
    local outf = os.tmpname()
    local p = io.popen(("VERTEXOPS_FAKE_CONTROL_TOKEN=env-s3cret %s bin/vertexops fake --json >%s 2>&1 & echo $!")
      :format(H.lua_command(), outf))
    local pid = p:read("*l")
    p:close()
    finally(function()
      os.execute("kill -TERM " .. pid .. " 2>/dev/null")
      os.remove(outf)
    end)
    local line
    for _ = 1, 250 do -- the server starts in well under a second; 25 s catches a hang
      line = assert(io.open(outf)):read("*l")
      if line then break end
      require("vertexops.core").sleep(0.1)
    end
    assert.is_not_nil(line, "no output")
    local info = cjson.decode(line)
    assert.are.equal("env-s3cret", info.control_token)
    assert.is_true(require("vertexops.testing").attach(info):reset().ok)
  end)

  it("prints --help and exits 0", function()
    local out, _, code = cli("--help")
    assert.are.equal(0, code)
    assert.matches("usage: vertexops", out)
  end)

  it("takes whole numbers in digits only, refusing 1e3, 50.0 and 2.0 with its own message", function()
    for _, args in ipairs { "list " .. H.PARENT .. " --page-size 1e3", "list " .. H.PARENT .. " --page-size 50.0",
                            "get " .. H.NAME .. "1 --retries 2.0", "cancel-all " .. H.PARENT .. " --max-in-flight 1e3",
                            "cancel-all " .. H.PARENT .. " --max-in-flight 0x10", "list " .. H.PARENT .. " --page-size ' 5'" } do
      local _, err, code = cli(args)
      assert.are.equal(2, code, args .. ": " .. err)
      assert.matches("^vertexops: %-%-[a-z-]+ takes a whole number[^\n]* in digits, got '", err)
    end
    assert.are.same({}, server:log())
    local out, err, code = cli("list " .. H.PARENT .. " --page-size 050 --retries 0 --json")
    assert.are.equal(0, code, err)
    assert.are.same({ operations = {} }, cjson.decode(out))
    assert.matches("pageSize=50", server:log("list")[1].query, 1, true)
  end)

  describe("prints any operation the service can send", function()
    local function get_with(fields)
      local op = server:create {}
      server:fault { match = "get", body = '{"name": "' .. op.name .. '", "done": false' .. fields .. "}" }
      return op
    end

    it("shows a fractional progress percentage", function()
      local op = get_with(', "metadata": {"progressPercentage": 12.5}')
      local out, err, code = cli("get " .. op.name)
      assert.are.equal(0, code, err)
      assert.matches("progress: 12.5%", out, 1, true)
    end)

    it("shows an operation whose metadata is a list", function()
      local op = get_with(', "metadata": [1, 2, 3]')
      local out, err, code = cli("get " .. op.name)
      assert.are.equal(0, code, err)
      assert.matches("state:    RUNNING", out, 1, true)
    end)

    it("writes a number JSON cannot hold (1e400) as null with --json", function()
      local op = get_with(', "metadata": {"big": 1e400, "small": 2}')
      local out, err, code = cli("get " .. op.name .. " --json")
      assert.are.equal(0, code, err)
      local doc = cjson.decode(out)
      assert.are.equal(cjson.null, doc.metadata.big)
      assert.are.equal(2, doc.metadata.small)
    end)

    it("writes names with their slashes as they are with --json", function()
      local op = server:create {}
      local out, err, code = cli("get " .. op.name .. " --json")
      assert.are.equal(0, code, err)
      assert.matches('"name":"' .. op.name .. '"', out, 1, true)
      assert.are.equal(op.name, cjson.decode(out).name)
    end)

    it("keeps a backslash before a slash in a string with --json", function()
      local op = get_with(', "metadata": {"path": "a\\\\/b\\\\\\\\"}') -- the text a\/b\\
      local out, err, code = cli("get " .. op.name .. " --json")
      assert.are.equal(0, code, err)
      assert.are.equal("a\\/b\\\\", cjson.decode(out).metadata.path)
    end)

    it("stops a listing whose page token repeats, exit 9 (ResponseTypeError)", function()
      server:fault { match = "list", times = 20, body = cjson.encode {
        operations = { { name = H.NAME .. "1" } }, nextPageToken = "again" } }
      local _, err, code = cli("list " .. H.PARENT)
      assert.are.equal(9, code, err)
      assert.matches("again", err)
      assert.are.equal(2, #server:log("list"))
    end)

    it("reports an error that is not a vertexops error on one line, exit 1", function()
      local dir = H.fake.tmpdir()
      H.fake.write(dir .. "/vertexops.lua", 'local v = dofile("lua/vertexops/init.lua")\n'
        .. 'v.get = function() error("first line\\nsecond line") end\nreturn v\n')
      local _, err, code = cli("get " .. H.NAME .. "1", { LUA_PATH = dir .. "/?.lua;" .. os.getenv("LUA_PATH") })
      os.execute("rm -rf '" .. dir .. "'")
      assert.are.equal(1, code, err)
      assert.matches("^vertexops: [^\n]*first line[^\n]*second line\n$", err)
    end)
  end)

  describe("exit status", function()
    local cases = {
      { "usage", 2, function() return "frobnicate x" end },
      { "ValueError", 2, function() return "get " .. H.NAME .. "1%0a" end },
      { "HttpError", 4, function() return "get " .. H.NAME .. "missing" end },
      { "AuthError", 3, function() return "get " .. H.NAME .. "1", { GOOGLE_OAUTH_ACCESS_TOKEN = "" } end },
      { "ConnectionFailedError", 5, function()
        return "get " .. H.NAME .. "1 --retries 0 --endpoint http://127.0.0.1:" .. H.closed_port() end },
      { "ConnectionError", 6, function()
        local op = server:create {}
        server:fault { match = "cancel", drop = "before" }
        return "cancel " .. op.name
      end },
      { "TimeoutError", 7, function() return "wait " .. server:create {}.name .. " --timeout 0.5" end },
      { "OperationError", 8, function()
        return "wait " .. server:create { done = true, outcome = "error" }.name end },
      { "ResponseTypeError", 9, function()
        local op = server:create {}
        server:fault { match = "get", body = "<html>" }
        return "get " .. op.name
      end },
    }
    for _, c in ipairs(cases) do
      it(("is %d for %s"):format(c[2], c[1]), function()
        local args, extra = c[3]()
        local out, err, code = cli(args .. " --json", extra)
        assert.are.equal(c[2], code, err)
        if c[1] ~= "usage" then
          assert.are.equal(c[1], cjson.decode(out).error.tags[1])
          assert.matches("^vertexops: " .. c[1], err)
        end
      end)
    end
  end)
end)

-- The same command line in-process: vertexops.cli.main with an argument list and a context whose
-- output is captured (lua/vertexops/cli/context.lua), against the same fake server.
describe("command line in-process (vertexops.cli.main)", function()
  local cli = require "vertexops.cli"
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  local capture = H.capture
  -- runs main; returns stdout, stderr, status. ctx: fields of the context over the defaults (not
  -- a terminal; the fake's endpoint, CA file and token as options)
  local function main(argv, ctx) return H.cli_main(server, argv, ctx) end

  it("cancels: status 0, one line on stdout, one cancel request", function()
    local op = server:create {}
    local out, err, status = main { "cancel", op.name }
    assert.are.equal(0, status, err)
    assert.are.equal("cancel requested: " .. op.name .. "\n", out)
    assert.are.equal(1, #server:log("cancel"))
  end)

  it("gets an operation as one JSON document with --json", function()
    local op = server:create { done = true }
    local out, err, status = main { "get", op.name, "--json" }
    assert.are.equal(0, status, err)
    local doc = cjson.decode(out)
    assert.are.equal(op.name, doc.name)
    assert.is_true(doc.done)
  end)

  it("lists every page, --page-size=N asking for N a page", function()
    for _ = 1, 3 do server:create {} end
    local out, err, status = main { "list", H.PARENT, "--page-size=2" }
    assert.are.equal(0, status, err)
    assert.matches("\n3 operations\n$", out)
    assert.are.equal(2, #server:log("list"))
    assert.matches("pageSize=2", server:log("list")[1].query, 1, true)
  end)

  it("waits on virtual time, the progress display on a terminal on stderr", function()
    local t = H.virtual_time(server)
    local op = server:create { done_after = 30, progress = true }
    local out, err, status = main({ "wait", op.name, "--strategy", "poll" },
      { isatty = function(fd) return fd == 2 end, options = H.timed_opts(server, t) })
    assert.are.equal(0, status, err)
    assert.matches("state:    SUCCEEDED", out, 1, true)
    assert.matches("^\r\27%[Kwaiting%s+%d+s%s+RUNNING", err)
    assert.matches("\n$", err)
    assert.is_true(#t.delays > 0)
  end)

  it("exits with the error's status, the error as JSON on stdout and one line on stderr", function()
    local out, err, status = main { "get", H.NAME .. "missing", "--json" }
    assert.are.equal(4, status)
    assert.are.equal(404, cjson.decode(out).error.code)
    assert.matches("^vertexops: HttpError[^\n]*\n$", err)
  end)

  it("refuses a flag its command does not take with status 2, before any request", function()
    local out, err, status = main { "get", H.NAME .. "1", "--max-in-flight", "5" }
    assert.are.equal(2, status)
    assert.are.equal("", out)
    assert.are.equal("vertexops: --max-in-flight goes with cancel-all\n(see vertexops --help)\n", err)
    assert.are.same({}, server:log())
  end)

  it("fake prints its control token, and testing.attach with what it printed controls it", function()
    local testing = require "vertexops.testing"
    local out, err, seen = capture(), capture(), {}
    local status = cli.main({ "fake", "--json", "--quiet" }, {
      stdout = out, stderr = err, options = { control_token = "s3cret-token" },
      foreground = function(running) -- while it serves: what a test in another process would do
        local info = cjson.decode(out.text)
        seen.dir, seen.token = running.dir, info.control_token
        seen.reset = testing.attach(info):reset().ok
        local without = testing.attach { http_endpoint = info.http_endpoint }
        local ok, e = pcall(without.reset, without)
        seen.without = not ok and e.code
      end,
    })
    assert.are.equal(0, status, err.text)
    assert.are.equal("s3cret-token", seen.token)
    assert.is_true(seen.reset)
    assert.are.equal(401, seen.without)
    assert.is_nil(io.open(seen.dir .. "/nginx.pid"), "stopped when main returns")
  end)
end)

describe("the command line's table (vertexops.cli.commands)", function()
  local commands = require "vertexops.cli.commands"

  local function escape(s) return (s:gsub("%p", "%%%0")) end

  it("is what --help lists: every command and every flag", function()
    local text = require("vertexops.cli.help").text()
    assert.is_true(#commands.COMMANDS >= 5 and #commands.FLAGS >= 5, "the table lists next to nothing")
    for _, c in ipairs(commands.COMMANDS) do
      assert.matches("\n  " .. escape(c.name) .. "%f[ ]", text, nil, c.name)
    end
    for _, f in ipairs(commands.FLAGS) do
      assert.matches("\n  " .. escape(commands.spelling(f)) .. "%f[ \n]", text, nil, f.name)
    end
  end)

  it("is what README's command-line section lists: every command and flag, and no other flag", function()
    local readme = H.read("README.md")
    local section = readme:match("\n### Command line\n(.-)\n### ")
    assert.is_not_nil(section, "README.md has a '### Command line' section")
    for _, c in ipairs(commands.COMMANDS) do
      assert.matches("vertexops " .. escape(c.name) .. " ", section, nil, "README lacks the command " .. c.name)
    end
    for _, f in ipairs(commands.FLAGS) do
      assert.matches(escape(commands.spelling(f)) .. "%f[^%w-]", section, nil,
        "README lacks " .. commands.spelling(f))
    end
    for spelled in section:gmatch("%-%-%a[%w-]*") do
      assert.is_not_nil(commands.by_spelling[spelled], "README names " .. spelled .. ", which the table lacks")
    end
  end)

  it("gives README's exit table: each tag's status", function()
    local readme = H.read("README.md")
    local section = readme:match("\n### Command line\n(.-)\n### ")
    local n = 0
    for tag, status in pairs(commands.EXIT) do
      n = n + 1
      assert.matches("| " .. status .. " | [^|\n]*" .. tag, section, 1, false, tag .. " is not " .. status)
    end
    assert.is_true(n >= 5, n .. " exit statuses in the table: the spec would check nothing")
  end)
end)
