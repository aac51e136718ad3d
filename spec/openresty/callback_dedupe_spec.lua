-- wecom.ngx.callback_handler with dedupe (wecom.callback.new{ dedupe =
-- wecom.store.shdict("dedupe") }) in a real nginx with 2 workers: one
-- message replayed to both workers, one after another and at the same time,
-- runs the router once; every replay gets the first delivery's answer.

local callback_nginx = require "helpers.callback_nginx"
local sh = require "helpers.sh"

local TOKEN = "DedupeHandlerTokenW3"
local AES_KEY = "RGVkdXBlSGFuZGxlclNwZWNLZXlPbmx5MTIzNDU2Nzg"
local CORPID = "wwDEDUPESPEC"

local CONF = callback_nginx.conf {
    workers = 2,
    log_level = "info",
    dicts = { dedupe = "1m", results = "1m" },
    http = [[
    # every request on a connection of its own: the kernel spreads them
    keepalive_timeout 0;
]],
    servers = { { text = [[
        header_filter_by_lua_block { require("callback_dedupe_site").tag() }
        location = /cb {
            content_by_lua_block { require("callback_dedupe_site").handle() }
        }
        location = /results {
            content_by_lua_block { require("callback_dedupe_site").results() }
        }
]] } },
}

local seq = 0
local function event_xml(event_type, extra)
    seq = seq + 1
    return callback_nginx.event_xml(event_type, { from = "zhangwei", time = 1700000000 + seq, extra = extra })
end

