-- The emulator's control API (faults, clock, latency, options, reset) and
-- the launcher: --fixture, --corps N, --workers 2 sharing state, several
-- emulators at once, start/stop errors.

local emu = require "helpers.emulator"
local ports = require "helpers.ports"
local cjson = require "cjson"

local shell = require "helpers.sh"
local sh, write = shell.capture, shell.write_file

local INTERP = rawget(_G, "jit") and "luajit" or "lua5.4"

describe("emulator control API", function()
    local fx, system

    emu.hooks(function(f, s) fx, system = f, s end)

    local function gettoken()
        return emu.request("GET", "/cgi-bin/gettoken",
            { query = { corpid = fx.upstream.corpid, corpsecret = system.secret } })
    end

    describe("faults", function()
        it("errcode: the next `count` requests fail with it, then the API answers again", function()
            emu.fault { path = "/cgi-bin/gettoken", count = 2, errcode = -1 }
            local _, a = gettoken()
            local _, b = gettoken()
            local _, c = gettoken()
            assert.equal(-1, a.errcode)
            assert.matches("^system busy, hint:", a.errmsg)
            assert.equal(-1, b.errcode)
            assert.equal(0, c.errcode)
        end)

        it("only hits the named path, and queues several faults in order", function()
            emu.fault { path = "cgi-bin/gettoken", errcode = 45009 }
            emu.fault { path = "/cgi-bin/gettoken", errcode = 45033 }
            local _, other = emu.request("GET", "/cgi-bin/agent/get")
            assert.equal(41001, other.errcode)
            assert.equal(45009, select(2, gettoken()).errcode)
            assert.equal(45033, select(2, gettoken()).errcode)
            assert.equal(0, select(2, gettoken()).errcode)
        end)

        it("http_status: answers that status with an HTML page", function()
            emu.fault { path = "/cgi-bin/gettoken", http_status = 502 }
            local status, data, res = gettoken()
            assert.equal(502, status)
            assert.is_nil(data)
            assert.matches("<html>", res.body)
            assert.equal(200, (gettoken()))
        end)

        it("body: answers a raw body, with an optional status", function()
            emu.fault { path = "/cgi-bin/gettoken", body = '{"errcode":0,"access_tok' }
            emu.fault { path = "/cgi-bin/gettoken", body = "", http_status = 500 }
            local status, data, res = gettoken()
            assert.equal(200, status)
            assert.is_nil(data)
            assert.equal('{"errcode":0,"access_tok', res.body)
            local status2, _, res2 = gettoken()
            assert.equal(500, status2)
            assert.equal("", res2.body)
        end)

        it("close: drops the connection without an answer", function()
            emu.fault { path = "/cgi-bin/gettoken", close = true }
            local res, err = emu.raw_request("GET", "/cgi-bin/gettoken",
                { query = { corpid = fx.upstream.corpid, corpsecret = system.secret } })
            assert.is_nil(res)
            assert.equal("transport", err.kind)
            assert.equal(0, select(2, gettoken()).errcode)
        end)

        it("delay_ms: holds the answer back (a short client timeout expires)", function()
            emu.fault { path = "/cgi-bin/gettoken", delay_ms = 5000 }
            local res, err = emu.raw_request("GET", "/cgi-bin/gettoken",
                { query = { corpid = fx.upstream.corpid, corpsecret = system.secret }, timeout = 0.5 })
            assert.is_nil(res)
            assert.truthy(err.kind == "timeout" or err.kind == "transport")
            -- the fault was used up: the next call answers at once
            local ok = emu.raw_request("GET", "/cgi-bin/gettoken",
                { query = { corpid = fx.upstream.corpid, corpsecret = system.secret }, timeout = 2 })
            assert.equal(200, ok.status)
        end)

        it("goes to requests in arrival order, and latency delays faulted answers too", function()
            emu.latency(5000)
            emu.fault { path = "/cgi-bin/gettoken", errcode = -1 }
            -- this request takes the fault on arrival, then waits out the latency
            local res = emu.raw_request("GET", "/cgi-bin/gettoken",
                { query = { corpid = fx.upstream.corpid, corpsecret = system.secret }, timeout = 0.5 })
            assert.is_nil(res)
            emu.latency(0)
            -- while that one still sleeps, the next request finds no fault left
            assert.equal(0, select(2, gettoken()).errcode)
        end)

        it("counts faulted calls in stats", function()
            emu.fault { path = "/cgi-bin/gettoken", errcode = -1 }
            gettoken()
            gettoken()
            assert.equal(2, emu.stats()["/cgi-bin/gettoken"])
        end)

        it("refuses malformed fault specs with HTTP 400", function()
            local function status_of(spec)
                return (emu.request("POST", "/__emulator/faults", { body = spec }))
            end
            assert.equal(400, status_of { errcode = -1 })
            assert.equal(400, status_of { path = "/x" })
            assert.equal(400, status_of { path = "/x", errcode = -1, close = true })
            assert.equal(400, status_of { path = "/x", errcode = "busy" })
            assert.equal(400, status_of { path = "/x", count = 0, errcode = -1 })
            assert.equal(400, status_of { path = "/x", http_status = 42 })
            assert.equal(400, status_of { path = "/x", close = false })
        end)

        it("are cleared by reset", function()
            emu.fault { path = "/cgi-bin/gettoken", count = 5, errcode = -1 }
            emu.reset()
            assert.equal(0, select(2, gettoken()).errcode)
        end)
    end)

    describe("clock", function()
        it("advances, reports and resets", function()
            local _, before = emu.request("GET", "/__emulator/clock")
            assert.equal(0, before.offset)
            local after = emu.advance(3600)
            assert.equal(3600, after.offset)
            assert.is_true(after.now - before.now >= 3600)
            emu.advance(60)
            local _, now = emu.request("GET", "/__emulator/clock")
            assert.equal(3660, now.offset)
            emu.reset()
            local _, reset = emu.request("GET", "/__emulator/clock")
            assert.equal(0, reset.offset)
            assert.equal(400, (emu.request("POST", "/__emulator/clock", { body = { advance = "1h" } })))
        end)
    end)

    describe("latency", function()
        it("delays every API answer but not the control API, until set back to 0", function()
            emu.latency(5000)
            local res, err = emu.raw_request("GET", "/cgi-bin/gettoken",
                { query = { corpid = fx.upstream.corpid, corpsecret = system.secret }, timeout = 0.5 })
            assert.is_nil(res)
            assert.truthy(err.kind == "timeout" or err.kind == "transport")
            local ping = emu.raw_request("GET", "/__emulator/ping", { timeout = 2 })
            assert.equal(200, ping.status)
            emu.latency(0)
            local ok = emu.raw_request("GET", "/cgi-bin/gettoken",
                { query = { corpid = fx.upstream.corpid, corpsecret = system.secret }, timeout = 2 })
            assert.equal(200, ok.status)
            assert.equal(400, (emu.request("POST", "/__emulator/latency", { body = { ms = -1 } })))
        end)
    end)

    describe("reset", function()
        it("restores everything: tokens, codes, tickets, jobs, rules, removed corps, faults, latency, options, "
            .. "clock, stats", function()
            local P = "/cgi-bin/corpgroup/"
            emu.options { token_ttl = 60, job_seconds = 100000 }
            local token = emu.app_token()
            local corp = fx.downstream[1]
            local down = emu.down_token(token, corp.corpid, corp.agents[1].agentid, corp.agents[1].business_type)
            local _, ticket = emu.api("GET", "/cgi-bin/get_jsapi_ticket", down)
            local code = emu.oauth_code { userid = fx.upstream.users[1].userid }
            local _, removed = emu.api("POST", P .. "corp/remove_corp", token,
                { chain_id = "ChDISTRIB01", corpid = "wwDOWNCORP01" })
            assert.equal(0, removed.errcode)
            local rule_info = { owner_corp_range = { userids = { "zhangwei" } },
                member_corp_range = { groupids = { 2 } } }
            local _, added = emu.api("POST", P .. "rule/add_rule", token,
                { chain_id = "ChDISTRIB01", rule_info = rule_info })
            assert.equal(0, added.errcode)
            local contact_list = { { corp_name = "重置测试公司",
                contact_info_list = { { name = "孙九", identity_type = 1, mobile = "13912340001" } } } }
            local _, job = emu.api("POST", P .. "import_chain_contact", token,
                { chain_id = "ChDISTRIB01", contact_list = contact_list })
            assert.equal(0, job.errcode)
            emu.fault { path = "/cgi-bin/corpgroup/rule/list_ids", count = 9, errcode = -1 }
            emu.advance(30)
            emu.latency(5000)

            emu.reset()

            local _, clock = emu.request("GET", "/__emulator/clock")
            assert.equal(0, clock.offset)
            assert.same({}, emu.stats())
            -- latency gone: answers within a short timeout
            local res = emu.raw_request("GET", "/cgi-bin/gettoken",
                { query = { corpid = fx.upstream.corpid, corpsecret = system.secret }, timeout = 2 })
            assert.equal(200, res.status)
            local _, fresh = gettoken()
            assert.is_true(fresh.expires_in > 7000)             -- token_ttl back to the default (7200)
            assert.not_equal(token, fresh.access_token)          -- old tokens forgotten
            assert.equal(40014, select(2, emu.api("GET", "/cgi-bin/agent/get", token,
                { agentid = system.agentid })).errcode)
            token = fresh.access_token
            local _, info = emu.api("GET", "/cgi-bin/auth/getuserinfo", token, { code = code })
            assert.equal(40029, info.errcode)                    -- codes forgotten
            down = emu.down_token(token, corp.corpid, corp.agents[1].agentid, corp.agents[1].business_type)
            local _, ticket2 = emu.api("GET", "/cgi-bin/get_jsapi_ticket", down)
            assert.not_equal(ticket.ticket, ticket2.ticket)      -- tickets forgotten
            local _, back = emu.api("POST", P .. "corp/get_chain_corpinfo", token,
                { chain_id = "ChDISTRIB01", corpid = "wwDOWNCORP01" })
            assert.equal(0, back.errcode)                        -- removed corp back
            local _, ids = emu.api("POST", P .. "rule/list_ids", token, { chain_id = "ChDISTRIB01" })
            assert.equal(0, ids.errcode)                         -- fault gone
            assert.same({ 1, 2 }, ids.rule_ids)                  -- added rule gone
            local _, old_job = emu.api("GET", P .. "getresult", token, { jobid = job.jobid })
            assert.equal(40058, old_job.errcode)                 -- job forgotten
            local _, again = emu.api("POST", P .. "import_chain_contact", token,
                { chain_id = "ChDISTRIB01", contact_list = contact_list })
            assert.equal(0, again.errcode)                       -- and its slot free
        end)
    end)

    describe("options and errors", function()
        it("validates options", function()
            assert.equal(400, (emu.request("POST", "/__emulator/options", { body = { nope = 1 } })))
            assert.equal(400, (emu.request("POST", "/__emulator/options", { body = { expired_errcode = 1 } })))
            assert.equal(200, (emu.request("POST", "/__emulator/options", { body = { token_ttl = 60 } })))
            local _, d = gettoken()
            assert.equal(60, d.expires_in)
        end)

        it("answers 404 for unknown control paths and 405 for wrong methods", function()
            assert.equal(404, (emu.request("GET", "/__emulator/nope")))
            assert.equal(405, (emu.request("GET", "/__emulator/reset")))
            assert.equal(405, (emu.request("POST", "/__emulator/stats", { body = {} })))
        end)

        it("serves the loaded fixture with credentials", function()
            assert.equal("wwUPSTREAMCORP", fx.upstream.corpid)
            assert.is_string(system.secret)
            assert.is_string(system.callback.token)
            assert.equal(43, #system.callback.aes_key)
        end)
    end)
end)

describe("emulator launcher", function()
    it("--corps N generates N shared downstream corps, each with an agent and a user", function()
        local e = emu.new { corps = 250 }
        local fx = e:fixture()
        assert.equal(250, #fx.downstream)
        local token, app = e:app_token()
        local seen, pages, cursor = 0, 0, nil
        repeat
            local _, d = e:api("POST", "/cgi-bin/corpgroup/corp/list_app_share_info", token,
                { agentid = app.agentid, business_type = 1, limit = 100, cursor = cursor })
            assert.equal(0, d.errcode)
            seen, pages, cursor = seen + #d.corp_list, pages + 1, d.next_cursor
        until d.ending == 1
        assert.equal(250, seen)
        assert.equal(3, pages)
        local corp = fx.downstream[250]
        local down = e:down_token(token, corp.corpid, corp.agents[1].agentid, 1)
        local _, user = e:api("GET", "/cgi-bin/user/get", down, { userid = corp.users[1].userid })
        assert.equal(0, user.errcode)
        e:stop()
    end)

    it("loads --fixture FILE and serves it back verbatim", function()
        local path = os.tmpname()
        local text = '{"upstream":{"corpid":"wwMINI","apps":[{"agentid":7,"secret":"s3cr3t","system":true,'
            .. '"callback":{"token":"t","aes_key":"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}}]}}'
        write(path, text)
        local e = emu.new { fixture = path }
        local status, _, res = e:request("GET", "/__emulator/fixture")
        assert.equal(200, status)
        assert.equal(text, res.body)
        local _, d = e:request("GET", "/cgi-bin/gettoken", { query = { corpid = "wwMINI", corpsecret = "s3cr3t" } })
        assert.equal(0, d.errcode)
        e:stop()
        os.remove(path)
    end)

    it("refuses a broken fixture with the reason on stderr", function()
        local path = os.tmpname()
        write(path, '{"upstream":{"apps":[]}}')
        local dir = shell.tmpdir("wecom-emu-spec-bad")
        local out = sh(INTERP .. " bin/wecom-emulator start --port 29999 --dir " .. dir .. " --fixture " .. path
            .. " 2>&1; echo EXIT=$?")
        assert.matches("upstream.corpid", out, 1, true)
        assert.not_matches("EXIT=0", out, 1, true)
        os.execute("rm -rf " .. dir)
        os.remove(path)
    end)

    it("runs from its #! line with only luajit or only lua5.4 on PATH (no `lua`)", function()
        local bin = os.tmpname()
        os.remove(bin)
        os.execute("mkdir -p " .. bin)
        -- the interpreter running this spec, and the tools the launcher uses
        local interp = sh("command -v " .. INTERP):gsub("%s+$", "")
        os.execute("ln -s " .. interp .. " " .. bin .. "/" .. INTERP)
        for _, tool in ipairs { "nginx", "openssl", "curl", "sleep", "mkdir", "id", "readlink", "pwd",
            "chmod", "kill", "rm" } do
            local path = sh("PATH=$PATH:/usr/sbin:/sbin command -v " .. tool):gsub("%s+$", "")
            if path ~= "" then
                os.execute("ln -s " .. path .. " " .. bin .. "/" .. tool)
            end
        end
        assert.equal("", sh("PATH=" .. bin .. " command -v lua"))
        local dir = shell.tmpdir("wecom-emu-spec-path")
        local port, out
        for _ = 1, 5 do   -- another port when this one is taken
            port = ports.pick()
            out = sh("cd bin && PATH=" .. bin .. " ./wecom-emulator start --port " .. port .. " --dir " .. dir
                .. " 2>&1; echo EXIT=$?")
            if not out:find("in use", 1, true) then
                break
            end
        end
        local stopped = sh("PATH=" .. bin .. " bin/wecom-emulator stop --dir " .. dir .. " 2>&1; echo EXIT=$?")
        os.execute("rm -rf " .. dir .. " " .. bin)
        assert.matches("WECOM_BASE_URL=https://localhost:" .. port, out, 1, true)
        assert.matches("EXIT=0", out, 1, true)
        assert.matches("EXIT=0", stopped, 1, true)
    end)

    describe("the nginx.conf it writes", function()
        -- a stand-in nginx: `-V` says what it is, starting fails (the conf stays behind)
        local function conf_for(version_text)
            local fake = os.tmpname()
            write(fake, "#!/bin/sh\nif [ \"$1\" = -V ]; then printf '%s\\n' " .. ("%q"):format(version_text)
                .. " >&2; exit 0; fi\nexit 1\n")
            os.execute("chmod +x " .. fake)
            local dir = shell.tmpdir("wecom-emu-spec-conf")
            local out = sh(INTERP .. " bin/wecom-emulator start --port 29998 --dir " .. dir .. " --nginx " .. fake
                .. " 2>&1; echo EXIT=$?")
            local conf = shell.read_file(dir .. "/nginx.conf")
            os.execute("rm -rf " .. dir)
            os.remove(fake)
            assert.matches("nginx failed to start", out, 1, true)
            return assert(conf, "no nginx.conf written")
        end

        it("has no load_module lines and no Debian Lua paths for OpenResty (lua built in)", function()
            local conf = conf_for("nginx version: openresty/1.25.3.1\n"
                .. "configure arguments: --prefix=/usr/local/openresty/nginx --add-module=../ngx_lua-0.10.26")
            assert.not_matches("load_module", conf, 1, true)
            assert.not_matches("/usr/share/lua/5.1", conf, 1, true)
            assert.matches("lua_package_path '/[^']+/%?%.lua;", conf)
            assert.matches("init_by_lua_block", conf, 1, true)
        end)

        it("loads lua-nginx-module for an nginx without it (Debian)", function()
            local conf = conf_for("nginx version: nginx/1.22.1\nconfigure arguments: --with-http_ssl_module")
            assert.matches("load_module [^;]*ngx_http_lua_module%.so;", conf)
            assert.matches("/usr/share/lua/5.1/?.lua", conf, 1, true)
        end)
    end)

    it("runs several emulators at once, each with its own state", function()
        local a = emu.new()
        local b = emu.new()
        assert.not_equal(a.base_url, b.base_url)
        local token = a:app_token()
        local _, ok = a:api("GET", "/cgi-bin/agent/get", token, { agentid = 1000002 })
        assert.equal(0, ok.errcode)
        local _, unknown = b:api("GET", "/cgi-bin/agent/get", token, { agentid = 1000002 })
        assert.equal(40014, unknown.errcode)
        -- a second start in a running dir prints its two lines again; stop leaves the other one up
        local out = sh(INTERP .. " bin/wecom-emulator start --port " .. a.port .. " --dir " .. a.dir
            .. " 2>&1; echo EXIT=$?")
        assert.matches("WECOM_BASE_URL=" .. a.base_url .. "\n.*EXIT=0", out)
        a:stop()
        assert.matches("not running", sh(INTERP .. " bin/wecom-emulator status --dir " .. a.dir .. " 2>&1"))
        assert.equal(200, (b:request("GET", "/__emulator/ping")))
        b:stop()
    end)

    it("shares state between workers (--workers 2)", function()
        local e = emu.new { workers = 2 }
        local fx = e:fixture()
        local app = fx.upstream.apps[1]
        e:fault { path = "/cgi-bin/gettoken", count = 3, errcode = -1 }
        -- a new connection per call, so both workers answer
        local cmd = {}
        for _ = 1, 16 do
            cmd[#cmd + 1] = "curl -s --cacert " .. e.ca_file .. " '" .. e.base_url
                .. "/cgi-bin/gettoken?corpid=" .. fx.upstream.corpid .. "&corpsecret=" .. app.secret .. "'; echo"
            cmd[#cmd + 1] = "curl -s --cacert " .. e.ca_file .. " '" .. e.base_url .. "/__emulator/ping'; echo"
        end
        local out = sh(table.concat(cmd, "; "))
        local tokens, busy, pids, npids = {}, 0, {}, 0
        for token in out:gmatch('"access_token":"([^"]+)"') do tokens[token] = true end
        for _ in out:gmatch('"errcode":%-1') do busy = busy + 1 end
        for pid in out:gmatch('"pid":(%d+)') do
            if not pids[pid] then pids[pid], npids = true, npids + 1 end
        end
        local ntokens = 0
        for _ in pairs(tokens) do ntokens = ntokens + 1 end
        assert.equal(2, npids)
        assert.equal(3, busy)      -- the fault was consumed exactly 3 times in all
        assert.equal(1, ntokens)   -- one token, whichever worker answered
        assert.equal(16, e:stats()["/cgi-bin/gettoken"])
        e:stop()
    end)

    it("shares every mutable thing between workers: chains, rules, jobs, codes, clock, options", function()
        local e = emu.new { workers = 2 }
        local fx = e:fixture()
        local P = "/cgi-bin/corpgroup/"
        local ordinary = emu.fixture_app(fx, false)
        -- changes made over the instance's one connection (one worker) ...
        local _, ord = e:request("GET", "/cgi-bin/gettoken",
            { query = { corpid = fx.upstream.corpid, corpsecret = ordinary.secret } })
        local token = e:app_token()
        assert.equal(0, select(2, e:api("POST", P .. "corp/remove_corp", token,
            { chain_id = "ChDISTRIB01", corpid = "wwDOWNCORP01" })).errcode)
        local rule_info = { owner_corp_range = { userids = { "zhangwei" } }, member_corp_range = { groupids = { 2 } } }
        assert.equal(3, select(2, e:api("POST", P .. "rule/add_rule", token,
            { chain_id = "ChDISTRIB01", rule_info = rule_info })).rule_id)
        e:options { job_seconds = 100000, expired_errcode = 40014 }
        local contact_list = { { corp_name = "共享状态公司",
            contact_info_list = { { name = "郑十", identity_type = 1, mobile = "13912340002" } } } }
        local _, job = e:api("POST", P .. "import_chain_contact", token,
            { chain_id = "ChDISTRIB01", contact_list = contact_list })
        local used = e:oauth_code { userid = fx.upstream.users[1].userid }
        assert.equal(0, select(2, e:api("GET", "/cgi-bin/auth/getuserinfo", token, { code = used })).errcode)
        e:advance(7300) -- every token so far expired
        token = e:app_token()
        -- ... are seen by both workers, on fresh connections
        local function url(path, query)
            return "'" .. e.base_url .. path .. emu.query_string(query) .. "'"
        end
        local function post(path, body)
            return " --next -s --cacert " .. e.ca_file .. " -H 'Content-Type: application/json' -d '"
                .. cjson.encode(body) .. "' " .. url(path, { access_token = token })
        end
        local cmd = "curl -s --cacert " .. e.ca_file .. " " .. url("/__emulator/ping")
            .. " -w '\\n' --next -s --cacert " .. e.ca_file .. " -w '\\n' "
            .. url("/cgi-bin/agent/get", { access_token = ord.access_token, agentid = ordinary.agentid })
            .. " --next -s --cacert " .. e.ca_file .. " -w '\\n' "
            .. url("/cgi-bin/auth/getuserinfo", { access_token = token, code = used })
            .. " --next -s --cacert " .. e.ca_file .. " -w '\\n' "
            .. url(P .. "getresult", { access_token = token, jobid = job.jobid })
            .. post(P .. "corp/get_chain_corpinfo", { chain_id = "ChDISTRIB01", corpid = "wwDOWNCORP01" })
            .. " -w '\\n'" .. post(P .. "rule/list_ids", { chain_id = "ChDISTRIB01" })
            .. " -w '\\n'" .. post(P .. "import_chain_contact", { chain_id = "ChDISTRIB01",
                contact_list = contact_list })
        local pids, npids = {}, 0
        for _ = 1, 30 do
            local lines = {}
            for line in sh(cmd):gmatch("[^\n]+") do lines[#lines + 1] = cjson.decode(line) end
            assert.equal(7, #lines)
            assert.equal(40014, lines[2].errcode)               -- clock and expired_errcode
            assert.equal(40029, lines[3].errcode)               -- the code was used elsewhere
            assert.equal(1, lines[4].status)                    -- the job and job_seconds
            assert.equal(40013, lines[5].errcode)               -- the corp is gone
            assert.same({ 1, 2, 3 }, lines[6].rule_ids)         -- the rule is there
            assert.equal(45033, lines[7].errcode)               -- the job slot is taken
            local pid = tostring(lines[1].pid)
            if not pids[pid] then pids[pid], npids = true, npids + 1 end
            if npids == 2 then break end
        end
        assert.equal(2, npids)
        e:stop()
    end)
end)
