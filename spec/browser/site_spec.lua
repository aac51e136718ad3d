-- examples/openresty (Debian's nginx + lua-nginx-module, 2 workers) clicked
-- through in Debian's headless Chromium, against the emulator: a provider's
-- install from its own site, the corps that installed its app, the OAuth
-- web login of the self-built and of the third-party app; a forged state and
-- a reused code end on the site's error page with status 400.
--
-- The browser reaches the site under the fixture's domains (the install
-- domain, the apps' trusted domains: *.example.com mapped to 127.0.0.1) and
-- the emulator's pages over HTTPS, trusting its certificate's key only.
-- Screenshots go to build/screenshots/ (make test keeps them for a look).

local emulator = require "helpers.emulator"
local nginx = require "helpers.nginx"
local sh = require "helpers.sh"
local webdriver = require "browser.webdriver"
local url = require "wecom.url"

local SCREENSHOTS = "build/screenshots"

local function find(list, pred)
    for _, v in ipairs(list) do
        if pred(v) then
            return v
        end
    end
end

describe("examples/openresty in a browser", function()
    local emu, fx, site, browser, suite_def, sysapp

    -- the site under one of the fixture's domains
    local function at(host, path)
        return "http://" .. host .. ":" .. site.port .. path
    end

    local function shot(name)
        local path = browser:screenshot(name)
        assert.is_true(#assert(sh.read_file(path)) > 5000, "an empty screenshot: " .. path)
    end

    -- the corpids /corps lists, read as the browser shows them
    local function listed_corps()
        browser:go(at(suite_def.install_domain, "/corps"))
        local ids = browser:script("return Array.from(document.querySelectorAll('#corps td.corpid'),"
            .. " td => td.textContent);")
        table.sort(ids)
        return ids
    end

    local function assert_error_page(status, message)
        assert.equal(status, browser:status())
        assert.equal("出错了", browser:text("#error"))
        assert.matches(message, browser:text("#message"), 1, true)
        assert.is_nil(browser:text("#hello"))
        assert.is_nil(browser:text("#done"))
    end

    setup(function()
        assert(webdriver.available())
        emu = emulator.new {}
        fx = emu:fixture()
        suite_def = find(fx.provider.suites, function(s) return not s.customized end)
        sysapp = emulator.fixture_app(fx, true)
        site = nginx.start {
            conf = nginx.example { workers = 2, trusted = emu.dir .. "/trusted.pem", warmup = false },
            env = {
                WECOM_CORPID = fx.upstream.corpid, WECOM_SECRET = sysapp.secret,
                WECOM_AGENTID = ("%d"):format(sysapp.agentid),
                WECOM_CALLBACK_TOKEN = sysapp.callback.token, WECOM_CALLBACK_AES_KEY = sysapp.callback.aes_key,
                -- the URL the emulator printed: its API, and WeCom's web pages
                WECOM_BASE_URL = emu.base_url, WECOM_WEB_BASE_URL = emu.base_url,
                WECOM_SUITE_ID = suite_def.suite_id, WECOM_SUITE_SECRET = suite_def.suite_secret,
                WECOM_SUITE_TOKEN = suite_def.callback.token, WECOM_SUITE_AES_KEY = suite_def.callback.aes_key,
                WECOM_PROVIDER_CORPID = fx.provider.corpid,
            },
        }
        -- WeCom pushes the suite_ticket to the site's 指令回调 URL
        local pushed = emu:control("POST", "suite_ticket", { suite_id = suite_def.suite_id,
                                                             url = site:url("/wecom/suite") })
        assert.equal(200, pushed.status)
        assert.equal("success", pushed.reply)
        assert(sh.run("rm -rf " .. sh.quote(SCREENSHOTS) .. " && mkdir -p " .. sh.quote(SCREENSHOTS)))
        browser = webdriver.start { hosts = "*.example.com", trust_cert = emu.dir .. "/server.pem",
                                    screenshots = SCREENSHOTS }
    end)

    teardown(function()
        if browser then
            browser:quit()
        end
        if site then
            site:stop()
        end
        if emu then
            emu:stop()
        end
    end)

    it("installs the third-party app: the site's button, WeCom's install page, back to suite:authorize",
        function()
        local home = at(suite_def.install_domain, "/")
        browser:go(home)
        assert.equal(200, browser:status())
        assert.equal("安装到企业微信（测试安装）", browser:text("#install"))
        shot("01-home")

        -- the button: a fresh pre_auth_code, a test install, off to WeCom's page
        browser:follow("#install")
        local page = browser:url()
        assert.equal(emu.base_url .. "/3rdapp/install?", page:sub(1, #emu.base_url + 16))
        local q = url.parse_query(page:match("%?(.*)$"))
        assert.equal(suite_def.suite_id, q.suite_id)
        assert.equal(at(suite_def.install_domain, "/wecom/installed"), q.redirect_uri)
        assert.matches("^%w+$", q.state)
        assert.equal("授权安装「" .. suite_def.name .. "」", browser:text("h2"))
        assert.equal("测试安装", browser:text(".auth_type"))
        shot("02-wecom-install-page")

        -- the admin of wwRETAILCORP01 picks the corp and confirms
        browser:click('select[name="corpid"] option[value="wwRETAILCORP01"]')
        browser:follow('button[type="submit"]')
        local back = browser:url()
        assert.equal(at(suite_def.install_domain, "/wecom/installed?"), back:match("^[^?]*%?"))
        assert.equal(200, browser:status())
        assert.equal("安装成功", browser:text("#done"))
        assert.equal("wwRETAILCORP01", browser:text("#corpid"))
        assert.equal("上海静安优品便利店有限公司", browser:text("#corp_name"))
        assert.equal("钱伟（qianwei）", browser:text("#admin"))
        assert.equal(q.state, browser:text("#state"))
        assert.matches("^%d+$", browser:text("#agentid"))
        shot("03-installed")
        -- a test install (set_session_info auth_type 1), one code exchange
        assert.equal(1, emu:stats()["/cgi-bin/service/set_session_info"])
        assert.equal(1, emu:stats()["/cgi-bin/service/v2/get_permanent_code"])

        assert.same({ "wwRETAILCORP01" }, listed_corps())
        assert.equal("已授权的企业（1）", browser:text("h1"))
        shot("04-corps")

        -- the same redirect again (a reload, the back button): the code is spent
        browser:go(back)
        assert_error_page(400, "授权码无效或已经用过")
        assert.equal("40078", browser:text("#errcode"))
        shot("05-reused-auth-code")
        assert.same({ "wwRETAILCORP01" }, listed_corps())
    end)

    it("refuses an install answer whose state this browser did not start (400), and installs nothing", function()
        browser:go(at(suite_def.install_domain, "/"))
        browser:follow("#install")
        -- someone else's link: the same install page with another state
        local page = browser:url():gsub("([?&]state=)[%w]+", "%1forged0state")
        browser:go(page)
        browser:click('select[name="corpid"] option[value="wwDOWNCORP01"]')
        browser:follow('button[type="submit"]')
        assert.matches("[?&]state=forged0state", browser:url())
        assert.matches("[?&]auth_code=", browser:url())
        assert_error_page(400, "state 校验失败")
        shot("06-forged-state")
        -- the site never exchanged that code
        assert.same({ "wwRETAILCORP01" }, listed_corps())
    end)

    it("logs a member in with the self-built app: WeCom's OAuth page, back to app:user_by_code", function()
        local user = fx.upstream.users[1]
        local host = sysapp.redirect_domain
        browser:go(at(host, "/login"))
        local page = browser:url()
        assert.equal(emu.base_url .. "/connect/oauth2/authorize?", page:sub(1, #emu.base_url + 26))
        local q = url.parse_query(page:match("%?([^#]*)"))
        assert.equal(fx.upstream.corpid, q.appid)
        assert.equal(("%d"):format(sysapp.agentid), q.agentid)
        assert.equal(at(host, "/wecom/oauth"), q.redirect_uri)
        shot("07-wecom-oauth-page")

        browser:click('select[name="user"] option[value="' .. fx.upstream.corpid .. "/" .. user.userid .. '"]')
        browser:follow('button[type="submit"]')
        assert.equal(200, browser:status())
        assert.equal("你好，" .. user.name, browser:text("#hello"))
        assert.equal(user.userid, browser:text("#userid"))
        assert.equal(fx.upstream.corpid, browser:text("#corpid"))
        shot("08-logged-in-self-built")

        -- reloaded: the code was good for one login
        browser:refresh()
        assert_error_page(400, "登录码无效或已经用过")
        assert.equal("40029", browser:text("#errcode"))
        shot("09-reused-oauth-code")
    end)

    it("refuses a login answer with a state this browser did not start (400)", function()
        local host = sysapp.redirect_domain
        browser:go(at(host, "/login"))        -- this browser's state cookie is set
        -- a good code, but a state of someone else's
        local code = emu:oauth_code { userid = fx.upstream.users[1].userid }
        browser:go(at(host, "/wecom/oauth?code=" .. code .. "&state=notmine"))
        assert_error_page(400, "state 校验失败")
        shot("10-forged-login-state")
    end)

    it("logs a member in with the third-party app (appid = suite_id) in a corp that installed it", function()
        -- wwRETAILCORP02 installs from the app market: create_auth pushed to
        -- the site's 指令回调 URL, which exchanges the AuthCode after answering
        local pushed = emu:control("POST", "authorize", { suite_id = suite_def.suite_id, corpid = "wwRETAILCORP02",
                                                          action = "create", url = site:url("/wecom/suite") })
        assert.equal("success", pushed.reply)
        local corps
        for _ = 1, 50 do
            corps = listed_corps()
            if #corps == 2 then
                break
            end
            os.execute("sleep 0.1")
        end
        assert.same({ "wwRETAILCORP01", "wwRETAILCORP02" }, corps)

        local host = suite_def.redirect_domain
        browser:go(at(host, "/login/3rd"))
        local q = url.parse_query(browser:url():match("%?([^#]*)"))
        assert.equal(suite_def.suite_id, q.appid)
        assert.is_nil(q.agentid)
        browser:click('select[name="user"] option[value="wwRETAILCORP02/fengtao"]')
        shot("11-wecom-oauth-page-third-party")
        browser:follow('button[type="submit"]')
        assert.equal(200, browser:status())
        assert.equal("你好，冯涛", browser:text("#hello"))
        assert.equal("wwRETAILCORP02", browser:text("#corpid"))
        assert.equal("fengtao", browser:text("#userid"))
        assert.is_string(browser:text("#open_userid"))
        shot("12-logged-in-third-party")

        browser:refresh()
        assert_error_page(400, "登录码无效或已经用过")
        assert.equal("40029", browser:text("#errcode"))
    end)

    it("shows no secret, and nginx logged no error", function()
        browser:go(at(suite_def.install_domain, "/corps"))
        local source = browser:source()
        for _, secret in ipairs { suite_def.suite_secret, sysapp.secret, suite_def.callback.aes_key } do
            assert.is_nil(source:find(secret, 1, true))
            assert.is_nil(site:log():find(secret, 1, true))
        end
        assert.same({}, site:error_lines())
    end)
end)
