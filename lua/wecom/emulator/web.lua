-- The two WeCom web pages a person clicks through, served at their real
-- paths on the emulator's base URL (WeCom has them on open.work.weixin.qq.com
-- and open.weixin.qq.com):
--
--   /3rdapp/install?suite_id&pre_auth_code&redirect_uri&state
--       an admin installs a third-party app from the provider's site
--       (reference §2.3): pick the corp, confirm, and the browser goes to
--       redirect_uri?auth_code=…&expires_in=600&state=… (no create_auth push)
--   /connect/oauth2/authorize?appid&redirect_uri&response_type&scope&state[&agentid]
--       OAuth (wecom-api.md §5.1, reference §4.1): appid is a corpid (with
--       the agentid of a self-built or 代开发 app) or a third-party suite_id;
--       pick the member, confirm, and it goes to redirect_uri?code=…&state=…
--
-- GET shows the page; its form POSTs back (a GET with confirm=1 and the
-- form's fields does the same). A bad suite_id, appid, pre_auth_code or
-- redirect_uri gets an error page instead, as WeCom shows.

local url = require "wecom.url"
local fixture = require "wecom.emulator.fixture"
local server = require "wecom.emulator.server"
local provider = require "wecom.emulator.provider"
local base = require "wecom.emulator.api.base"

local ngx = ngx
local type = type
local pairs = pairs
local ipairs = ipairs
local tonumber = tonumber
local tostring = tostring
local concat = table.concat
local floor = math.floor

local _M = {}

local MAX_CHOICES = 200     -- members or corps a page offers
local HTML = "text/html; charset=utf-8"

-- HTML --------------------------------------------------------------------------

local ESCAPES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }

local function h(s)
    return (tostring(s):gsub("[&<>\"']", ESCAPES))
end

local function page(title, body)
    return concat {
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>", h(title), "</title></head>\n<body>\n", body, "\n</body></html>\n",
    }
end

local function error_page(message, errcode)
    return server.send(200, page("企业微信", concat {
        '<div class="weui-msg"><h2 class="error">', h(message), "</h2>",
        '<p class="errcode">错误码：<span id="errcode">', h(errcode), "</span></p></div>",
    }), HTML)
end

