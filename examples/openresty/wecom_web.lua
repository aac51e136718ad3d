-- The pages of examples/openresty/nginx.conf that a person clicks through
-- (content_by_lua for `location /`): a provider's install from its own site,
-- the corps that installed the app, and the OAuth web login of a self-built
-- app and of the third-party app.
--
--   GET  /                    the home page: the install button, the links
--   POST /install             a fresh install link (suite:install_url, a test
--                             install), and off to WeCom's install page
--   GET  /wecom/installed     WeCom sends the admin back here with auth_code
--                             and state: suite:authorize(auth_code)
--   GET  /corps               the corps that installed the app (suite:corps())
--   GET  /login               self-built app: off to WeCom's OAuth page (app:oauth_url)
--   GET  /wecom/oauth         back with code and state: app:user_by_code(code)
--   GET  /login/3rd           third-party app: suite:oauth_url
--   GET  /wecom/oauth3rd      back with code and state: suite:user_by_code(code)
--
-- The redirect_uri of each link is on the host this page was asked for:
-- WeCom accepts it only on the domain set in the console (安装完成回调域名
-- for installs, 可信域名 for logins), so the site is reached under that name.
-- `state` ties each answer to the browser that started it (a cookie); an
-- answer without it, or a code WeCom refuses (each is good for one use),
-- ends on an error page with status 400.

local core = require "wecom.core"
local identity3rd = require "wecom.api.identity3rd"

-- luacheck: globals ngx
local ngx = ngx

local concat = table.concat
local floor = math.floor
local ipairs = ipairs
local os_date = os.date
local pairs = pairs
local pcall = pcall
local tostring = tostring
local type = type

local site = require "wecom_site"

local _M = {}

local STATE_TTL = 1200      -- seconds: as long as a pre_auth_code lives

-- codes WeCom answers for a code that is unknown, spent or expired
local BAD_CODE = {
    [40029] = true,   -- invalid code (OAuth)
    [40078] = true,   -- invalid auth_code (install)
    [41008] = true,   -- missing code
}

---------------------------------------------------------------------------
-- HTML
---------------------------------------------------------------------------

local ESCAPES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }

local function h(s)
    return (tostring(s == nil and "" or s):gsub("[&<>\"']", ESCAPES))
end

