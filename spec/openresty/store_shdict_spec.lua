-- wecom.store.shdict inside a real nginx (2 workers): the store contract
-- (spec/helpers/store_contract.lua, each case run in a request), and the
-- client on it against the emulator.  spec/openresty/store_shdict_site.lua
-- is the nginx side.

local cjson = require "cjson"
local emulator = require "helpers.emulator"
local nginx = require "helpers.nginx"
local contract = require "helpers.store_contract"

local CONF = [[
${modules}
${user}
worker_processes 2;
pid logs/nginx.pid;
error_log logs/error.log warn;

env SPEC_BASE_URL;
env SPEC_CORPID;
env SPEC_SECRET;
env SPEC_AGENTID;

events {
    worker_connections 1024;
}

http {
    access_log off;
    client_body_temp_path tmp/client_body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;

    lua_package_path '${root}/spec/openresty/?.lua;${lua_path}';
    lua_package_cpath '${lua_cpath}';
    lua_shared_dict contract 1m;
    lua_ssl_trusted_certificate ${emu_dir}/trusted.pem;
    lua_ssl_verify_depth 4;

    init_by_lua_block {
        require("store_shdict_site").init()
    }

    server {
        listen 127.0.0.1:${port};
        location = /contract {
            content_by_lua_block {
                require("store_shdict_site").contract()
            }
        }
        location = /call {
            content_by_lua_block {
                require("store_shdict_site").call()
            }
        }
        location = /storm {
            content_by_lua_block {
                require("store_shdict_site").storm()
            }
        }
        location = /hold_lock {
            content_by_lua_block {
                require("store_shdict_site").hold_lock()
            }
        }
    }
}
]]

describe("wecom.store.shdict inside nginx", function()
    local emu, site

    local function calls(path)
        return emu:stats()[path] or 0
    end

    setup(function()
        emu = emulator.new {}
        local fx = emu:fixture()
        local app = emulator.fixture_app(fx, true)
        site = nginx.start {
            conf = (CONF:gsub("%${emu_dir}", emu.dir)),
            env = {
                SPEC_BASE_URL = "https://localhost:" .. emu.port,
                SPEC_CORPID = fx.upstream.corpid,
                SPEC_SECRET = app.secret,
                SPEC_AGENTID = tostring(app.agentid),
            },
        }
    end)

    teardown(function()
        if site then
            site:stop()
        end
        if emu then
            emu:stop()
        end
    end)

    before_each(function()
        emu:reset()
    end)

    for _, name in ipairs(contract.names()) do
        it("keeps the store contract: " .. name, function()
            local status, body = site:request("GET", "/contract?case=" .. emulator.urlencode(name))
            assert.equal(200, status, body)
            local res = cjson.decode(body)
            assert.is_true(res.ok, res.err)
        end)
    end

    -- issue 10, item 6: WeCom hands out the same token string again while it
    -- is valid; a rejection that arrives after another caller's refetch must
    -- not drop that fresh copy
    it("makes one refetch for 50 light threads whose 40014 answers arrive one by one", function()
        assert.equal(200, (site:request("GET", "/call")))
        assert.equal(1, calls("/cgi-bin/gettoken"))
        emu:fault { path = "/cgi-bin/agent/get", errcode = 40014, count = 50 }
        local status, body = site:request("GET", "/storm?n=50&errcode=40014")
        assert.equal(200, status, body)
        local res = cjson.decode(body)
        assert.same({}, res.failed)
        assert.equal(50, res.ok)
        assert.equal(2, calls("/cgi-bin/gettoken"))
        assert.equal(1 + 2 * 50, calls("/cgi-bin/agent/get"))
    end)

    it("keeps gettoken calls bounded for 200 concurrent requests rejected with 40014", function()
        assert.equal(200, (site:request("GET", "/call")))
        assert.equal(1, calls("/cgi-bin/gettoken"))
        emu:fault { path = "/cgi-bin/agent/get", errcode = 40014, count = 200 }
        site:parallel_get("/call", 200)
        -- a refetch for each fetch some request was rejected with: the first
        -- and, as resends take faults too, one or two more
        assert.is_true(calls("/cgi-bin/gettoken") <= 4, calls("/cgi-bin/gettoken") .. " gettoken calls")
    end)

    -- issue 10, item 4
    it("serves a cold call past a lock a dead holder left within the call's timeout", function()
        local status, body = site:request("GET", "/hold_lock")
        assert.equal(200, status, body)
        assert.is_true(cjson.decode(body).locked)
        local res
        status, body = site:request("GET", "/call")
        assert.equal(200, status, body)
        res = cjson.decode(body)
        assert.is_true(res.took < 1 + 2, "the call took " .. res.took .. " s with timeout 1")
        assert.equal(1, calls("/cgi-bin/gettoken"))
        assert.same({}, site:error_lines())
    end)
end)
