-- The rockspec installs the C core and every Lua module into a LuaRocks tree,
-- and `require "wecom"` works from that tree alone.

local function run(cmd)
  local pipe = assert(io.popen(cmd .. " 2>&1"))
  local out = pipe:read("*a")
  local ok, _, code = pipe:close()
  if type(ok) == "number" then code = ok; ok = (code == 0) end -- Lua 5.1
  return ok, out, code
end

local function rockspec_modules()
  local env = {}
  local chunk = assert(loadfile("wecom-dev-1.rockspec", "t", env))
  if setfenv then setfenv(chunk, env) end
  chunk()
  return env.build.modules, env
end

describe("wecom-dev-1.rockspec", function()
  it("lists every Lua module of lua/wecom", function()
    local modules = rockspec_modules()
    local listed = {}
    for name, spec in pairs(modules) do
      if type(spec) == "string" then listed[spec] = name end
    end
    local ok, out = run("find lua/wecom -name '*.lua' | sort")
    assert.is_true(ok)
    local count = 0
    for file in out:gmatch("[^\n]+") do
      count = count + 1
      assert.is_not_nil(listed[file], file .. " is missing from the rockspec")
      local expected = file:gsub("^lua/", ""):gsub("/init%.lua$", ""):gsub("%.lua$", ""):gsub("/", ".")
      assert.are.equal(expected, listed[file])
    end
    assert.is_true(count > 0)
  end)

  it("installs into a tree from which wecom and wecom.core load", function()
    local tree = os.tmpname()
    os.remove(tree)
    -- build from a copy so the in-place object files stay out of the checkout
    local src = tree .. "-src"
    local ok, out = run(("mkdir -p %s && tar --exclude=./build --exclude=./.git -cf - . | tar -C %s -xf - "
      .. "&& cd %s && luarocks make --lua-version=5.4 --deps-mode=none --tree=%s wecom-dev-1.rockspec")
      :format(src, src, src, tree))
    run("rm -rf " .. src)
    assert(ok, out)
    -- a fresh interpreter that sees only the tree (and Debian's lua-cjson)
    local script = [[
      local wecom = require "wecom"
      local core = require "wecom.core"
      assert(type(wecom.new) == "function", "wecom.new")
      assert(package.searchpath("wecom.core", package.cpath):find(TREE, 1, true), "core from tree")
      assert(package.searchpath("wecom", package.path):find(TREE, 1, true), "wecom from tree")
      io.write("loaded ", core._VERSION)
    ]]
    local cmd = ("cd /tmp && LUA_PATH='%s/share/lua/5.4/?.lua;%s/share/lua/5.4/?/init.lua;;' "
      .. "LUA_CPATH='%s/lib/lua/5.4/?.so;;' lua5.4 -e %q"):format(tree, tree, tree,
      "TREE=" .. ("%q"):format(tree) .. " " .. script)
    local loaded, res = run(cmd)
    run("rm -rf " .. tree)
    assert(loaded, res)
    assert.matches("^loaded %d+%.%d+%.%d+", res)
  end)
end)
