-- wecom.suite and wecom.provider without a server: the options and
-- arguments of every call (a bad one raises, naming the call), callbacks
-- (receive ids, bad envelopes, events without what their bookkeeping
-- needs, InfoTypes passed through), what the store keeps, and no secret
-- in any field or tostring.

local wecom = require "wecom"
local callback = require "wecom.callback"
local core = require "wecom.core"
local records = require "wecom.suite.records"
local sh = require "helpers.suite"

local SUITE_ID = "wwSUITEUNIT01"
local SECRET = "unit-suite-secret-0123456789"
local TOKEN = "unitToken"
local AES_KEY = ("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"):sub(1, 43)
local PROVIDER = "wwPROVIDERUNIT"

-- nothing listens there: a call that reaches the network fails fast
local BASE_URL = "https://127.0.0.1:9"

local function new_suite(extra)
    local opts = { suite_id = SUITE_ID, suite_secret = SECRET, token = TOKEN, aes_key = AES_KEY,
        provider_corpid = PROVIDER, base_url = BASE_URL, retries = 0, timeout = 1,
        store = wecom.store.file(sh.tmpdir()) }
    for k, v in pairs(extra or {}) do
        if v == false then
            opts[k] = nil
        else
            opts[k] = v
        end
    end
    return wecom.suite(opts)
end

-- what WeCom would POST: an event encrypted for receive_id
local function post(xml, receive_id)
    local cb = callback.new { token = TOKEN, aes_key = AES_KEY, receive_id = receive_id or SUITE_ID }
    local body, query = cb:encrypt_event(xml)
    return query, body
end

