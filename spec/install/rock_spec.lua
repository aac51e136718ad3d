-- The rock installs like any other, for lua5.4 and for LuaJIT, with the
-- commands README.md documents, into temporary trees; each tree is then used
-- from a directory outside the checkout: require, a call against the
-- emulator, the emulator's push, the CLI, and the busted example of
-- docs/emulator.md ("Testing your code") with wecom.testing.
-- (make rock-test; slow: two builds.)

local sh = require "helpers.sh"
local json = require "wecom.json"

local quote = sh.quote
local CHECKOUT = sh.capture("pwd"):gsub("%s+$", "")

-- run(cmd) -> ok, output (stdout and stderr)
local function run(cmd)
    local pipe = assert(io.popen("(" .. cmd .. ") 2>&1"))
    local out = pipe:read("*a")
    local ok, _, code = pipe:close()
    if type(ok) == "number" then
        ok = ok == 0
    elseif code ~= nil and code ~= 0 then
        ok = false
    end
    return ok, out
end

local function rockspec()
    local env = {}
    local chunk = assert(loadfile("wecom-dev-1.rockspec", "t", env))
    if setfenv then setfenv(chunk, env) end
    chunk()
    return env
end

-- a copy of the checkout to build from: what `git ls-files` and the working
-- tree hold, without build/ and .git
local function source_copy(root)
    local src = root .. "/src"
    assert(run("mkdir -p " .. quote(src) .. " && tar --exclude=./build --exclude=./.git --exclude=./dist -cf - . "
        .. "| tar -C " .. quote(src) .. " -xf -"))
    return src
end

describe("wecom-dev-1.rockspec", function()
    it("installs every Lua module of lua/wecom, init.lua files as <package>/init.lua", function()
        local lua = rockspec().build.install.lua
        local listed = {}
        for name, file in pairs(lua) do
            listed[file] = name
        end
        local ok, out = run("find lua/wecom -name '*.lua' | sort")
        assert.is_true(ok)
        local count = 0
        for file in out:gmatch("[^\n]+") do
            count = count + 1
            assert.is_not_nil(listed[file], file .. " is missing from the rockspec")
            local expected = file:gsub("^lua/", ""):gsub("%.lua$", ""):gsub("/", ".")
            assert.are.equal(expected, listed[file])
        end
        assert.is_true(count > 0)
    end)

    it("names the headers LuaRocks can find, a homepage, and both commands", function()
        local r = rockspec()
        assert.equal("openssl/evp.h", r.external_dependencies.CRYPTO.header)
        assert.equal("expat.h", r.external_dependencies.EXPAT.header)
        assert.equal("hiredis/hiredis.h", r.external_dependencies.HIREDIS.header)
        assert.is_string(r.description.homepage)
        assert.not_matches("/dev/null", r.source.url, 1, true)
        assert.same({ "bin/wecom-emulator", "bin/wecom" }, r.build.install.bin)
        assert.is_false(r.deploy.wrap_bin_scripts)
    end)
end)

