-- bin/wecom's service-provider commands: install-url, authorized-corps.
-- Both work with the provider's third-party app (wecom.suite, built by
-- Context:suite from WECOM_SUITE_* or the config file) on the token store,
-- which is where the suite_ticket WeCom pushes and the permanent codes of
-- the corps that installed the app are kept.

local floor = math.floor
local os_date = os.date
local pcall = pcall

local args = require "wecom.cli.args"

local _M = {}

local STATE = function(v)
    if #v <= 128 and v:match("^[%w]+$") then
        return v
    end
    return nil, "must be at most 128 letters and digits"
end

local REDIRECT = function(v)
    if v:match("^https?://[^/?#%s]+[^%s]*$") then
        return v
    end
    return nil, "must be an http:// or https:// URL"
end

-- options of both commands: the suite's settings that may come from the
-- command line (the secret never does)
local function with_suite_options(options)
    options["suite-id"] = { value = "SUITE_ID" }
    options["web-base-url"] = { value = "URL" }
    return options
end

local SUITE_HELP = [[
The third-party app: WECOM_SUITE_ID (--suite-id) and WECOM_SUITE_SECRET, or
suite_id and suite_secret in the config file; WECOM_WEB_BASE_URL
(--web-base-url, web_base_url) is where WeCom's web pages are: the emulator's
URL, by default WeCom's. Its suite_ticket comes from the token store: WeCom
pushes one to your 指令回调 URL every 10 minutes, and the server that
receives it (a wecom.suite on wecom.store.file(DIR)) keeps it there; point
--token-dir (WECOM_TOKEN_DIR) at that DIR.]]

local install_url = {
    name = "install-url",
    summary = "a link that installs the provider's third-party app (one install, 20 minutes)",
    usage = "wecom install-url --redirect-uri URL [--state STATE] [--test]",
    options = with_suite_options {
        ["redirect-uri"] = { value = "URL", check = REDIRECT },
        state = { value = "STATE", check = STATE },
        test = {},
    },
    help = [[
Prints the link to WeCom's install page for the third-party app (从服务商网站
发起): a fresh pre_auth_code each time, good for one install within 20
minutes. An admin who opens it picks the corp and confirms; WeCom then sends
the browser to URL?auth_code=...&state=STATE, where your site calls
suite:authorize(auth_code). URL must be on the app's 安装完成回调域名.

  --redirect-uri URL  where WeCom sends the admin back (required)
  --state STATE       comes back unchanged (letters and digits, at most 128)
  --test              a test install (set_session_info auth_type 1): for an
                      app not yet published, in the corps registered as its
                      test corps

json: {"url", "expires_at"} (a Unix time).

]] .. SUITE_HELP,
}

function install_url.run(ctx, opts)
    if not opts["redirect-uri"] then
        args.usage_error("missing --redirect-uri URL")
    end
    local suite = ctx:suite()
    local link, expires_at = ctx:call(suite:install_url { redirect_uri = opts["redirect-uri"], state = opts.state,
                                                          test = opts.test == true })
    if ctx.out.format == "json" then
        ctx.out:write(require("wecom.json").encode { url = link, expires_at = floor(expires_at) }, "\n")
        return
    end
    ctx.out:write(link, "\n")
    ctx.out:note("one install, until %s%s", os_date("%Y-%m-%d %H:%M:%S", floor(expires_at)),
        opts.test and " (a test install)" or "")
end

local authorized_corps = {
    name = "authorized-corps",
    summary = "the corps that installed the provider's third-party app",
    usage = "wecom authorized-corps [--check] [--concurrency N]",
    options = with_suite_options {
        check = {},
        concurrency = { value = "N", check = args.integer(1, 256) },
    },
    help = [[
The corps whose authorization of the third-party app (the permanent code) is
in the token store: corpid, corp_name, agentid (the app's in that corp), state
(of the install link), installed_at (UTC). Permanent codes are never printed.

  --check          also get each corp's access token (get_corp_token),
                   concurrently: a status column (ok, or the error kind) and
                   error; exit status 1 when any corp failed
  --concurrency N  corps at once for --check (default 16)

]] .. SUITE_HELP,
}

local function iso(t)
    return t and os_date("!%Y-%m-%dT%H:%M:%SZ", floor(t)) or nil
end

function authorized_corps.run(ctx, opts)
    local suite = ctx:suite()
    local list = {}
    local ok, err = pcall(function()
        for c in suite:corps() do
            list[#list + 1] = { corpid = c.corpid, corp_name = c.corp_name, agentid = c.agentid, state = c.state,
                                installed_at = iso(c.installed_at) }
        end
    end)
    if not ok then
        ctx:fail(err)
    end
    local columns = { { "corpid" }, { "corp_name" }, { "agentid" }, { "state" }, { "installed_at" } }
    if not opts.check then
        ctx.out:rows(list, columns)
        return
    end

    ctx:token_rows(list, columns, "corp tokens", opts.concurrency, function(row)
        local client, cerr = suite:corp(row.corpid)
        if not client then
            return nil, cerr
        end
        local token, expires_at = client:token()
        return token, expires_at
    end)
end

_M.commands = { install_url, authorized_corps }

return _M