-- form(action, hidden, select_name, options, button): options are { value, label }
local function form(action, hidden, select_name, options, button)
    local parts = { '<form method="post" action="', h(action), '">\n' }
    for name, value in pairs(hidden) do
        parts[#parts + 1] = '<input type="hidden" name="' .. h(name) .. '" value="' .. h(value) .. '">\n'
    end
    parts[#parts + 1] = '<select name="' .. h(select_name) .. '">\n'
    for i, o in ipairs(options) do
        parts[#parts + 1] = '<option value="' .. h(o[1]) .. '"' .. (i == 1 and " selected" or "") .. ">"
            .. h(o[2]) .. "</option>\n"
    end
    parts[#parts + 1] = '</select>\n<button type="submit">' .. h(button) .. "</button>\n</form>"
    return concat(parts)
end

-- Requests ------------------------------------------------------------------------

-- params() -> args, confirmed: the query, with a form POST's fields on top.
-- A repeated or valueless parameter counts as missing.
local function params()
    local args = ngx.req.get_uri_args(100)
    local method = ngx.req.get_method()
    local confirmed = false
    if method == "POST" then
        ngx.req.read_body()
        for k, v in pairs(ngx.req.get_post_args(100) or {}) do
            args[k] = v
        end
        confirmed = true
    elseif method ~= "GET" and method ~= "HEAD" then
        return nil
    elseif args.confirm == "1" then
        confirmed = true
    end
    for k, v in pairs(args) do
        if type(v) ~= "string" then
            args[k] = nil
        end
    end
    return args, confirmed
end

-- The host of an http(s) URL, lowercased | nil
local function host_of(uri)
    local host = type(uri) == "string" and uri:match("^[Hh][Tt][Tt][Pp][Ss]?://([^/:?#@]+)")
    return host and host:lower()
end

local function host_allowed(uri, domain)
    local host = host_of(uri)
    return host ~= nil and type(domain) == "string" and host == domain:lower()
end

-- The state parameter ("" when absent) | nil: one WeCom refuses (bad_state)
local function state_param(args)
    local state = args.state or ""
    if #state <= 128 and state:match("^[%w]*$") then
        return state
    end
end

local function bad_state()
    return error_page("state 参数错误", 84025)
end

-- 302 to uri with query added before any fragment.
local function redirect(uri, query)
    local head, fragment = uri:match("^([^#]*)(.*)$")
    local sep = head:find("?", 1, true) and "&" or "?"
    if head:sub(-1) == "?" or head:sub(-1) == "&" then
        sep = ""
    end
    local location = head .. sep .. url.encode_query(query, "wecom emulator") .. fragment
    ngx.header["Location"] = location
    return server.send(302, page("302", '<a href="' .. h(location) .. '">' .. h(location) .. "</a>"), HTML)
end

local function not_allowed()
    return server.send(405, page("405", "<h2>405 Method Not Allowed</h2>"), HTML)
end

-- Install page (§2.3) -------------------------------------------------------------

local INSTALL = "/3rdapp/install"

local function install()
    local args, confirmed = params()
    if not args then
        return not_allowed()
    end
    local P = fixture.get().provider
    local suite = P and args.suite_id and P.suites[args.suite_id]
    if not suite or suite.customized then
        return error_page("suite_id 参数错误", 40083)
    end
    local code = args.pre_auth_code
    local pac, errcode
    if code then
        pac, errcode = provider.pre_auth(suite, code)
    end
    if not pac then
        return error_page("preauthcode校验失败", errcode or 40077)
    end
    local redirect_uri = args.redirect_uri
    if not host_allowed(redirect_uri, suite.install_domain) then
        return error_page("redirect_uri与配置的授权完成回调域名不一致", 50001)
    end
    local state = state_param(args)
    if not state then
        return bad_state()
    end

    if not confirmed then
        local options = {}
        for _, corpid in ipairs(P.corp_list) do
            if #options >= MAX_CHOICES then
                break
            end
            if not provider.active_auth(suite.suite_id, corpid) then
                options[#options + 1] = { corpid, P.corps[corpid].corp.corp_name or corpid }
            end
        end
        local mode = pac.auth_type == 1 and "测试安装" or "正式安装"
        return server.send(200, page("授权安装 " .. suite.name, concat {
            "<h2>授权安装「", h(suite.name), "」</h2>\n",
            '<p class="auth_type" data-auth-type="', h(pac.auth_type), '">', mode, "</p>\n",
            "<p>选择要安装应用的企业：</p>\n",
            form(INSTALL, { suite_id = suite.suite_id, pre_auth_code = code, redirect_uri = redirect_uri,
                state = state }, "corpid", options, "同意授权并安装"),
        }), HTML)
    end

    local corpid = args.corpid
    local entry = corpid and P.corps[corpid]
    if not entry then
        return error_page("请选择要安装应用的企业", 40013)
    end
    local userid = args.userid or entry.admins[1]
    if userid and not (entry.corp.users_by_id and entry.corp.users_by_id[userid]) then
        return error_page("管理员不存在", 60111)
    end
    if provider.active_auth(suite.suite_id, corpid) then
        return error_page("该企业已安装此应用", 40013)
    end
    -- one install per pre_auth_code
    if not provider.use_pre_auth(code) then
        return error_page("preauthcode校验失败", 40077)
    end
    local rec, auth_code = provider.install(suite, corpid, {
        auth_type = pac.auth_type, state = state, userid = userid,
    })
    if not rec then
        return error_page("该企业已安装此应用", 40013)
    end
    return redirect(redirect_uri, { auth_code = auth_code, expires_in = provider.AUTH_CODE_TTL, state = state })
end

-- OAuth page (wecom-api.md §5.1, reference §4.1) ---------------------------------

local SCOPES = { snsapi_base = true, snsapi_userinfo = true, snsapi_privateinfo = true }

local function add_users(out, corp)
    for _, user in ipairs(corp.users or {}) do
        if #out >= MAX_CHOICES then
            return
        end
        out[#out + 1] = { corp.corpid .. "/" .. user.userid,
                          (corp.corp_name or corp.corpid) .. " - " .. (user.name or user.userid),
                          corpid = corp.corpid, userid = user.userid }
    end
end

-- The app an OAuth link is for -> { domain, members, suite | agentid } | nil, message, errcode
local function oauth_app(F, args)
    local appid = args.appid
    if not appid then
        return nil, "appid 参数错误", 40013
    end
    local P = F.provider
    local suite = P and P.suites[appid]
    if suite then
        -- third-party: appid = suite_id, the members of corps that installed it
        if suite.customized then
            return nil, "appid 参数错误", 40013
        end
        local members = {}
        for _, corpid in ipairs(P.corp_list) do
            if provider.active_auth(suite.suite_id, corpid) then
                add_users(members, P.corps[corpid].corp)
            end
        end
        return { suite = suite, domain = suite.redirect_domain, members = members }
    end
    local corp = F.corps[appid]
    if not corp then
        return nil, "appid 参数错误", 40013
    end
    local agentid
    if args.agentid then
        agentid = tonumber(args.agentid)
        if not agentid or agentid ~= floor(agentid) then
            return nil, "agentid 参数错误", 40056
        end
    end
    local members = {}
    if agentid and appid == F.upstream.corpid and F.apps[agentid] then
        -- a self-built app: its corp's members and those of the corps it is shared to
        add_users(members, corp)
        for _, down in ipairs(F.data.downstream or {}) do
            for _, agent in ipairs(down.agents or {}) do
                if agent.shared_from == agentid and agent.confirmed ~= false then
                    add_users(members, down)
                    break
                end
            end
        end
        return { agentid = agentid, domain = F.apps[agentid].redirect_domain, members = members }
    end
    if agentid then
        -- a 代开发 app installed in that corp
        local dk = provider.suite_at(F, appid, agentid)
        if not (dk and dk.customized) then
            return nil, "agentid 参数错误", 40056
        end
        add_users(members, corp)
        return { agentid = agentid, domain = dk.redirect_domain, members = members }
    end
    -- no agentid: any trusted domain of the corp's own apps
    add_users(members, corp)
    local domains = {}
    for _, app in pairs(corp.apps_by_id or {}) do
        if app.redirect_domain then
            domains[app.redirect_domain:lower()] = true
        end
    end
    return { domains = domains, members = members }
end

local function oauth()
    local args, confirmed = params()
    if not args then
        return not_allowed()
    end
    local F = fixture.get()
    local app, message, errcode = oauth_app(F, args)
    if not app then
        return error_page(message, errcode)
    end
    local redirect_uri = args.redirect_uri
    local allowed = app.domains and app.domains[host_of(redirect_uri) or ""]
        or host_allowed(redirect_uri, app.domain)
    if not allowed then
        return error_page("redirect_uri 需使用应用可信域名", 50001)
    end
    if args.response_type ~= "code" then
        return error_page("response_type 参数错误", 40058)
    end
    local scope = args.scope
    if not SCOPES[scope] then
        return error_page("scope 参数错误", 40058)
    end
    local state = state_param(args)
    if not state then
        return bad_state()
    end

    if not confirmed then
        local options = {}
        for i, m in ipairs(app.members) do
            options[i] = { m[1], m[2] }
        end
        options[#options + 1] = { "visitor", "非企业成员（微信用户）" }
        local hidden = {}
        for _, name in ipairs { "appid", "redirect_uri", "response_type", "scope", "state", "agentid" } do
            hidden[name] = args[name]
        end
        return server.send(200, page("企业微信授权登录", concat {
            "<h2>授权登录</h2>\n<p>以下身份登录：</p>\n",
            form("/connect/oauth2/authorize", hidden, "user", options, "确认登录"),
        }), HTML)
    end

    local choice = args.user
    local fields
    if choice == "visitor" then
        fields = { openid = "o" .. ngx.md5(tostring(ngx.now()) .. tostring(math.random())):sub(1, 27) }
    else
        for _, m in ipairs(app.members) do
            if m[1] == choice then
                fields = { corpid = m.corpid, userid = m.userid }
                break
            end
        end
        if not fields then
            return error_page("成员不在应用可见范围内", 60011)
        end
    end
    local code
    if app.suite then
        fields.suite_id, fields.scope = app.suite.suite_id, scope
        code = base.mint_code("suite_oauth", fields)
    else
        fields.agentid = app.agentid
        code = base.mint_code("oauth", fields)
    end
    return redirect(redirect_uri, { code = code, state = state })
end

_M.pages = {
    [INSTALL] = install,
    ["/connect/oauth2/authorize"] = oauth,
}

return _M
