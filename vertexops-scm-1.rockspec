rockspec_format = "3.0"
package = "vertexops"
version = "scm-1"
source = {
  url = "git+file://.",
}
description = {
  summary = "Cancel, watch and wait for Google Vertex AI long-running operations",
  detailed = [[
    A C module over libcurl and OpenSSL (vertexops.core) and a Lua front (vertexops) with the
    semantics of the Google Cloud Workflows connector
    googleapis.aiplatform.v1beta1.projects.locations.operations: tagged errors, retries,
    deadlines, connection reuse.
    Needs libcurl >= 7.85.0 (checked when building and when loading), OpenSSL >= 1.1.1, libhiredis 0.14, lua-cjson 2.1.
    vertexops.testing, a fake Vertex server for users' tests (docs/fake.md; `vertexops fake`),
    drives it with LuaSocket and needs at run time the openssl command, nginx and its lua module
    (Debian: openssl nginx libnginx-mod-http-lua).
  ]],
  license = "MIT",
  labels = { "google", "vertex", "http", "curl" },
}
dependencies = {
  "lua >= 5.1",
  "lua-cjson",
  "luasocket", -- vertexops.testing only (control requests to the fake server)
}
external_dependencies = {
  CURL = { library = "curl" },
  CRYPTO = { library = "crypto" },
  HIREDIS = { header = "hiredis/hiredis.h", library = "hiredis" }, -- option rate.redis (csrc/redis.c)
}
build = {
  type = "builtin",
  modules = {
    ["vertexops.core"] = {
      -- every csrc/*.c (spec/14_docs_packaging_spec.lua checks)
      sources = { "csrc/buf.c", "csrc/error.c", "csrc/h1.c", "csrc/handle.c", "csrc/jobs.c", "csrc/json.c",
                  "csrc/jwt.c", "csrc/module.c", "csrc/multi.c", "csrc/options.c", "csrc/reader.c", "csrc/redis.c", "csrc/request.c",
                  "csrc/response.c", "csrc/share.c", "csrc/sigv4.c", "csrc/spawn.c", "csrc/sys.c", "csrc/url.c" },
      libraries = { "curl", "crypto", "pthread", "hiredis" },
      defines = { "_POSIX_C_SOURCE=200809L" },
      incdirs = { "$(CURL_INCDIR)", "$(CRYPTO_INCDIR)", "$(HIREDIS_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)", "$(CRYPTO_LIBDIR)", "$(HIREDIS_LIBDIR)" },
    },
    -- every lua/vertexops/**/*.lua (spec/14_docs_packaging_spec.lua checks)
    vertexops = "lua/vertexops/init.lua",
    -- the credentials: the provider, the chain and one module per credential type
    ["vertexops.auth"] = "lua/vertexops/auth/init.lua",
    ["vertexops.auth.authorized_user"] = "lua/vertexops/auth/authorized_user.lua",
    ["vertexops.auth.aws"] = "lua/vertexops/auth/aws.lua",
    ["vertexops.auth.common"] = "lua/vertexops/auth/common.lua",
    ["vertexops.auth.executable"] = "lua/vertexops/auth/executable.lua",
    ["vertexops.auth.external_account"] = "lua/vertexops/auth/external_account.lua",
    ["vertexops.auth.external_account_authorized_user"] = "lua/vertexops/auth/external_account_authorized_user.lua",
    ["vertexops.auth.file"] = "lua/vertexops/auth/file.lua",
    ["vertexops.auth.impersonate"] = "lua/vertexops/auth/impersonate.lua",
    ["vertexops.auth.impersonated"] = "lua/vertexops/auth/impersonated.lua",
    ["vertexops.auth.metadata"] = "lua/vertexops/auth/metadata.lua",
    ["vertexops.auth.service_account"] = "lua/vertexops/auth/service_account.lua",
    ["vertexops.auth.shared"] = "lua/vertexops/auth/shared.lua",
    ["vertexops.auth.sources"] = "lua/vertexops/auth/sources.lua",
    ["vertexops.auth.sts"] = "lua/vertexops/auth/sts.lua",
    ["vertexops.auth.token"] = "lua/vertexops/auth/token.lua",
    ["vertexops.client"] = "lua/vertexops/client.lua",
    ["vertexops.deadline"] = "lua/vertexops/deadline.lua",
    ["vertexops.errors"] = "lua/vertexops/errors.lua",
    ["vertexops.host"] = "lua/vertexops/host.lua",
    ["vertexops.operation"] = "lua/vertexops/operation.lua",
    ["vertexops.job"] = "lua/vertexops/job.lua",
    ["vertexops.options"] = "lua/vertexops/options.lua",
    ["vertexops.request"] = "lua/vertexops/request.lua",
    ["vertexops.retry"] = "lua/vertexops/retry.lua",
    ["vertexops.proxy"] = "lua/vertexops/proxy.lua",
    ["vertexops.mtls"] = "lua/vertexops/mtls.lua",
    ["vertexops.rate"] = "lua/vertexops/rate.lua",
    ["vertexops.rate_redis"] = "lua/vertexops/rate_redis.lua",
    ["vertexops.rate_shared"] = "lua/vertexops/rate_shared.lua",
    ["vertexops.hooks"] = "lua/vertexops/hooks.lua",
    ["vertexops.log"] = "lua/vertexops/log.lua",
    ["vertexops.metrics"] = "lua/vertexops/metrics.lua",
    ["vertexops.safe"] = "lua/vertexops/safe.lua",
    ["vertexops.nginx"] = "lua/vertexops/nginx.lua",
    ["vertexops.wait"] = "lua/vertexops/wait.lua",
    ["vertexops.fleet"] = "lua/vertexops/fleet.lua",
    -- the transports of one exchange (vertexops.transport chooses one)
    ["vertexops.transport"] = "lua/vertexops/transport/init.lua",
    ["vertexops.transport.cosocket"] = "lua/vertexops/transport/cosocket.lua",
    ["vertexops.transport.curl"] = "lua/vertexops/transport/curl.lua",
    ["vertexops.transport.slots"] = "lua/vertexops/transport/slots.lua",
    ["vertexops.transport.thread"] = "lua/vertexops/transport/thread.lua",
    -- the command line (bin/vertexops is its launcher)
    ["vertexops.cli"] = "lua/vertexops/cli/init.lua",
    ["vertexops.cli.args"] = "lua/vertexops/cli/args.lua",
    ["vertexops.cli.calls"] = "lua/vertexops/cli/calls.lua",
    ["vertexops.cli.cancel_all"] = "lua/vertexops/cli/cancel_all.lua",
    ["vertexops.cli.commands"] = "lua/vertexops/cli/commands.lua",
    ["vertexops.cli.completion"] = "lua/vertexops/cli/completion.lua",
    ["vertexops.cli.context"] = "lua/vertexops/cli/context.lua",
    ["vertexops.cli.fake"] = "lua/vertexops/cli/fake.lua",
    ["vertexops.cli.log_http"] = "lua/vertexops/cli/log_http.lua",
    ["vertexops.cli.help"] = "lua/vertexops/cli/help.lua",
    ["vertexops.cli.render"] = "lua/vertexops/cli/render.lua",
    ["vertexops.cli.version"] = "lua/vertexops/cli/version.lua",
    -- the fake Vertex server for tests: the driver, and what nginx runs (found next to the driver;
    -- testing.SERVICE_MODULES lists them, spec/12_fake_testing_spec.lua checks)
    ["vertexops.testing"] = "lua/vertexops/testing/init.lua",
    ["vertexops.testing.server"] = "lua/vertexops/testing/server.lua",
    ["vertexops.testing.state"] = "lua/vertexops/testing/state.lua",
    ["vertexops.testing.check"] = "lua/vertexops/testing/check.lua",
    ["vertexops.testing.reply"] = "lua/vertexops/testing/reply.lua",
    ["vertexops.testing.model"] = "lua/vertexops/testing/model.lua",
    ["vertexops.testing.jobs"] = "lua/vertexops/testing/jobs.lua",
    ["vertexops.testing.faults"] = "lua/vertexops/testing/faults.lua",
    ["vertexops.testing.tokens"] = "lua/vertexops/testing/tokens.lua",
    ["vertexops.testing.sts"] = "lua/vertexops/testing/sts.lua",
    ["vertexops.testing.aws"] = "lua/vertexops/testing/aws.lua",
    ["vertexops.testing.jwt"] = "lua/vertexops/testing/jwt.lua",
    ["vertexops.testing.log"] = "lua/vertexops/testing/log.lua",
    ["vertexops.testing.control"] = "lua/vertexops/testing/control.lua",
    ["vertexops.testing.quota"] = "lua/vertexops/testing/quota.lua",
  },
  install = {
    bin = { vertexops = "bin/vertexops" },
  },
  -- into the rock's doc directory, beside README.md (luarocks doc vertexops --list): README links them
  copy_directories = { "docs" },
}
test_dependencies = { "busted" }
test = { type = "command", command = "make test" }