describe("wecom.ngx.callback_handler with dedupe, 2 workers", function()
    local t = callback_nginx.use(CONF, { token = TOKEN, aes_key = AES_KEY, receive_id = CORPID })

    -- n POSTs at once (curl --parallel) -> list of { status, body }
    local function parallel_post(requests)
        local dir = sh.tmpdir("wecom-dedupe-post")
        local cfg = {}
        for i, r in ipairs(requests) do
            sh.write_file(dir .. "/body" .. i, r.body)
            if i > 1 then
                cfg[#cfg + 1] = "next"
            end
            cfg[#cfg + 1] = 'url = "' .. t.site:url(r.path) .. '"'
            cfg[#cfg + 1] = 'data-binary = "@' .. dir .. "/body" .. i .. '"'
            cfg[#cfg + 1] = 'output = "' .. dir .. "/out" .. i .. '"'
            cfg[#cfg + 1] = 'write-out = "' .. i .. ' %{http_code}\\n"'
            cfg[#cfg + 1] = "silent"
        end
        sh.write_file(dir .. "/curl.cfg", table.concat(cfg, "\n") .. "\n")
        local out = sh.capture("curl --parallel --parallel-immediate --parallel-max " .. #requests
            .. " --max-time 20 -K " .. sh.quote(dir .. "/curl.cfg") .. " 2>/dev/null")
        local answers = {}
        for i, code in out:gmatch("(%d+) (%d+)") do
            answers[tonumber(i)] = { status = tonumber(code), body = sh.read_file(dir .. "/out" .. i) or "" }
        end
        sh.run("rm -rf " .. sh.quote(dir))
        return answers
    end

    it("runs the router once for one message replayed to both workers", function()
        local xml = event_xml("replayed")
        local workers, n = {}, 0
        for i = 1, 60 do
            -- every replay re-encrypted and re-signed, as a resend may be
            local status, answer, headers = t:post("/cb", xml)
            assert.equal(200, status)
            assert.equal("", answer)
            if not workers[headers["x-worker"]] then
                workers[headers["x-worker"]] = true
                n = n + 1
            end
            if n == 2 and i >= 10 then
                break
            end
        end
        assert.equal(2, n, "the replays never reached the second worker")
        assert.equal(1, t:json("/results").runs.replayed)
    end)

    -- n deliveries of xml at once -> { [status] = count }
    local function at_once(xml, n)
        local requests = {}
        for i = 1, n do
            local path, body = t:delivery(xml)
            requests[i] = { path = path, body = body }
        end
        local answers = parallel_post(requests)
        assert.equal(n, #answers)
        local statuses = {}
        for i = 1, n do
            statuses[answers[i].status] = (statuses[answers[i].status] or 0) + 1
        end
        return statuses
    end

    it("answers 503 to replays while the first is still running, the first's answer after", function()
        local xml = event_xml("slow")
        -- one runs the router; the others arrive meanwhile and are not
        -- acknowledged, so WeCom sends them again
        assert.same({ [200] = 1, [503] = 5 }, at_once(xml, 6))
        local status, answer = t:post("/cb", xml)
        assert.equal(200, status)
        assert.equal("", answer)
        assert.equal(1, t:json("/results").runs.slow)
    end)

    it("handles the resend of a message whose first delivery failed while replays waited", function()
        local xml = event_xml("slow_boom_once")
        assert.same({ [500] = 1, [503] = 3 }, at_once(xml, 4))
        -- released: WeCom's next resend is handled, once
        assert.equal(200, (t:post("/cb", xml)))
        assert.equal(200, (t:post("/cb", xml)))
        assert.equal(2, t:json("/results").runs.slow_boom_once)
    end)

    it("gives a replay the first delivery's passive reply, byte for byte", function()
        local xml = "<xml><ToUserName><![CDATA[wwDOWNSTREAM01]]></ToUserName><FromUserName><![CDATA[lisi]]>"
            .. "</FromUserName><CreateTime>1700000500</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            .. "<Content><![CDATA[dedupe me]]></Content><MsgId>77</MsgId><AgentID>1000002</AgentID></xml>"
        local status, first = t:post("/cb", xml)
        assert.equal(200, status)
        assert.matches("^<xml>\n<Encrypt>", first)
        for _ = 1, 4 do
            local again_status, again = t:post("/cb", xml)
            assert.equal(200, again_status)
            assert.equal(first, again)
        end
        assert.equal(1, t:json("/results").runs.text)
    end)

    it("answers 'success' to a replayed third-party command event", function()
        local xml = "<xml><SuiteId><![CDATA[wwSUITE]]></SuiteId><InfoType><![CDATA[change_auth]]></InfoType>"
            .. "<TimeStamp>1403610513</TimeStamp><AuthCorpId><![CDATA[wwDOWN]]></AuthCorpId></xml>"
        for _ = 1, 3 do
            local status, answer = t:post("/cb", xml)
            assert.equal(200, status)
            assert.equal("success", answer)
        end
        assert.equal(1, t:json("/results").runs.change_auth)
    end)

    it("runs the router again for the resend of a delivery whose handler failed", function()
        local xml = event_xml("boom_once")
        assert.equal(500, (t:post("/cb", xml)))
        assert.equal(200, (t:post("/cb", xml)))
        assert.equal(200, (t:post("/cb", xml)))
        assert.equal(2, t:json("/results").runs.boom_once)
    end)

    it("handles the resend of a message whose worker died mid-delivery once the claim's lease ends", function()
        local xml = event_xml("crash_once")
        assert.equal(0, (t:post("/cb", xml)))      -- the connection dies with the worker
        -- a resend at once: the claim still stands, not acknowledged
        assert.equal(503, (t:post("/cb", xml)))
        sh.run("sleep 2.2")
        -- the lease (2 s) has ended: handled, once
        assert.equal(200, (t:post("/cb", xml)))
        assert.equal(200, (t:post("/cb", xml)))
        assert.equal(2, t:json("/results").runs.crash_once)
    end)

    it("logs the resends at info level only, and no error but the provoked one", function()
        local log = t.site:log()
        assert.truthy(log:find("%[info%][^\n]*a resend of event replayed answered without running the router"))
        assert.truthy(log:find("%[info%][^\n]*a resend of event slow while its first delivery is still running"))
        assert.same({}, t.site:error_lines(function(line)
            return line:find("handler for event boom_once failed", 1, true)
                or line:find("handler for event slow_boom_once failed", 1, true)
                or line:find("exited on signal 9", 1, true)     -- crash_once's worker
        end))
    end)
end)
