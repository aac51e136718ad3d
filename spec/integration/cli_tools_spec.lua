-- bin/wecom against the emulator: linked-send (--dry-run), callback-decrypt
-- of a callback the emulator pushed, the config file, the progress bar on a
-- terminal only, --help on every command, no secret on screen.

local emu = require "helpers.emulator"
local cli = require "helpers.cli"
local receiver = require "helpers.receiver"
local sh = require "helpers.sh"

local run, json = cli.run, cli.json

describe("wecom (tools)", function()
    local fx, system, info, env, dir

    cli.hooks("wecom-cli-tools", "/tokens", function(...) env, dir, fx, system, info = ... end)

    describe("linked-send", function()
        local perm

        before_each(function()
            perm = fx.linkedcorp.perm[string.format("%d", system.agentid)]
        end)

        it("--dry-run prints the message for everyone the app may reach and sends nothing", function()
            local r = run({ "linked-send", "--all", "--text", "盘点通知", "--dry-run", "--format", "json" }, env)
            assert.equal(0, r.status, r.err)
            local body = json(r)
            assert.same(perm.userids, body.touser)
            assert.same(perm.department_ids, body.toparty)
            assert.same({ content = "盘点通知" }, body.text)
            assert.equal(system.agentid, body.agentid)
            assert.matches("dry run: " .. #perm.userids .. " members", r.err)
            assert.is_nil(emu.stats()["/cgi-bin/linkedcorp/message/send"])
        end)

        it("sends, and exits 10 when WeCom refuses every recipient", function()
            local r = run({ "linked-send", "--user", perm.userids[1], "--markdown", "**hi**" }, env)
            assert.equal(0, r.status, r.err)
            assert.matches("sent to 1 members, 0 departments; 0 refused", r.err)
            assert.equal(1, emu.stats()["/cgi-bin/linkedcorp/message/send"])
            r = run({ "linked-send", "--user", "wwNOBODY/nobody", "--text", "x" }, env)
            assert.equal(10, r.status)
        end)

        it("needs recipients and exactly one message (exit status 2)", function()
            assert.equal(2, run({ "linked-send", "--text", "x" }, env).status)
            assert.equal(2, run({ "linked-send", "--all" }, env).status)
            assert.equal(2, run({ "linked-send", "--all", "--text", "a", "--markdown", "b" }, env).status)
        end)
    end)

    describe("callback-decrypt", function()
        local function capture(push)
            local r = receiver.start()
            push.url = r.url
            local answer = emu.push(push)
            local raw = r:wait()
            assert.equal(200, answer.status, answer.error)
            local file = dir .. "/captured.http"
            sh.write_file(file, raw)
            return file, raw
        end

        local function callback_env(extra)
            local e = cli.env(info, fx, system, { WECOM_CALLBACK_TOKEN = system.callback.token,
                                                  WECOM_CALLBACK_AES_KEY = system.callback.aes_key })
            for k, v in pairs(extra or {}) do
                e[k] = v
            end
            return e
        end

        it("decrypts a pushed event from the raw request, keys from the environment", function()
            local file = capture { event = "change_chain", fields = { ChangeType = "add_corp", CorpID = "wwX" } }
            local r = run({ "callback-decrypt", file, "--format", "json" }, callback_env())
            assert.equal(0, r.status, r.err)
            local event = json(r)
            assert.equal("change_chain", event.type)
            assert.equal("add_corp", event.ChangeType)
            assert.equal(fx.upstream.corpid, event.corpid)
            assert.matches("^<xml>", event.xml)
            -- the table format: field and value
            r = run({ "callback-decrypt", file }, callback_env())
            assert.matches("\nChangeType%s+add_corp\n", r.out)
            assert.not_matches(system.callback.aes_key, r.out .. r.err, 1, true)
        end)

        it("takes the body alone with --query, and the keys as flags", function()
            local _, raw = capture { event = "share_chain_change" }
            local target = raw:match("^POST (%S+) HTTP")
            local body = raw:match("\r\n\r\n(.*)$")
            local file = dir .. "/body.xml"
            sh.write_file(file, body)
            local e = cli.env(info, fx, system)
            local r = run({ "callback-decrypt", file, "--query", target, "--token", system.callback.token,
                            "--aes-key", system.callback.aes_key, "--format", "json" }, e)
            assert.equal(0, r.status, r.err)
            assert.equal("share_chain_change", json(r).type)
        end)

        it("exits 18 for a wrong token or another receive id, 3 without keys", function()
            local file = capture { event = "share_chain_change" }
            local r = run({ "callback-decrypt", file }, callback_env { WECOM_CALLBACK_TOKEN = "NotTheToken" })
            assert.equal(18, r.status)
            assert.matches("callback error %-40001", r.err)
            assert.not_matches("NotTheToken", r.err, 1, true)
            r = run({ "callback-decrypt", file, "--receive-id", "wwSOMEONEELSE" }, callback_env())
            assert.equal(18, r.status)
            assert.matches("callback error %-40005", r.err)
            assert.equal(3, run({ "callback-decrypt", file }, cli.env(info, fx, system)).status)
        end)
    end)

    describe("the config file", function()
        local function write_config(text, mode)
            local path = dir .. "/config"
            sh.write_file(path, text)
            os.execute("chmod " .. mode .. " " .. sh.quote(path))
            return path
        end

        local function bare_env(extra)
            local e = { HOME = "/nonexistent", WECOM_TOKEN_DIR = dir .. "/tokens" }
            for k, v in pairs(extra or {}) do
                e[k] = v
            end
            return e
        end

        local function config_text()
            return table.concat({
                "# the emulator's system app",
                "[emulator]",
                "corpid = " .. fx.upstream.corpid,
                "secret = " .. system.secret,
                "agentid = " .. string.format("%d", system.agentid),
                "base_url = " .. info.base_url,
                "ca_file = " .. info.ca_file,
            }, "\n") .. "\n"
        end

        it("is read from XDG_CONFIG_HOME with a --profile", function()
            os.execute("mkdir -p " .. sh.quote(dir .. "/xdg/wecom"))
            sh.write_file(dir .. "/xdg/wecom/config", config_text())
            os.execute("chmod 600 " .. sh.quote(dir .. "/xdg/wecom/config"))
            local r = run({ "--profile", "emulator", "chains", "--format", "json" },
                bare_env { XDG_CONFIG_HOME = dir .. "/xdg" })
            assert.equal(0, r.status, r.err)
            assert.equal(#fx.chains, #json(r))
        end)

        it("holding a secret, must not be readable by others (exit status 3, the secret not shown)", function()
            local path = write_config(config_text(), "644")
            local r = run({ "--config", path, "--profile", "emulator", "chains" }, bare_env())
            assert.equal(3, r.status)
            assert.matches("holds a secret and others can read it %(mode 644%): run chmod 600", r.err)
            assert.is_nil((r.err .. r.out):find(system.secret, 1, true))
            os.execute("chmod 600 " .. sh.quote(path))
            assert.equal(0, run({ "--config", path, "--profile", "emulator", "chains" }, bare_env()).status)
        end)

        it("loses to WECOM_* and to flags", function()
            local path = write_config(config_text():gsub("corpid = %S+", "corpid = wwNOTTHISONE"), "600")
            local r = run({ "chains", "--config", path, "--profile", "emulator" },
                bare_env { WECOM_CORPID = fx.upstream.corpid })
            assert.equal(0, r.status, r.err)
            r = run({ "chains", "--config", path, "--profile", "emulator", "--corpid", "wwNOSUCHCORP" },
                bare_env { WECOM_CORPID = fx.upstream.corpid })
            assert.equal(11, r.status)
        end)
    end)

    describe("on the screen", function()
        it("draws a progress bar on a terminal and none when stderr is a file", function()
            local piped = run({ "token-check", "--business-type", "1" }, env)
            assert.equal(0, piped.status)
            assert.not_matches("%[#", piped.err)
            if not sh.run("command -v script >/dev/null 2>&1") then
                pending("script(1) is not installed")
                return
            end
            -- under script(1) stdout and stderr are the terminal, both captured in out
            local tty = run({ "token-check", "--business-type", "1" }, env, { tty = true })
            assert.equal(0, tty.status, tty.out)
            assert.matches("downstream tokens %[#+%] %d+/%d+ 100%%", tty.out)
            local quiet = run({ "token-check", "--business-type", "1", "-q" }, env, { tty = true })
            assert.not_matches("%[#", quiet.out)
        end)

        it("answers --help for every command with status 0 and its usage", function()
            local r = run({ "--help" }, {})
            assert.equal(0, r.status)
            local names = {}
            for line in r.out:match("Commands:\n(.-)\n\n"):gmatch("[^\n]+") do
                names[#names + 1] = line:match("^  (%S+)")
            end
            assert.is_true(#names >= 10)
            for _, name in ipairs(names) do
                local h = run({ name, "--help" }, {})
                assert.equal(0, h.status, name)
                assert.equal("usage: wecom " .. name, h.out:match("^usage: wecom [%w-]+"))
            end
        end)

        it("never shows the secret, whatever fails", function()
            local e = cli.env(info, fx, system, { WECOM_TOKEN_DIR = dir .. "/tokens" })
            emu.fault { path = "/cgi-bin/gettoken", body = '{"errcode":40001,"errmsg":"bad secret '
                .. system.secret .. '"}' }
            local r = run({ "chains" }, e)
            assert.equal(11, r.status)
            assert.is_nil((r.out .. r.err):find(system.secret, 1, true), r.err)
        end)
    end)
end)