local function info_event(info_type, fields)
    local parts = { "<xml><SuiteId><![CDATA[" .. SUITE_ID .. "]]></SuiteId><InfoType><![CDATA[" .. info_type
        .. "]]></InfoType><TimeStamp>" .. os.time() .. "</TimeStamp>" }
    for k, v in pairs(fields or {}) do
        parts[#parts + 1] = "<" .. k .. "><![CDATA[" .. v .. "]]></" .. k .. ">"
    end
    parts[#parts + 1] = "</xml>"
    return table.concat(parts)
end

describe("wecom.suite", function()
    after_each(sh.cleanup)

    describe("options", function()
        it("raises for what is missing or of the wrong kind, naming the option", function()
            local cases = {
                { { suite_secret = SECRET }, "wecom.suite: opts.suite_id is required" },
                { { suite_id = SUITE_ID }, "wecom.suite: opts.suite_secret is required" },
                { { suite_id = 5, suite_secret = SECRET }, "wecom.suite: opts.suite_id must be a suite id" },
                { { suite_id = "ww x", suite_secret = SECRET }, "wecom.suite: opts.suite_id must be a suite id" },
                { { suite_id = SUITE_ID, suite_secret = "" }, "wecom.suite: opts.suite_secret must be" },
                { { suite_id = SUITE_ID, suite_secret = SECRET, token = TOKEN },
                    "wecom.suite: opts.token and opts.aes_key go together" },
                { { suite_id = SUITE_ID, suite_secret = SECRET, token = TOKEN, aes_key = "short" },
                    "wecom.suite: opts.aes_key must be the 43%-character EncodingAESKey" },
                { { suite_id = SUITE_ID, suite_secret = SECRET, web_base_url = "http://x" },
                    "wecom.suite: opts.web_base_url must be an https:// URL" },
                { { suite_id = SUITE_ID, suite_secret = SECRET, provider_corpid = 1 },
                    "wecom.suite: opts.provider_corpid must be a non%-empty string" },
                { { suite_id = SUITE_ID, suite_secret = SECRET, store = {} },
                    "wecom.suite: opts.store must be a store" },
                { { suite_id = SUITE_ID, suite_secret = SECRET, timeout = -1 }, "wecom.suite: opts.timeout must be" },
                { { suite_id = SUITE_ID, suite_secret = SECRET, suiteid = "x" },
                    "wecom.suite: unknown option 'suiteid'" },
                { "wwSUITE", "wecom.suite: opts must be a table" },
            }
            for _, c in ipairs(cases) do
                local ok, err = pcall(wecom.suite, c[1])
                assert.is_false(ok)
                assert.matches(c[2], err)
                assert.is_nil(err:find(SECRET, 1, true))
            end
        end)

        it("tells a 代开发 template by its id; tostring and fields show no secret", function()
            local suite = new_suite()
            assert.is_false(suite.customized)
            assert.is_true(new_suite { suite_id = "dkTEMPLATE01" }.customized)
            assert.equal("wecom.suite(suite_id=" .. SUITE_ID .. ")", tostring(suite))
            for k, v in pairs(suite) do
                if type(v) == "string" then
                    assert.is_nil(v:find(SECRET, 1, true), k)
                end
            end
            assert.equal("wecom.suite(suite_id=" .. SUITE_ID .. ")", tostring(suite._api))
        end)
    end)

    describe("arguments", function()
        local suite
        before_each(function() suite = new_suite() end)

        local function raises(pattern, fn, ...)
            local ok, err = pcall(fn, ...)
            assert.is_false(ok)
            assert.matches(pattern, err)
        end

        it("of every call raise, naming the call and the argument", function()
            raises("wecom.suite:set_ticket: ticket must be a non%-empty string %(got nil%)", suite.set_ticket, suite)
            raises("wecom.suite:set_ticket: ticket must be a non%-empty string %(got empty string%)",
                suite.set_ticket, suite, "")
            raises("wecom.suite:set_ticket: ticket must be at most 512 bytes", suite.set_ticket, suite, ("t"):rep(513))
            raises("wecom.suite:set_ticket: issued_at must be a Unix time", suite.set_ticket, suite, "t", "now")
            raises("wecom.suite:authorize: auth_code must be a non%-empty string", suite.authorize, suite, nil)
            raises("wecom.suite:authorize: auth_code must be a non%-empty string", suite.authorize, suite, 12)
            raises("wecom.suite:corp: corpid must be a corpid %(a non%-empty string without control characters,"
                .. " at most 128 bytes%) %(got nil%)", suite.corp, suite)
            raises("wecom.suite:corp: corpid must be a corpid .* %(got empty string%)", suite.corp, suite, "")
            raises("wecom.suite:corp: corpid must be a corpid", suite.corp, suite, "ww\nX")
            raises("wecom.suite:corp: corpid must be a corpid", suite.corp, suite, ("w"):rep(129))
            raises("wecom.suite:auth_info: corpid must be", suite.auth_info, suite, {})
            raises("wecom.suite:forget: corpid must be", suite.forget, suite, false)
            raises("wecom.suite:set_permanent_code: permanent_code must be", suite.set_permanent_code, suite, "wwC")
            raises("wecom.suite:set_permanent_code: corpid must be a corpid", suite.set_permanent_code, suite,
                "ww\0C", "code")
            raises("wecom.suite:set_permanent_code: agentid must be an integer >= 0",
                suite.set_permanent_code, suite, "wwC", "code", -1)
            raises("wecom.suite:set_session_info: pre_auth_code must be", suite.set_session_info, suite, nil)
            raises("wecom.suite:set_session_info: opts.auth_type must be 0 %(formal%) or 1",
                suite.set_session_info, suite, "pre", { auth_type = 2 })
            raises("wecom.suite:set_session_info: opts.appid must be a list", suite.set_session_info, suite, "pre",
                { appid = "1" })
            raises("wecom.suite:set_session_info: unknown option 'type'", suite.set_session_info, suite, "pre",
                { type = 1 })
            raises("wecom.suite:install_url: opts must be a table", suite.install_url, suite)
            raises("wecom.suite:install_url: opts.redirect_uri is required", suite.install_url, suite, {})
            raises("wecom.suite:install_url: opts.redirect_uri must be an absolute http%(s%) URL",
                suite.install_url, suite, { redirect_uri = "/installed" })
            raises("wecom.suite:install_url: opts.state must be at most 128 letters and digits",
                suite.install_url, suite, { redirect_uri = "https://x.example.com/", state = "a-b" })
            raises("wecom.suite:install_url: opts.test must be a boolean",
                suite.install_url, suite, { redirect_uri = "https://x.example.com/", test = 1 })
            raises("wecom.suite:each_corp: fn must be a function", suite.each_corp, suite)
            raises("wecom.suite:each_corp: opts.concurrency must be an integer >= 1",
                suite.each_corp, suite, function() end, { concurrency = 0 })
            raises("wecom:get: path must be a string starting with '/'", suite.get, suite, "cgi-bin/x")
            raises("wecom:get: query.suite_access_token is set by the client", suite.get, suite, "/cgi-bin/x",
                { suite_access_token = "t" })
            raises("wecom:token: unknown option 'refresh'", suite.token, suite, { refresh = true })
        end)

        it("receive and verify_url need the callback settings", function()
            local plain = new_suite { token = false, aes_key = false }
            raises("wecom.suite:receive: the suite has no callback settings", plain.receive, plain, {}, "<xml/>")
            raises("wecom.suite:verify_url: the suite has no callback settings", plain.verify_url, plain, {})
        end)
    end)

    describe("receive", function()
        it("keeps a pushed ticket; an unknown InfoType passes through untouched", function()
            local suite = new_suite()
            local event, reply = suite:receive(post(info_event("suite_ticket", { SuiteTicket = "tkt-1" })))
            assert.equal("success", reply)
            assert.equal("suite_ticket", event.type)
            assert.equal("tkt-1", (records.ticket(suite.store, suite._ns)))

            event, reply = suite:receive(post(info_event("change_editon", { PaidCorpId = "wwPAID" })))
            assert.equal("success", reply)
            assert.equal("change_editon", event.type)
            assert.equal("wwPAID", event.PaidCorpId)
            event = assert(suite:receive(post(info_event("share_agent_change",
                { CorpId = "wwUP", AgentId = "11", AppId = "11" }))))
            assert.equal("share_agent_change", event.type)
            assert.equal("wwUP", event.corpid)
            assert.equal(11, event.agentid)
        end)

        it("returns a callback error for what is not a good POST", function()
            local suite = new_suite()
            local query, body = post(info_event("suite_ticket", { SuiteTicket = "t" }))
            local bad = { msg_signature = ("0"):rep(40), timestamp = query.timestamp, nonce = query.nonce }
            local cases = {
                { bad, body, -40001 },
                { query, "", -40002 },
                { query, "<xml><Encrypt></Encrypt></xml>", -40002 },
                { query, body:gsub("<Encrypt><!%[CDATA%[..", "<Encrypt><![CDATA[AA"), -40001 },
                { {}, body, -40001 },
            }
            for i, c in ipairs(cases) do
                local event, err = suite:receive(c[1], c[2])
                assert.is_nil(event, i)
                assert.equal("callback", err.kind, i)
                assert.equal(c[3], err.code, i .. ": " .. tostring(err))
            end
            assert.is_nil(records.ticket(suite.store, suite._ns))
        end)

        it("takes the suite_id and authorized corps as receive ids, nothing else", function()
            local suite = new_suite()
            assert(suite:set_permanent_code("wwAUTHCORP", "pc-1", 1000002))
            local message = "<xml><ToUserName><![CDATA[wwAUTHCORP]]></ToUserName><FromUserName><![CDATA[zhangsan]]>"
                .. "</FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>"
                .. "<Content><![CDATA[hi]]></Content><AgentID>1000002</AgentID></xml>"
            -- 数据回调: the authorized corp's corpid
            local event, reply = suite:receive(post(message, "wwAUTHCORP"))
            assert.equal("success", reply)
            assert.equal("text", event.type)
            assert.equal("zhangsan", event.userid)
            for _, rid in ipairs { "wwOTHERCORP", "WWAUTHCORP", PROVIDER, "" } do
                local none, err = suite:receive(post(message, rid))
                assert.is_nil(none, rid)
                assert.equal(-40005, err.code)
            end
            -- a cancelled corp is no longer one
            assert(suite:forget("wwAUTHCORP"))
            local none, err = suite:receive(post(message, "wwAUTHCORP"))
            assert.is_nil(none)
            assert.equal(-40005, err.code)
        end)

        it("answers the URL check with the provider's corpid or the suite_id", function()
            local suite = new_suite()
            for _, rid in ipairs { PROVIDER, SUITE_ID } do
                local cb = callback.new { token = TOKEN, aes_key = AES_KEY, receive_id = rid }
                local query, echo = cb:encrypt_echostr()
                assert.equal(echo, suite:verify_url(query))
            end
            local cb = callback.new { token = TOKEN, aes_key = AES_KEY, receive_id = "wwSTRANGER" }
            local none, err = suite:verify_url((cb:encrypt_echostr()))
            assert.is_nil(none)
            assert.equal(-40005, err.code)
            -- without provider_corpid, the provider's corpid is not known
            local bare = new_suite { provider_corpid = false }
            cb = callback.new { token = TOKEN, aes_key = AES_KEY, receive_id = PROVIDER }
            assert.is_nil(bare:verify_url((cb:encrypt_echostr())))
        end)

        it("an event without what its bookkeeping needs is an error carrying the event", function()
            local suite = new_suite()
            local cases = {
                info_event("suite_ticket"),
                info_event("suite_ticket", { SuiteTicket = ("x"):rep(513) }),
                info_event("create_auth"),
                info_event("reset_permanent_code", { AuthCode = "" }),
                info_event("change_auth"),
                info_event("cancel_auth"),
            }
            for i, xml in ipairs(cases) do
                local event, err = suite:receive(post(xml))
                assert.is_nil(event, i)
                assert.equal("callback", err.kind, i)
                assert.matches("without a usable", err.errmsg)
                assert.is_table(err.event)
            end
            assert.is_nil(records.ticket(suite.store, suite._ns))
        end)

        it("an event of another suite passes through without bookkeeping", function()
            local suite = new_suite()
            local xml = info_event("suite_ticket", { SuiteTicket = "other" }):gsub(SUITE_ID, "wwANOTHERSUITE", 1)
            local event = assert(suite:receive(post(xml)))
            assert.equal("suite_ticket", event.type)
            assert.is_nil(records.ticket(suite.store, suite._ns))
        end)

        it("cancel_auth forgets the corp; a failed exchange keeps nothing", function()
            local suite = new_suite()
            assert(suite:set_permanent_code("wwGONE", "pc-gone", 7))
            assert(suite:receive(post(info_event("cancel_auth", { AuthCorpId = "wwGONE" }))))
            assert.is_nil(suite:corps()())
            local none, err = suite:corp("wwGONE")
            assert.is_nil(none)
            assert.equal("token", err.kind)

            -- no ticket: the exchange cannot even start; the error says why
            local event, xerr = suite:receive(post(info_event("create_auth", { AuthCode = "ac-1" })))
            assert.is_nil(event)
            assert.equal("token", xerr.kind)
            assert.equal("create_auth", xerr.event.type)
            assert.is_nil(suite:corps()())
        end)
    end)

    describe("the store", function()
        it("keeps a newer ticket over an older one, and not one past its 30 minutes", function()
            local suite = new_suite()
            local now = core.now()
            assert.is_true(suite:set_ticket("t2", now - 10))
            assert.is_false(suite:set_ticket("t1", now - 20))
            assert.equal("t2", (records.ticket(suite.store, suite._ns)))
            local _, expires_at = records.ticket(suite.store, suite._ns)
            assert.is_true(math.abs(expires_at - (now - 10 + 1800)) < 0.01)
            assert.is_true(suite:set_ticket("t3", now + 3600))   -- a clock ahead: as of now
            _, expires_at = records.ticket(suite.store, suite._ns)
            assert.is_true(expires_at <= core.now() + 1800)
            assert.is_false(suite:set_ticket("t0", now - 1900))
        end)

        it("lists hundreds of corps across its index and forgets them one by one", function()
            local suite = new_suite()
            local want = {}
            for i = 1, 300 do
                local corpid = ("wwCorp%04d"):format(i)
                want[corpid] = true
                assert(suite:set_permanent_code(corpid, "pc" .. i, i))
            end
            local seen = 0
            for corp in suite:corps() do
                assert.is_true(want[corp.corpid], corp.corpid)
                assert.is_nil(corp.permanent_code)
                assert.equal(tonumber(corp.corpid:sub(-4)), corp.agentid)
                seen = seen + 1
            end
            assert.equal(300, seen)
            for i = 1, 300, 2 do
                assert(suite:forget(("wwCorp%04d"):format(i)))
            end
            seen = 0
            for corp in suite:corps() do
                assert.equal(0, tonumber(corp.corpid:sub(-4)) % 2)
                seen = seen + 1
            end
            assert.equal(150, seen)
        end)

        it("a damaged record is a store error, never used", function()
            local suite = new_suite()
            assert(suite:set_permanent_code("wwDAMAGED", "pc", 1))
            suite.store:set_durable(records.corp_key(suite._ns, "wwDAMAGED"), "{not json")
            local none, err = suite:corp("wwDAMAGED")
            assert.is_nil(none)
            assert.equal("store", err.kind)
            local ok, ierr = pcall(function()
                for _ in suite:corps() do end
            end)
            assert.is_false(ok)
            assert.equal("store", ierr.kind)
        end)

        it("a permanent code set by hand replaces the old one and drops the corp's token", function()
            local suite = new_suite()
            assert(suite:set_permanent_code("wwHAND", "pc-1", 5))
            local key = records.corp_token_key(suite._ns, "wwHAND")
            assert(suite.store:set(key, "tok", core.now() + 600))
            assert(suite:set_permanent_code("wwHAND", "pc-1"))
            assert.equal("tok", (suite.store:get(key)))
            assert.equal(5, suite:corps()().agentid)
            assert(suite:set_permanent_code("wwHAND", "pc-2"))
            assert.is_nil(suite.store:get(key))
            assert.is_nil(suite:corps()().agentid)
        end)
    end)

    it("a corp client shows ids only", function()
        local suite = new_suite()
        assert(suite:set_permanent_code("wwSHOWN", "secret-permanent-code", 42))
        local corp = assert(suite:corp("wwSHOWN"))
        assert.equal("wecom.corp(suite_id=" .. SUITE_ID .. ", corpid=wwSHOWN, agentid=42)", tostring(corp))
        for k, v in pairs(corp) do
            if type(v) == "string" then
                assert.is_nil(v:find("secret-permanent-code", 1, true), k)
            end
        end
        -- its calls fail (nothing listens), without the code in the error
        local data, err = corp:get("/cgi-bin/agent/get", { agentid = 42 })
        assert.is_nil(data)
        assert.is_nil(tostring(err):find("secret-permanent-code", 1, true))
    end)
end)

describe("wecom.provider", function()
    local function new_provider(extra)
        local opts = { corpid = "wwPROV", provider_secret = "prov-secret", base_url = BASE_URL, retries = 0 }
        for k, v in pairs(extra or {}) do
            opts[k] = v
        end
        return wecom.provider(opts)
    end

    it("raises for bad options and arguments, naming them", function()
        local cases = {
            { function() wecom.provider { provider_secret = "s" } end, "wecom.provider: opts.corpid is required" },
            { function() wecom.provider { corpid = "wwP" } end, "wecom.provider: opts.provider_secret is required" },
            { function() new_provider { secret = "x" } end, "wecom.provider: unknown option 'secret'" },
            { function() new_provider():customized_auth_url() end,
                "wecom.provider:customized_auth_url: opts must be a table" },
            { function() new_provider():customized_auth_url {} end,
                "wecom.provider:customized_auth_url: opts.templateid_list is required" },
            { function() new_provider():customized_auth_url { templateid_list = {} } end,
                "opts.templateid_list must be a list of 1 to 9" },
            { function() new_provider():customized_auth_url { templateid_list = { "dk1", "dk2", "dk3", "dk4",
                "dk5", "dk6", "dk7", "dk8", "dk9", "dk10" } } end, "opts.templateid_list must be a list of 1 to 9" },
            { function() new_provider():customized_auth_url { templateid_list = { "dk1" }, state = ("a"):rep(33) } end,
                "opts.state must be at most 32 letters and digits" },
            { function() new_provider():corpid_to_opencorpid() end,
                "wecom.provider:corpid_to_opencorpid: corpid must be a non%-empty string" },
        }
        for i, c in ipairs(cases) do
            local ok, err = pcall(c[1])
            assert.is_false(ok, i)
            assert.matches(c[2], err)
            assert.is_nil(err:find("prov-secret", 1, true))
        end
    end)

    it("shows no secret", function()
        local provider = new_provider()
        assert.equal("wecom.provider(corpid=wwPROV)", tostring(provider))
        for k, v in pairs(provider) do
            if type(v) == "string" then
                assert.is_nil(v:find("prov-secret", 1, true), k)
            end
        end
        local tok, err = provider:token()
        assert.is_nil(tok)
        assert.is_nil(tostring(err):find("prov-secret", 1, true))
    end)
end)
