-- wecom.emulator.conf without a server: which load_module lines an nginx
-- gets, and the skeleton's required parts.  That the confs it renders run
-- is what every emulator, integration and openresty spec shows.

local conf = require "wecom.emulator.conf"

local PARTS = { pid = "p.pid", error_log = "e.log", temp = "t", lua_path = "LP;;", lua_cpath = "LC;;" }

local function with(extra)
    local o = {}
    for k, v in pairs(PARTS) do o[k] = v end
    for k, v in pairs(extra or {}) do o[k] = v end
    return o
end

describe("wecom.emulator.conf", function()
    describe("lua_modules", function()
        it("loads nothing into an nginx with lua-nginx-module built in", function()
            assert.same({}, conf.lua_modules("nginx version: openresty/1.25.3.1"))
            assert.same({}, conf.lua_modules("configure arguments: --add-module=../ngx_lua-0.10.26"))
            assert.same({}, conf.lua_modules("configure arguments: --add-module=/src/lua-nginx-module"))
        end)

        it("loads NDK and the Lua module into Debian's nginx, from the given directory", function()
            local version = "nginx version: nginx/1.22.1\nconfigure arguments: --with-http_ssl_module"
            assert.same({ "/usr/lib/nginx/modules/ndk_http_module.so",
                          "/usr/lib/nginx/modules/ngx_http_lua_module.so" }, conf.lua_modules(version))
            assert.same({ "/opt/m/ndk_http_module.so", "/opt/m/ngx_http_lua_module.so" },
                conf.lua_modules(version, "/opt/m"))
        end)
    end)

    describe("nginx", function()
        it("raises naming the part that is missing", function()
            for name in pairs(PARTS) do
                local o = with()
                o[name] = nil
                local ok, err = pcall(conf.nginx, o)
                assert.is_false(ok)
                assert.matches("wecom.emulator.conf.nginx: " .. name .. " must be a string (got nil)", err, 1, true)
            end
        end)

        it("puts each part in its context, dicts in name order, TLS only on ssl servers", function()
            local text = conf.nginx(with {
                modules = { "/m/a.so" }, user = "root", workers = 3, env = { "A", "B" },
                dicts = { zz = "1m", aa = "2m" }, trusted = "/ca.pem",
                http = "    # http part\n",
                servers = {
                    { listen = "127.0.0.1:1", text = "        # plain\n" },
                    { listen = "127.0.0.1:2", ssl = { cert = "/c.pem", key = "/k.pem" }, text = "        # tls\n" },
                },
            })
            assert.matches("^load_module /m/a%.so;\nuser root;\nworker_processes 3;\nenv A;\nenv B;\n", text)
            assert.matches("\npid p%.pid;\nerror_log e%.log warn;\n", text)
            assert.matches("lua_package_path 'LP;;';\n    lua_package_cpath 'LC;;';\n"
                .. "    lua_shared_dict aa 2m;\n    lua_shared_dict zz 1m;\n"
                .. "    lua_ssl_trusted_certificate /ca.pem;\n", text, 1, true)
            assert.matches("listen 127.0.0.1:1;\n        # plain\n    }", text, 1, true)
            assert.matches("listen 127.0.0.1:2 ssl;\n        ssl_certificate /c.pem;\n"
                .. "        ssl_certificate_key /k.pem;\n        # tls\n    }", text, 1, true)
            assert.matches("\n}\n$", text)
        end)

        it("leaves out what is not given", function()
            local text = conf.nginx(with())
            assert.matches("^worker_processes 1;\npid", text)
            assert.not_matches("lua_shared_dict", text, 1, true)
            assert.not_matches("lua_ssl_trusted_certificate", text, 1, true)
            assert.not_matches("server {", text, 1, true)
        end)
    end)

    it("renders the emulator's conf for its dir and port", function()
        local text = conf.render { dir = "/d", port = 8443, lua_path = "LP;;", lua_cpath = "LC;;",
            fixture = "/f/x.json", modules = {} }
        assert.matches("\npid /d/nginx.pid;\n", text, 1, true)
        assert.matches("listen 127.0.0.1:8443 ssl;\n        ssl_certificate /d/server.pem;", text, 1, true)
        assert.matches('require("wecom.emulator").init { fixture = "/f/x.json", corps = 0 }', text, 1, true)
        assert.matches("lua_ssl_trusted_certificate /d/trusted.pem;", text, 1, true)
        assert.not_matches("user root", text, 1, true)
    end)
end)