describe("the installed rock", function()
    local root, src
    local trees = {}
    local emulators = {}

    setup(function()
        root = sh.tmpdir("wecom-rock")
        src = source_copy(root)
    end)
    teardown(function()
        for _, e in ipairs(emulators) do
            run(e.launcher .. " stop --dir " .. quote(e.dir))
        end
        run("rm -rf " .. quote(root))
    end)

    -- install(name, lua_version, extra) -> tree (the documented command, run in the copy)
    local function install(name, lua_version, extra, env)
        local tree = root .. "/" .. name
        local ok, out = run("cd " .. quote(src) .. " && " .. (env or "") .. "luarocks --lua-version=" .. lua_version
            .. " --tree=" .. quote(tree) .. " make --deps-mode=none wecom-dev-1.rockspec " .. (extra or ""))
        assert(ok, out)
        trees[name] = { tree = tree, lua_version = lua_version }
        return tree
    end

    -- in(tree, cmd): cmd in a fresh directory outside the checkout, with the
    -- tree's paths as `luarocks path` prints them
    local function in_project(t, cmd)
        local project = root .. "/project-" .. t.lua_version
        run("mkdir -p " .. quote(project))
        return run("cd " .. quote(project) .. " && eval \"$(luarocks --lua-version=" .. t.lua_version
            .. " --tree=" .. quote(t.tree) .. " path)\" && " .. cmd)
    end

    local function interpreter(t)
        return t.lua_version == "5.1" and "luajit" or "lua5.4"
    end

    it("builds for lua5.4 and leaves no object file or library in the sources", function()
        local tree = install("t54", "5.4")
        assert.truthy(sh.read_file(tree .. "/lib/lua/5.4/wecom/core.so"))
        assert.truthy(sh.read_file(tree .. "/share/lua/5.4/wecom/init.lua"))
        local _, found = run("cd " .. quote(src) .. " && find . -name '*.o' -o -name '*.so'")
        assert.equal("", found)
    end)

    it("builds for LuaJIT with LUA_INCDIR, and with `luarocks config lua_interpreter luajit`", function()
        local tree = install("tjit", "5.1", "LUA_INCDIR=/usr/include/luajit-2.1")
        assert.truthy(sh.read_file(tree .. "/lib/lua/5.1/wecom/core.so"))
        -- the persistent route, in a home of its own
        local home = root .. "/home"
        local ok, out = run("mkdir -p " .. quote(home .. "/.luarocks") .. " && HOME=" .. quote(home)
            .. " luarocks --lua-version=5.1 config lua_interpreter luajit")
        assert(ok, out)
        install("tjit2", "5.1", "", "HOME=" .. quote(home) .. " ")
        local _, found = run("cd " .. quote(src) .. " && find . -name '*.o' -o -name '*.so'")
        assert.equal("", found)
        -- the command it installed runs LuaJIT, not PUC-Rio lua5.1
        local _, trace = run("sh -x " .. quote(root .. "/tjit2/bin/wecom") .. " --version")
        assert.matches("exec luajit ", trace)
        assert.matches("\nwecom %d", trace)
    end)

    for _, name in ipairs { "t54", "tjit" } do
        describe("(" .. name .. ")", function()
            local t, base_url, ca_file

            local function start_emulator()
                if base_url then
                    return
                end
                local dir = root .. "/emu-" .. name
                local launcher = quote(t.tree .. "/bin/wecom-emulator")
                local ok, out = in_project(t, "wecom-emulator start --dir " .. quote(dir))
                assert(ok, out)
                emulators[#emulators + 1] = { launcher = launcher, dir = dir }
                base_url = out:match("WECOM_BASE_URL=(%S+)")
                ca_file = out:match("WECOM_CA_FILE=(%S+)")
            end

            before_each(function()
                t = trees[name]
                assert(t, "the " .. name .. " tree was not installed")
            end)

            it("loads wecom and wecom.core from the tree", function()
                local ok, out = in_project(t, interpreter(t) .. " -e " .. quote([[
                    local wecom = require "wecom"
                    local core = require "wecom.core"
                    local tree = ]] .. ("%q"):format(t.tree) .. [[
                    assert(package.searchpath("wecom.core", package.cpath):find(tree, 1, true), "core")
                    assert(package.searchpath("wecom", package.path):find(tree, 1, true), "wecom")
                    io.write("loaded ", wecom._VERSION, " ", core._VERSION)]]))
                assert(ok, out)
                assert.matches("^loaded %d+%.%d+%.%d+ %d+%.%d+%.%d+$", out)
            end)

            it("starts its emulator and calls it; the emulator pushes an event the SDK decrypts", function()
                start_emulator()
                assert.matches("^https://localhost:%d+$", base_url)
                local code = [[
                    local wecom = require "wecom"
                    local json = require "wecom.json"
                    local base_url, ca_file, receiver = ...
                    local http = require("wecom.core").http_session { ca_file = ca_file, timeout = 10 }
                    local res = http:request { method = "GET", url = base_url .. "/__emulator/fixture" }
                    local fx = json.decode(res.body)
                    local app = fx.upstream.apps[1]
                    local client = wecom.new { corpid = fx.upstream.corpid, secret = app.secret, agentid = app.agentid,
                                               base_url = base_url, ca_file = ca_file }
                    local chains = assert(client.chain:list())
                    -- a push to a socket of our own, read back raw
                    local socket = require "socket"
                    local server = assert(socket.bind("127.0.0.1", 0))
                    local _, port = server:getsockname()
                    local body_file = os.tmpname()
                    local f = assert(io.open(body_file, "wb"))
                    f:write(json.encode { url = "http://127.0.0.1:" .. port .. "/cb", event = "share_chain_change" })
                    f:close()
                    local pid = io.popen("curl -s --cacert '" .. ca_file .. "' --data-binary @" .. body_file .. " "
                        .. base_url .. "/__emulator/push")
                    server:settimeout(20)
                    local c = assert(server:accept())
                    c:settimeout(10)
                    local target = c:receive("*l"):match("^POST (%S+)")
                    local length = 0
                    while true do
                        local line = c:receive("*l")
                        if line == "" then break end
                        length = tonumber(line:lower():match("^content%-length:%s*(%d+)")) or length
                    end
                    local body = c:receive(length)
                    c:send("HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nsuccess")
                    c:close()
                    local answer = pid:read("*a")
                    pid:close()
                    os.remove(body_file)
                    local cb = wecom.callback.new { token = app.callback.token, aes_key = app.callback.aes_key,
                                                    receive_id = fx.upstream.corpid }
                    local event = assert(cb:decrypt(target:match("%?(.*)$"), body))
                    io.write(#chains, " chains; pushed ", event.type, "; ", answer)]]
                local script = root .. "/call-" .. name .. ".lua"
                sh.write_file(script, code)
                local ok, out = in_project(t, interpreter(t) .. " " .. quote(script) .. " " .. quote(base_url)
                    .. " " .. quote(ca_file))
                assert(ok, out)
                assert.matches("^%d+ chains; pushed share_chain_change; ", out)
                assert.matches('"status":200', out, 1, true)
            end)

            it("runs the CLI it installed", function()
                start_emulator()
                local fx = json.decode(select(2, in_project(t, "wecom-emulator fixture")))
                local app = fx.upstream.apps[1]
                local ok, out = in_project(t, "env WECOM_BASE_URL=" .. quote(base_url) .. " WECOM_CA_FILE="
                    .. quote(ca_file) .. " WECOM_CORPID=" .. fx.upstream.corpid .. " WECOM_SECRET=" .. app.secret
                    .. " WECOM_AGENTID=" .. string.format("%d", app.agentid) .. " WECOM_TOKEN_DIR="
                    .. quote(root .. "/tokens-" .. name) .. " wecom chains --format json 2>&1")
                assert(ok, out)
                local chains = json.decode(out)
                assert.is_table(chains, out)
                assert.equal(#fx.chains, #chains)
                assert.is_nil(out:find(app.secret, 1, true))
            end)

            it("runs the busted example of docs/emulator.md in a project of its own", function()
                local doc = sh.read_file(CHECKOUT .. "/docs/emulator.md")
                local example = doc:match("## Testing your code.-```lua\n(%-%- spec/[%w_]+_spec%.lua.-)```")
                assert.is_string(example, "the example is gone from docs/emulator.md")
                local file = example:match("^%-%- (spec/[%w_]+_spec%.lua)")
                local project = root .. "/project-" .. t.lua_version
                assert(run("mkdir -p " .. quote(project .. "/spec")))
                sh.write_file(project .. "/" .. file, example)
                local ok, out = in_project(t, interpreter(t) .. " /usr/bin/busted -o TAP")
                assert(ok, out)
                assert.matches("\n1%.%.%d+\n", "\n" .. out)
                assert.not_matches("not ok", out)
                assert.matches("ok 5 ", out)
            end)
        end)
    end

    it("packs a binary rock from the tree, and `make rock` a source rock that installs offline", function()
        local t = trees.t54
        local dist = root .. "/dist"
        local ok, out = run("mkdir -p " .. quote(dist) .. " && cd " .. quote(dist) .. " && luarocks --lua-version=5.4"
            .. " --tree=" .. quote(t.tree) .. " pack wecom")
        assert(ok, out)
        assert.matches("wecom%-dev%-1%.[%w_-]+%.rock", out)
        ok, out = run("make -s rock DIST=" .. quote(dist))
        assert(ok, out)
        ok, out = run("cd /tmp && luarocks --lua-version=5.4 --tree=" .. quote(root .. "/tsrc")
            .. " install --deps-mode=none " .. quote(dist .. "/wecom-dev-1.src.rock"))
        assert(ok, out)
        assert.truthy(sh.read_file(root .. "/tsrc/lib/lua/5.4/wecom/core.so"))
    end)
end)
