-- bin/wecom's 上下游 commands against the emulator, run as a user runs them:
-- chains, groups, corps (tree, json, csv), import + job, unionid; and the
-- exit status of each kind of failure.

local emu = require "helpers.emulator"
local cli = require "helpers.cli"
local sh = require "helpers.sh"
local core = require "wecom.core"

local run, json = cli.run, cli.json

describe("wecom (上下游 commands)", function()
    local fx, system, ordinary, info, env, tokens

    emu.hooks(function(f, s, o, i)
        fx, system, ordinary, info = f, s, o, i
        tokens = sh.tmpdir("wecom-cli-tokens")
        env = cli.env(info, fx, system, { WECOM_TOKEN_DIR = tokens })
    end)
    teardown(function()
        os.execute("rm -rf " .. sh.quote(tokens))
    end)

    local function chain_of(id)
        for _, c in ipairs(fx.chains) do
            if c.chain_id == id then
                return c
            end
        end
    end

    describe("chains", function()
        it("lists the chains as a table, one per line under a header", function()
            local r = run({ "chains" }, env)
            assert.equal(0, r.status, r.err)
            local lines = {}
            for line in r.out:gmatch("[^\n]+") do
                lines[#lines + 1] = line
            end
            assert.matches("^chain_id%s+chain_name$", lines[1])
            assert.equal(#fx.chains + 1, #lines)
            for i, c in ipairs(fx.chains) do
                assert.matches("^" .. c.chain_id .. "%s+" .. c.chain_name .. "$", lines[i + 1])
            end
        end)

        it("gives JSON and CSV, and only the chains an ordinary app sees", function()
            local list = json(run({ "chains", "--format", "json" }, env))
            assert.equal(#fx.chains, #list)
            local visible = json(run({ "--format", "json", "chains" }, cli.env(info, fx, ordinary)))
            local ids = {}
            for _, c in ipairs(visible) do
                ids[#ids + 1] = c.chain_id
            end
            table.sort(ids)
            assert.same({ "ChDISTRIB01", "ChSUPPLIER02" }, ids)
            local r = run({ "chains", "--format=csv" }, env)
            assert.equal("chain_id,chain_name", r.out:match("^[^\n]+"))
            assert.matches("\nChDISTRIB01,经销商网络\n", r.out, 1, true)
        end)
    end)

    describe("groups", function()
        it("draws the group tree, larger order first", function()
            local r = run({ "groups", "ChDISTRIB01" }, env)
            assert.equal(0, r.status, r.err)
            assert.equal(table.concat({
                "经销商网络 (ChDISTRIB01)",
                "├── 华北区 [2]",
                "│   └── 北京市 [3]",
                "│       └── 海淀区 [4]",
                "├── 华东区 [5]",
                "│   └── 上海市 [6]",
                "└── 华南区 [7]",
            }, "\n") .. "\n", r.out)
        end)

        it("gives each group's path in CSV", function()
            local r = run({ "groups", "ChDISTRIB01", "--format", "csv" }, env)
            assert.equal("groupid,group_name,parentid,order,path", r.out:match("^[^\n]+"))
            assert.matches("\n4,海淀区,3,100,华北区/北京市/海淀区\n", r.out, 1, true)
        end)
    end)

    describe("corps", function()
        local chain = "ChDISTRIB01"

        it("lists every corp of the chain with --pending, each with its group's path", function()
            local c = chain_of(chain)
            local names = {}
            for _, g in ipairs(c.groups) do
                names[g.groupid] = g.group_name
            end
            local list = json(run({ "corps", "--chain", chain, "--pending", "--format", "json" }, env))
            assert.equal(#c.corps, #list)
            local pending = 0
            for _, corp in ipairs(list) do
                if not corp.is_joined then
                    pending = pending + 1
                    assert.is_string(corp.pending_corpid)
                end
                local last = corp.group_path:match("([^/]+)$")
                assert.equal(names[corp.groupid], last)
            end
            assert.is_true(pending > 0)
            local joined = json(run({ "corps", "--chain", chain, "--format", "json" }, env))
            assert.equal(#c.corps - pending, #joined)
        end)

        it("starts at --group and stays there with --no-subgroups", function()
            local sub = json(run({ "corps", "--chain", chain, "--pending", "--group", "2", "--format", "json" }, env))
            local only = json(run({ "corps", "--chain", chain, "--pending", "--group", "2", "--no-subgroups",
                                    "--format", "json" }, env))
            assert.is_true(#sub > #only)
            for _, corp in ipairs(sub) do
                assert.matches("^华北区", corp.group_path)
            end
            for _, corp in ipairs(only) do
                assert.equal(2, corp.groupid)
            end
        end)

        it("draws the corps under their groups in the table format", function()
            local r = run({ "corps", "--chain", chain, "--pending" }, env)
            assert.equal(0, r.status, r.err)
            local lines = {}
            for line in r.out:gmatch("[^\n]+") do
                lines[#lines + 1] = line
            end
            assert.equal("经销商网络 (ChDISTRIB01)", lines[1])
            assert.equal(#chain_of(chain).corps .. " corps", lines[#lines])
            assert.truthy(r.out:find("\n│   └── 北京市 [3]\n", 1, true) or r.out:find("\n│   ├── 北京市 [3]\n", 1, true))
            assert.matches("\n├── pending pd%w+  ", r.out)
        end)

        it("needs --chain (exit status 2)", function()
            local r = run({ "corps" }, env)
            assert.equal(2, r.status)
            assert.matches("%-%-chain CHAIN_ID is required", r.err)
        end)
    end)

    describe("exit status per error kind", function()
        local path = "/cgi-bin/corpgroup/corp/get_chain_list"

        local function status_of(fault, extra)
            emu.fault(fault)
            local args = { "chains", "--retries", "0" }
            for _, a in ipairs(extra or {}) do
                args[#args + 1] = a
            end
            return run(args, env)
        end

        it("api 10, rate_limit 15, busy 16, decode 17, transport 12, timeout 13", function()
            local r = status_of { path = path, errcode = 48002 }
            assert.equal(10, r.status)
            assert.matches("^wecom chains: api error 48002: ", r.err)
            assert.equal("", r.out)
            assert.equal(15, status_of({ path = path, errcode = 45009 }).status)
            assert.equal(16, status_of({ path = path, errcode = -1 }).status)
            assert.equal(17, status_of({ path = path, body = "<html>gateway</html>" }).status)
            assert.equal(12, status_of({ path = path, close = true }).status)
            assert.equal(13, status_of({ path = path, delay_ms = 3000 }, { "--timeout", "1" }).status)
        end)

        it("token 11 for a wrong secret, which never shows", function()
            local bad = cli.env(info, fx, { secret = "WrongSecretValue0000000000000000000000000zz",
                                            agentid = system.agentid }, { WECOM_TOKEN_DIR = tokens })
            local r = run({ "chains" }, bad)
            assert.equal(11, r.status)
            assert.matches("^wecom chains: token error 40001", r.err)
            assert.not_matches("WrongSecret", r.err .. r.out)
        end)

        it("tls 14 when the CA is not the emulator's", function()
            local other = cli.env(info, fx, system, { WECOM_CA_FILE = "/etc/ssl/certs/ca-certificates.crt",
                                                      WECOM_TOKEN_DIR = tokens })
            local r = run({ "chains", "--no-token-cache" }, other)
            assert.equal(14, r.status, r.err)
            assert.matches("tls error", r.err)
        end)
    end)

    describe("import", function()
        local CSV = table.concat({
            "corp_name,group_path,custom_id,name,identity_type,mobile,user_custom_id",
            "命令行测试商贸,华北区/北京市,CLI001,王一,2,13800000001,",
            "命令行测试商贸,,,王二,member,13800000002,",
            "命令行测试二号,,CLI002,李三,1,+85212345678,12345",
        }, "\n") .. "\n"

        local function write_csv(text)
            local path = os.tmpname()
            sh.write_file(path, text)
            return path
        end

        it("--dry-run checks the file and prints the body; nothing reaches WeCom", function()
            local file = write_csv(CSV)
            local r = run({ "import", "ChDISTRIB01", file, "--dry-run", "--format", "json" }, env)
            os.remove(file)
            assert.equal(0, r.status, r.err)
            local body = json(r)
            assert.equal("ChDISTRIB01", body.chain_id)
            assert.equal(2, #body.contact_list)
            assert.same({ { name = "王一", identity_type = 2, mobile = "13800000001" },
                          { name = "王二", identity_type = 1, mobile = "13800000002" } },
                body.contact_list[1].contact_info_list)
            assert.equal("华北区/北京市", body.contact_list[1].group_path)
            assert.matches("dry run: 2 corps, 3 contacts; nothing sent", r.err)
            assert.is_nil(emu.stats()["/cgi-bin/corpgroup/import_chain_contact"])
        end)

        it("imports from stdin and follows the job to the end; the corps then show as pending", function()
            local r = run({ "import", "ChDISTRIB01", "-", "--interval", "0.2" }, env, { stdin = CSV })
            assert.equal(0, r.status, r.err)
            assert.matches("job %S+ submitted: 2 corps, 3 contacts", r.err)
            assert.matches("job %S+: all corps imported", r.err)
            assert.is_true(emu.stats()["/cgi-bin/corpgroup/getresult"] >= 1)
            local list = json(run({ "corps", "--chain", "ChDISTRIB01", "--pending", "--format", "json" }, env))
            local found
            for _, corp in ipairs(list) do
                if corp.corp_name == "命令行测试商贸" then
                    found = corp
                end
            end
            assert.is_table(found)
            assert.is_false(found.is_joined)
            assert.equal("华北区/北京市", found.group_path)
        end)

        it("--no-wait prints the job id; `wecom job --wait` gives the result; a second job is a rate limit",
            function()
                emu.options { job_seconds = 3600 }
                local file = write_csv(CSV)
                local r = run({ "import", "ChDISTRIB01", file, "--no-wait" }, env)
                assert.equal(0, r.status, r.err)
                local jobid = r.out:match("^(%S+)\n$")
                assert.is_string(jobid)
                local again = run({ "import", "ChDISTRIB01", file }, env)
                os.remove(file)
                assert.equal(15, again.status)
                local state = run({ "job", jobid }, env)
                assert.equal(0, state.status)
                assert.matches("^%a+\n$", state.out)
                emu.advance(3600)
                local done = run({ "job", jobid, "--wait", "--format", "json" }, env)
                assert.equal(0, done.status, done.err)
                assert.equal(1, json(done).import_status)
            end)

        it("refuses a file without the needed columns or with a bad row (exit status 4)", function()
            local file = write_csv("corp_name,name,mobile\nA,B,1\n")
            local r = run({ "import", "ChDISTRIB01", file }, env)
            assert.equal(4, r.status)
            assert.matches("no 'identity_type' column", r.err)
            sh.write_file(file, "corp_name,name,identity_type,mobile\nA,B,3,1\n")
            r = run({ "import", "ChDISTRIB01", file }, env)
            os.remove(file)
            assert.equal(4, r.status)
            assert.matches("line 2: identity_type must be 1 %(member%) or 2 %(leader%)", r.err)
            assert.is_nil(emu.stats()["/cgi-bin/corpgroup/import_chain_contact"])
        end)
    end)

    describe("unionid", function()
        -- corps the system app is shared to for 上下游: where its conversions find customers
        local function expected_external(customer)
            local shared = {}
            for _, d in ipairs(fx.downstream) do
                for _, a in ipairs(d.agents or {}) do
                    if a.shared_from == system.agentid and a.business_type == 1 and a.confirmed ~= false then
                        shared[d.corpid] = true
                    end
                end
            end
            local out = {}
            for _, e in ipairs(customer.external_userids) do
                if shared[e.corpid] then
                    out[#out + 1] = e.corpid .. "=" .. e.external_userid
                end
            end
            table.sort(out)
            return out
        end

        local function users_csv(rows)
            local lines = { "unionid,openid" }
            for _, r in ipairs(rows) do
                lines[#lines + 1] = r[1] .. "," .. r[2]
            end
            return table.concat(lines, "\n") .. "\n"
        end

        it("converts every user to its external_userids; an unknown user gets an empty record", function()
            local c1, c2 = fx.customers[1], fx.customers[2]
            local input = users_csv { { c1.unionid, c1.openid }, { "oUnknownUnionid", "oUnknown" },
                                      { c2.unionid, c2.openid } }
            local r = run({ "unionid", "-", "--format", "json" }, env, { stdin = input })
            assert.equal(0, r.status, r.err)
            local got = {}
            local unknown = 0
            for _, row in ipairs(json(r)) do
                if row.unionid == "oUnknownUnionid" then
                    unknown = unknown + 1
                    assert.is_nil(row.corpid)
                else
                    got[row.unionid] = got[row.unionid] or {}
                    table.insert(got[row.unionid], row.corpid .. "=" .. row.external_userid)
                end
            end
            assert.equal(1, unknown)
            for _, c in ipairs { c1, c2 } do
                table.sort(got[c.unionid])
                assert.same(expected_external(c), got[c.unionid])
            end
        end)

        it("writes a refused row's error and exits 1; pending_ids as CSV", function()
            local c1 = fx.customers[1]
            local input = users_csv { { c1.unionid, c1.openid }, { c1.unionid, "oNotHisOpenid" } }
            local r = run({ "unionid", "-", "--to", "pending_id", "--format", "csv" }, env, { stdin = input })
            assert.equal(1, r.status)
            local lines = {}
            for line in r.out:gmatch("[^\n]+") do
                lines[#lines + 1] = line
            end
            assert.equal("unionid,openid,pending_id,error", lines[1])
            assert.matches("^" .. c1.unionid .. "," .. c1.openid .. ",p%w+,$", lines[2])
            assert.matches("^" .. c1.unionid .. ",oNotHisOpenid,,\"?wecom api error 40058", lines[3])
            assert.matches("1 of 2 users failed", r.err)
        end)

        it("keeps to the rate budget", function()
            local rows = {}
            for i = 1, 6 do
                rows[i] = { "oUnion" .. i, "oMini" .. i }
            end
            local started = core.monotonic()
            -- (no token left from an earlier test: its first call would be counted twice)
            local r = run({ "unionid", "-", "--rate", "5/s", "--concurrency", "4", "--no-token-cache" }, env,
                { stdin = users_csv(rows) })
            local took = core.monotonic() - started
            assert.equal(0, r.status, r.err)
            assert.equal(6, emu.stats()["/cgi-bin/corpgroup/unionid_to_external_userid"])
            -- 6 calls 0.2 s apart: the last starts 1 s after the first (a lower bound only)
            assert.is_true(took >= 1.0, "took " .. took .. " s")
        end)

        it("stops at a rate limit with the records done so far (exit status 15)", function()
            emu.fault { path = "/cgi-bin/corpgroup/unionid_to_external_userid", errcode = 45009 }
            local c1 = fx.customers[1]
            local r = run({ "unionid", "-", "--concurrency", "1", "--format", "json" }, env,
                { stdin = users_csv { { c1.unionid, c1.openid }, { c1.unionid, c1.openid } } })
            assert.equal(15, r.status)
            assert.matches("stopped early", r.err)
            assert.matches("rate_limit error 45009", r.err)
        end)
    end)
end)
