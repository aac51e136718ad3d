-- bin/wecom-emulator as users run it: --help, a free port without --port
-- (or with --port 0), start while running and status both eval-able, the
-- printed https://localhost URL, and pushes without a LuaJIT wecom.core
-- (the FFI stand-in).

local sh = require "helpers.sh"
local child = require "helpers.child"
local receiver = require "helpers.receiver"
local core = require "wecom.core"

local quote = sh.quote

-- launcher(args [, bin [, env]]) -> status, stdout, stderr
local function launcher(args, bin, env)
    local tmp = os.tmpname()
    local out = sh.capture((env or "") .. child.interpreter .. " " .. (bin or "bin/wecom-emulator") .. " " .. args
        .. " >" .. quote(tmp) .. " 2>" .. quote(tmp .. ".err") .. "; echo $?")
    local stdout, stderr = sh.read_file(tmp) or "", sh.read_file(tmp .. ".err") or ""
    os.remove(tmp)
    os.remove(tmp .. ".err")
    return tonumber(out:match("(%d+)%s*$")), stdout, stderr
end

local function lines_of(out)
    return out:match("^WECOM_BASE_URL=(%S+)\nWECOM_CA_FILE=(%S+)\n$")
end

local function get(base_url, ca_file, path)
    local s = core.http_session { ca_file = ca_file, timeout = 10 }
    local res, err = s:request { method = "GET", url = base_url .. path }
    s:close()
    return res, err
end

describe("wecom-emulator launcher", function()
    local dirs = {}

    local function new_dir()
        local d = sh.tmpdir("wecom-emu-launcher")
        dirs[#dirs + 1] = d
        return d
    end

    after_each(function()
        for _, d in ipairs(dirs) do
            launcher("stop --dir " .. quote(d))
            os.execute("rm -rf " .. quote(d))
        end
        dirs = {}
    end)

    it("answers --help with its usage on stdout and status 0, for itself and each command", function()
        for _, args in ipairs { "--help", "-h", "help", "start --help", "status --help" } do
            local status, out, err = launcher(args)
            assert.equal(0, status, args)
            assert.matches("^usage: wecom%-emulator start", out)
            assert.equal("", err)
        end
        local status, _, err = launcher("bogus")
        assert.equal(2, status)
        assert.matches("usage:", err)
    end)

    it("takes a free port without --port or with --port 0, and prints https://localhost:PORT", function()
        local a, b = new_dir(), new_dir()
        local sa, out_a, err_a = launcher("start --dir " .. quote(a))
        local sb, out_b, err_b = launcher("start --port 0 --dir " .. quote(b))
        assert.equal(0, sa, err_a)
        assert.equal(0, sb, err_b)
        local url_a, ca_a = lines_of(out_a)
        local url_b = lines_of(out_b)
        assert.matches("^https://localhost:%d+$", url_a)
        assert.matches("^https://localhost:%d+$", url_b)
        assert.are_not.equal(url_a, url_b)
        assert.equal(a .. "/ca.pem", ca_a)
        -- the printed URL as printed, verified against the printed CA
        local res, err = get(url_a, ca_a, "/__emulator/ping")
        assert.is_table(res, err and err.message)
        assert.equal(200, res.status)
        -- the certificate also names 127.0.0.1 (what the server listens on)
        res = get(url_a:gsub("localhost", "127.0.0.1"), ca_a, "/__emulator/ping")
        assert.equal(200, res and res.status)
    end)

    it("prints the same two lines when started again while running, and status prints them too", function()
        local d = new_dir()
        local s1, first = launcher("start --dir " .. quote(d))
        assert.equal(0, s1)
        local s2, second, err2 = launcher("start --dir " .. quote(d))
        assert.equal(0, s2, err2)
        assert.equal(first, second)
        local s3, status_out, status_err = launcher("status --dir " .. quote(d))
        assert.equal(0, s3)
        assert.equal(first, status_out)
        assert.matches("running %(pid %d+%) in ", status_err)
        -- eval-able: a shell reading it gets the variables
        local evaluated = sh.capture("eval " .. quote(status_out) .. " && echo \"$WECOM_BASE_URL|$WECOM_CA_FILE\"")
        local url, ca = lines_of(first)
        assert.equal(url .. "|" .. ca .. "\n", evaluated)
        assert.equal(0, (launcher("stop --dir " .. quote(d))))
        local s4, out4, err4 = launcher("status --dir " .. quote(d))
        assert.equal(3, s4)
        assert.equal("", out4)
        assert.matches("not running in ", err4)
    end)

    it("refuses a port outside 0..65535", function()
        local status, _, err = launcher("start --port 70000 --dir " .. quote(new_dir()))
        assert.equal(2, status)
        assert.matches("%-%-port must be in 0%.%.65535", err)
    end)

    it("pushes without a wecom.core built for LuaJIT, through the FFI stand-in", function()
        -- a copy of the launcher and the Lua files only: no build/luajit next to them
        local root = new_dir() .. "/copy"
        assert.is_true(sh.run("mkdir -p " .. quote(root .. "/bin") .. " && cp -R lua " .. quote(root)
            .. " && cp bin/wecom-emulator " .. quote(root .. "/bin/")))
        local d = new_dir()
        local bin = quote(root .. "/bin/wecom-emulator")
        -- (under LuaJIT the launcher would take the core on LUA_CPATH)
        local status, out, err = launcher("start --dir " .. quote(d), bin, "LUA_CPATH=';;' ")
        assert.equal(0, status, err)
        dirs[#dirs + 1] = d      -- stopped by after_each with the checkout's launcher (same --dir)
        assert.truthy(sh.read_file(d .. "/lua/wecom/core.lua"))
        local url, ca = lines_of(out)
        local fixture = require("wecom.json").decode(assert(get(url, ca, "/__emulator/fixture")).body)
        local app = fixture.upstream.apps[1]

        local r = receiver.start()
        local s = core.http_session { ca_file = ca, timeout = 30 }
        local res = assert(s:request { method = "POST", url = url .. "/__emulator/push",
            headers = { ["Content-Type"] = "application/json" },
            body = require("wecom.json").encode { url = r.url, agentid = app.agentid, event = "share_chain_change" } })
        s:close()
        local raw = r:wait()
        assert.equal(200, res.status, res.body)

        -- what arrived is what WeCom sends: the SDK verifies and decrypts it
        local target, body = raw:match("^POST (%S+) HTTP/1%.%d\r\n.-\r\n\r\n(.*)$")
        local cb = require("wecom").callback.new { token = app.callback.token, aes_key = app.callback.aes_key,
                                                    receive_id = fixture.upstream.corpid }
        local event, derr = cb:decrypt(target:match("%?(.*)$"), body)
        assert.is_table(event, tostring(derr))
        assert.equal("share_chain_change", event.type)
        launcher("stop --dir " .. quote(d), bin)
    end)
end)