local STYLE = [[
body { font-family: "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", sans-serif; margin: 0;
       background: #f5f7fa; color: #1f2329; }
header { background: #0082ef; color: #fff; padding: 14px 32px; font-size: 18px; }
header a { color: #fff; text-decoration: none; }
main { max-width: 760px; margin: 28px auto; background: #fff; border-radius: 8px; padding: 24px 32px;
       box-shadow: 0 1px 4px rgba(0, 0, 0, .08); }
h1 { font-size: 22px; margin-top: 0; }
h1.error { color: #d54941; }
.button { display: inline-block; background: #0082ef; color: #fff; border: 0; border-radius: 4px;
          padding: 10px 20px; font-size: 15px; text-decoration: none; cursor: pointer; }
.links a { margin-right: 18px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 8px 10px; border-bottom: 1px solid #e5e6eb; }
dt { color: #646a73; float: left; width: 120px; } dd { margin: 0 0 8px 130px; }
.note { color: #646a73; font-size: 13px; }
]]

local function send(status, title, body)
    ngx.status = status
    ngx.header["Content-Type"] = "text/html; charset=utf-8"
    ngx.header["Cache-Control"] = "no-store"
    ngx.print(concat {
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>", h(title), "</title><style>", STYLE, "</style></head>\n<body>\n",
        '<header><a href="/">企业微信接入示例</a></header>\n<main>\n', body, "\n</main>\n</body></html>\n",
    })
    return ngx.exit(status)
end

-- fail(status, message [, err]): the error page.  err (a wecom error) adds
-- its code and kind; tostring(err) never holds a secret, token or code.
local function fail(status, message, err)
    local parts = { '<h1 class="error" id="error">出错了</h1>\n<p id="message">', h(message), "</p>\n" }
    if err then
        ngx.log(ngx.WARN, "wecom example: ", tostring(err))
        parts[#parts + 1] = '<p class="note">企业微信返回：<span id="errcode">' .. h(err.errcode or err.kind)
            .. "</span> " .. h(err.errmsg or "") .. "</p>\n"
    end
    parts[#parts + 1] = '<p><a class="button" href="/">回到首页</a></p>'
    return send(status, "出错了", concat(parts))
end

-- a WeCom or network failure that is not the visitor's doing
local function upstream_failed(what, err)
    return fail(502, what .. "：暂时无法完成，请稍后再试（" .. tostring(err.kind) .. "）。", err)
end

local function dl(rows)
    local parts = { '<dl id="who">' }
    for _, row in ipairs(rows) do
        if row[3] ~= nil and row[3] ~= "" then
            parts[#parts + 1] = "<dt>" .. h(row[2]) .. '</dt><dd id="' .. row[1] .. '">' .. h(row[3]) .. "</dd>"
        end
    end
    parts[#parts + 1] = "</dl>"
    return concat(parts, "\n")
end

---------------------------------------------------------------------------
-- Requests
---------------------------------------------------------------------------

-- The site as this request reached it: the redirect_uri goes back there.
-- (Behind a TLS proxy, take the scheme from X-Forwarded-Proto, or write
-- your public URL here.)
local function origin()
    local host = ngx.var.http_host
    if type(host) ~= "string" or not host:match("^[%w%.%-]+:?%d*$") then
        host = ngx.var.server_addr .. ":" .. ngx.var.server_port
    end
    return ngx.var.scheme .. "://" .. host
end

-- The state of a flow: random, in a cookie of this browser (SameSite=Lax:
-- it comes along when WeCom sends the browser back).
local function new_state(flow)
    local state = core.nonce(24)
    ngx.header["Set-Cookie"] = "state_" .. flow .. "=" .. state .. "; Path=/; Max-Age=" .. STATE_TTL
        .. "; HttpOnly; SameSite=Lax"
    return state
end

local function state_ok(flow, state)
    local expected = ngx.var["cookie_state_" .. flow]
    return type(state) == "string" and type(expected) == "string" and #expected >= 16
        and core.const_eq(state, expected)
end

-- args() -> the query's single-valued parameters
local function args()
    local out = {}
    for k, v in pairs(ngx.req.get_uri_args(20)) do
        if type(v) == "string" then
            out[k] = v
        end
    end
    return out
end

-- the code and state WeCom sent back, checked; ends on the error page otherwise
local function returned(flow, name, what)
    local q = args()
    if not state_ok(flow, q.state) then
        return fail(400, "state 校验失败：这个" .. what .. "回调不是本浏览器在本站发起的（链接被改动、在另一个浏览器打开，"
            .. "或已超过 " .. floor(STATE_TTL / 60) .. " 分钟）。请回到首页重新开始。")
    end
    local code = q[name]
    if not code or code == "" then
        return fail(400, "缺少 " .. name .. " 参数：" .. what .. "没有完成（管理员或成员取消了授权？）。")
    end
    return code
end

local function need_suite()
    local suite = site.suite
    if not suite then
        return fail(404, "本站没有配置第三方应用（WECOM_SUITE_ID 等环境变量）。")
    end
    return suite
end

-- a member's name, if the corp's client may read it (nil otherwise: the
-- login stands without it)
local function name_of(client, userid)
    if not client or not userid then
        return nil
    end
    local user = client:get("/cgi-bin/user/get", { userid = userid })
    return user and user.name
end

---------------------------------------------------------------------------
-- Pages
---------------------------------------------------------------------------

local pages = {}

pages["/"] = function()
    local suite = site.suite
    local parts = { "<h1>企业微信接入示例</h1>\n" }
    if suite then
        parts[#parts + 1] = concat {
            "<h2>第三方应用 ", h(suite.suite_id), "</h2>\n",
            '<form method="post" action="/install"><button class="button" id="install" type="submit">',
            "安装到企业微信（测试安装）</button></form>\n",
            '<p class="links"><a id="corps" href="/corps">已授权的企业</a>',
            '<a id="login3rd" href="/login/3rd">企业微信登录（第三方应用）</a></p>\n',
        }
    end
    parts[#parts + 1] = concat {
        "<h2>自建应用 ", h(site.app.agentid), "</h2>\n",
        '<p class="links"><a id="login" href="/login">企业微信登录（自建应用）</a></p>\n',
        '<p class="note">登录与安装的回调地址都在本页的域名下：请在企业微信后台把它设为可信域名 / 安装完成回调域名。</p>',
    }
    return send(200, "企业微信接入示例", concat(parts))
end

pages["/install"] = function()
    local suite = need_suite()
    if ngx.req.get_method() ~= "POST" then
        ngx.header["Allow"] = "POST"
        return fail(405, "请从首页的安装按钮开始。")
    end
    local state = new_state("install")
    -- a fresh pre_auth_code (one install each), marked as a test install
    -- with set_session_info, in the link to WeCom's install page
    local link, err = suite:install_url { redirect_uri = origin() .. "/wecom/installed", state = state,
                                          test = true }
    if not link then
        if err.kind == "token" then
            return fail(503, "还不能安装：第三方应用还没有收到企业微信推送的 suite_ticket（每 10 分钟一次，"
                .. "或在服务商后台点“刷新Ticket”）。", err)
        end
        return upstream_failed("获取安装链接", err)
    end
    return ngx.redirect(link, 302)
end

pages["/wecom/installed"] = function()
    local suite = need_suite()
    local auth_code = returned("install", "auth_code", "安装")
    local auth, err = suite:authorize(auth_code)
    if not auth then
        if err.errcode and BAD_CODE[err.errcode] then
            return fail(400, "授权码无效或已经用过：每个 auth_code 只能换一次永久授权码，10 分钟内有效。"
                .. "这一次安装已经完成或已过期，请回到首页重新安装。", err)
        end
        return upstream_failed("完成安装", err)
    end
    if auth.error then
        -- the code was exchanged, but keeping it or reading the details
        -- failed: a real site would store auth.permanent_code right now
        ngx.log(ngx.ERR, "wecom example: install of ", auth.corpid, " not fully kept: ", tostring(auth.error))
    end
    local admin = type(auth.auth_user_info) == "table" and auth.auth_user_info or {}
    return send(200, "安装成功", concat {
        '<h1 id="done">安装成功</h1>\n',
        dl {
            { "corp_name", "企业", auth.corp_name },
            { "corpid", "CorpID", auth.corpid },
            { "agentid", "应用 AgentID", auth.agentid },
            { "admin", "安装的管理员", admin.name and (admin.name .. "（" .. tostring(admin.userid) .. "）") },
            { "state", "state", auth.state },
        },
        '\n<p class="links"><a href="/corps">已授权的企业</a><a href="/login/3rd">企业微信登录（第三方应用）</a></p>',
    })
end

pages["/corps"] = function()
    local suite = need_suite()
    local rows = {}
    local ok, err = pcall(function()
        for c in suite:corps() do
            rows[#rows + 1] = concat {
                "<tr><td>", h(c.corp_name), '</td><td class="corpid">', h(c.corpid), "</td><td>", h(c.agentid),
                "</td><td>", h(c.installed_at and os_date("%Y-%m-%d %H:%M", c.installed_at)), "</td></tr>",
            }
        end
    end)
    if not ok then
        return upstream_failed("读取授权企业", type(err) == "table" and err or { kind = "store" })
    end
    return send(200, "已授权的企业", concat {
        "<h1>已授权的企业（", #rows, "）</h1>\n",
        '<table id="corps"><tr><th>企业</th><th>CorpID</th><th>AgentID</th><th>安装时间</th></tr>\n',
        concat(rows, "\n"), "\n</table>",
        #rows == 0 and '\n<p class="note">还没有企业安装这个应用。</p>' or "",
    })
end

pages["/login"] = function()
    local state = new_state("login")
    return ngx.redirect(site.app:oauth_url { redirect_uri = origin() .. "/wecom/oauth", state = state }, 302)
end

-- a page that says who logged in
local function welcome(title, who, name, extra)
    local rows = {
        { "name", "姓名", name },
        { "corpid", "CorpID", who.corpid },
        { "userid", "UserID", who.userid },
        { "open_userid", "open_userid", who.open_userid },
        { "openid", "OpenID（非企业成员）", who.openid },
    }
    return send(200, title, concat {
        '<h1 id="hello">', h(name and ("你好，" .. name) or (who.userid and "你好" or "你好，访客")), "</h1>\n",
        '<p class="note">', h(extra), "</p>\n", dl(rows),
        '\n<p class="links"><a href="/">回到首页</a></p>',
    })
end

local function login_failed(err)
    if err.errcode and BAD_CODE[err.errcode] then
        return fail(400, "登录码无效或已经用过：每个 code 只能用一次，5 分钟内有效。请重新登录。", err)
    end
    return upstream_failed("登录", err)
end

pages["/wecom/oauth"] = function()
    local code = returned("login", "code", "登录")
    local app = site.app
    local who, err = app:user_by_code(code)
    if not who then
        return login_failed(err)
    end
    -- a member of the app's own corp: its name from the contacts; one of a
    -- corp the app is shared to comes back as CorpId/userid
    local name = who.corpid == app.corpid and name_of(app, who.userid) or nil
    return welcome("登录成功", who, name, "自建应用 " .. tostring(app.agentid) .. " 的网页授权登录")
end

-- suite:oauth_url / suite:user_by_code, or the functions behind them
-- where this SDK's suite does not carry them yet
local function suite_call(suite, name, ...)
    if type(suite[name]) == "function" then
        return suite[name](suite, ...)
    end
    return identity3rd[name](suite, ...)
end

pages["/login/3rd"] = function()
    local suite = need_suite()
    local state = new_state("login3rd")
    return ngx.redirect(suite_call(suite, "oauth_url", { redirect_uri = origin() .. "/wecom/oauth3rd",
                                                       state = state }), 302)
end

pages["/wecom/oauth3rd"] = function()
    local suite = need_suite()
    local code = returned("login3rd", "code", "登录")
    local who, err = suite_call(suite, "user_by_code", code)
    if not who then
        return login_failed(err)
    end
    -- the member's corp installed the app: its client reads the name
    local name
    if who.corpid then
        name = name_of((suite:corp(who.corpid)), who.userid)
    end
    return welcome("登录成功", who, name, "第三方应用 " .. suite.suite_id .. " 的网页授权登录")
end

-- page(): content_by_lua for `location /`
function _M.page()
    local fn = pages[ngx.var.uri]
    if not fn then
        return fail(404, "没有这个页面。")
    end
    local method = ngx.req.get_method()
    if method ~= "GET" and method ~= "HEAD" and not (method == "POST" and ngx.var.uri == "/install") then
        ngx.header["Allow"] = ngx.var.uri == "/install" and "POST" or "GET"
        return fail(405, "不支持的请求方法。")
    end
    return fn()
end

return _M
