-- vertexops cancel-all, in-process (vertexops.cli.main with a context of our own: captured
-- output, a terminal or not, a scripted stdin): skipped names are printed and are not a failure
-- (exit 0), --dry-run lists and sends no cancel, and on a terminal the command asks first.
-- Contract: README.md, "Command line"; docs/contract.md, "cancel_all and what a listing holds".
local cjson = require "cjson"
local H = require "support.helper"

-- Google's answer to a cancel of an operation that cannot be cancelled.
local NOT_CANCELLABLE = { match = "cancel", status = 400, content_type = "application/json",
  body = '{"error":{"code":400,"message":"Operation is not cancellable.","status":"FAILED_PRECONDITION"}}' }

describe("vertexops cancel-all (in-process)", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  -- runs main with cancel-all PARENT and argv; returns stdout, stderr, status. ctx: fields of the
  -- context over the defaults (not a terminal; the fake's endpoint, CA file and token)
  local function main(argv, ctx)
    local args = { "cancel-all", H.PARENT }
    for _, a in ipairs(argv or {}) do args[#args + 1] = a end
    return H.cli_main(server, args, ctx)
  end

  describe("skipped names", function()
    it("exit 0 when a cancel was refused FAILED_PRECONDITION and nothing failed", function()
      server:create_many(3, { done_after = 3600 })
      server:fault(NOT_CANCELLABLE)
      local out, err, status = main { "--max-in-flight", "1" }
      assert.are.equal(0, status, err)
      assert.matches("listed 3, cancelled 2, failed 0, skipped 1", out, 1, true)
      assert.matches("skipped, not cancellable: already done, or not a cancellable kind (FAILED_PRECONDITION):\n  "
        .. H.NAME .. "1001", out, 1, true)
    end)

    it("lists them in --json with their reason and error", function()
      server:create_many(2, { done_after = 3600 })
      server:fault(NOT_CANCELLABLE)
      local out, err, status = main { "--max-in-flight", "1", "--json" }
      assert.are.equal(0, status, err)
      local doc = cjson.decode(out)
      assert.are.equal(1, doc.cancelled)
      assert.are.equal(H.NAME .. "1001", doc.skipped[1].name)
      assert.are.equal("failed_precondition", doc.skipped[1].reason)
      assert.are.equal("FAILED_PRECONDITION", doc.skipped[1].error.status)
      assert.are.equal(doc.listed, doc.cancelled + #doc.skipped + #doc.failed)
    end)

    it("still exits with the failure's status when something else failed", function()
      server:create_many(3, { done_after = 3600 })
      server:fault(NOT_CANCELLABLE)
      server:fault { match = "cancel", status = 404 }
      local out, err, status = main { "--max-in-flight", "1" }
      assert.are.equal(4, status, err)
      assert.matches("listed 3, cancelled 1, failed 1, skipped 1", out, 1, true)
    end)
  end)

  -- a stdin that answers line (nil: end of input), noting how many cancels the server had seen
  -- when it was read; or, with line == false, one that must never be read
  local function answering(line)
    local box = { reads = 0 }
    function box.read(_, fmt)
      assert(line ~= false, "stdin read: the command asked")
      assert.are.equal("*l", fmt)
      box.reads = box.reads + 1
      box.cancels_before = #server:log("cancel")
      return line
    end
    return box
  end
  local TERMINAL = function() return true end
  local function calls_logged()
    local out = {}
    for _, e in ipairs(server:log()) do out[e.call] = (out[e.call] or 0) + 1 end
    return out
  end

  describe("--dry-run", function()
    it("lists what would be cancelled, sends no cancel, exits 0", function()
      server:create_many(3, { done_after = 3600 })
      local out, err, status = main { "--dry-run" }
      assert.are.equal(0, status, err)
      assert.matches("^dry run, nothing cancelled: listed 3, would cancel 3, failed 0 ", out)
      assert.matches("would cancel:\n  " .. H.NAME .. "1001\n  " .. H.NAME .. "1002\n", out, 1, true)
      assert.are.same({ list = 1 }, calls_logged())
    end)

    it("says so in --json: dry_run, cancelled 0, would_cancel", function()
      server:create_many(2, { done_after = 3600 })
      local out, err, status = main { "--dry-run", "--json" }
      assert.are.equal(0, status, err)
      local doc = cjson.decode(out)
      assert.is_true(doc.dry_run)
      assert.are.equal(0, doc.cancelled)
      assert.are.same({ H.NAME .. "1001", H.NAME .. "1002" }, doc.would_cancel)
      assert.are.equal(doc.listed, doc.cancelled + #doc.would_cancel + #doc.skipped + #doc.failed)
      assert.are.same({ list = 1 }, calls_logged())
    end)

    it("writes an empty would_cancel as []", function()
      local out, err, status = main { "--dry-run", "--json" }
      assert.are.equal(0, status, err)
      assert.matches('"would_cancel":[]', out, 1, true)
    end)

    it("never asks, even on a terminal", function()
      server:create_many(2, { done_after = 3600 })
      local _, err, status = main({ "--dry-run" }, { isatty = TERMINAL, stdin = answering(false) })
      assert.are.equal(0, status, err)
      assert.are.same({ list = 1 }, calls_logged())
    end)

    it("refuses --wait with status 2, before any request", function()
      local out, err, status = main { "--dry-run", "--wait" }
      assert.are.equal(2, status)
      assert.are.equal("", out)
      assert.are.equal("vertexops: --dry-run cannot go with --wait\n(see vertexops --help)\n", err)
      assert.are.equal(0, #server:log())
    end)
  end)

  describe("on a terminal", function()
    it("lists first and asks with the count, before any cancel", function()
      server:create_many(3, { done_after = 3600 })
      local stdin = answering("y")
      local out, err, status = main({}, { isatty = TERMINAL, stdin = stdin })
      assert.are.equal(0, status, err)
      assert.matches("cancel 3 operations under " .. H.PARENT .. "? [y/N] ", err, 1, true)
      assert.are.equal(1, stdin.reads)
      assert.are.equal(0, stdin.cancels_before)
      assert.matches("listed 3, cancelled 3, failed 0", out, 1, true)
      assert.are.same({ list = 2, cancel = 3 }, calls_logged())
    end)

    it("says 'operation' for one", function()
      server:create { done_after = 3600 }
      local _, err = main({}, { isatty = TERMINAL, stdin = answering("yes") })
      assert.matches("cancel 1 operation under " .. H.PARENT .. "? [y/N] ", err, 1, true)
    end)

    for _, answer in ipairs { "y", "Y", "yes", " YES " } do
      it("cancels on " .. ("%q"):format(answer), function()
        server:create_many(2, { done_after = 3600 })
        local _, err, status = main({}, { isatty = TERMINAL, stdin = answering(answer) })
        assert.are.equal(0, status, err)
        assert.are.equal(2, #server:log("cancel"))
      end)
    end

    for _, answer in ipairs { "n", "", "no", "yep", "y y" } do
      it("cancels nothing on " .. ("%q"):format(answer) .. ": exit 1, one list request", function()
        server:create_many(2, { done_after = 3600 })
        local out, err, status = main({}, { isatty = TERMINAL, stdin = answering(answer) })
        assert.are.equal(1, status)
        assert.are.equal("", out)
        assert.matches("%] vertexops: not confirmed: nothing cancelled\n$", err)
        assert.are.same({ list = 1 }, calls_logged())
      end)
    end

    it("cancels nothing at the end of input", function()
      server:create_many(2, { done_after = 3600 })
      local _, err, status = main({}, { isatty = TERMINAL, stdin = answering(nil) })
      assert.are.equal(1, status)
      assert.matches("? [y/N] \nvertexops: not confirmed: nothing cancelled\n", err, 1, true)
      assert.are.same({ list = 1 }, calls_logged())
    end)

    it("says it in --json when not confirmed", function()
      server:create { done_after = 3600 }
      local out, _, status = main({ "--json" }, { isatty = TERMINAL, stdin = answering("n") })
      assert.are.equal(1, status)
      assert.are.equal("not confirmed: nothing cancelled", cjson.decode(out).error.message)
    end)

    it("does not ask with --yes", function()
      server:create_many(2, { done_after = 3600 })
      local _, err, status = main({ "--yes" }, { isatty = TERMINAL, stdin = answering(false) })
      assert.are.equal(0, status, err)
      assert.is_nil(err:find("[y/N]", 1, true))
      assert.are.same({ list = 1, cancel = 2 }, calls_logged())
    end)

    it("does not ask when there is nothing to cancel", function()
      local _, err, status = main({}, { isatty = TERMINAL, stdin = answering(false) })
      assert.are.equal(0, status, err)
      assert.is_nil(err:find("[y/N]", 1, true))
    end)

    it("with --wait: asks, then cancels and waits", function()
      local t = H.virtual_time(server)
      server:create_many(2, { done_after = 3600 })
      local out, err, status = main({ "--wait", "--json" },
        { isatty = TERMINAL, stdin = answering("y"), options = H.timed_opts(server, t) })
      assert.are.equal(0, status, err)
      local doc = cjson.decode(out)
      assert.are.equal(2, doc.cancelled)
      assert.are.equal(2, #doc.wait.cancelled)
    end)

    it("exits with the listing's status when the listing before the question fails, never asking", function()
      server:create { done_after = 3600 }
      server:fault { match = "list", status = 403 }
      local _, err, status = main({}, { isatty = TERMINAL, stdin = answering(false) })
      assert.are.equal(4, status)
      assert.matches("vertexops: HttpError", err, 1, true)
      assert.are.same({ list = 1 }, calls_logged())
    end)
  end)

  describe("off a terminal", function()
    it("does not ask when stdin is not a terminal: it cancels, as a script expects", function()
      server:create_many(2, { done_after = 3600 })
      local _, err, status = main({}, { isatty = function(fd) return fd ~= 0 end, stdin = answering(false) })
      assert.are.equal(0, status, err)
      assert.are.same({ list = 1, cancel = 2 }, calls_logged())
    end)

    it("does not ask when stderr, where the question would go, is not a terminal", function()
      server:create_many(2, { done_after = 3600 })
      local _, err, status = main({}, { isatty = function(fd) return fd ~= 2 end, stdin = answering(false) })
      assert.are.equal(0, status, err)
      assert.are.same({ list = 1, cancel = 2 }, calls_logged())
    end)
  end)
end)
