-- Loading the core: luaopen_vertexops_core (the error metatable, the private cjson instance, every
-- part's metatables and functions, libcurl's global init).
return {
  setup = function() return {} end,
  run = function()
    local core = package.preload["vertexops.core"]("vertexops.core")
    assert(core.build("get", "projects/p/locations/us-central1/operations/1"))
  end,
  check = function()
    local core = package.preload["vertexops.core"]("vertexops.core")
    assert(core.build("get", "projects/p/locations/us-central1/operations/1").url:find("/operations/1$"))
  end,
}
