-- bin/wecom's shared-app commands: shared-corps, token-check.

local ipairs = ipairs
local pcall = pcall

local args = require "wecom.cli.args"

local _M = {}

local BUSINESS_TYPE = { value = "0|1", check = args.integer(0, 1) }

local shared_corps = {
    name = "shared-corps",
    summary = "the corps the app is shared to",
    usage = "wecom shared-corps [--business-type 0|1] [--corp CORPID]",
    options = { ["business-type"] = BUSINESS_TYPE, corp = { value = "CORPID" } },
    help = [[
The corps the upstream app is shared to (list_app_share_info, all pages):
corpid, corp_name and the app's agentid inside that corp.

  --business-type 0|1   0: 企业互联 (linked corps, the default), 1: 上下游
  --corp CORPID         only this corp]],
}

local function list_shares(ctx, opts, bar)
    local list = {}
    local ok, err = pcall(function()
        for corp in ctx:app():shared_corps { business_type = opts["business-type"] or 0, corpid = opts.corp } do
            list[#list + 1] = corp
            if bar then
                bar:step()
            end
        end
    end)
    if not ok then
        ctx:fail(err)
    end
    return list
end

function shared_corps.run(ctx, opts)
    local bar = ctx.out:progress(nil, "shared corps")
    local list = list_shares(ctx, opts, bar)
    bar:done()
    ctx.out:rows(list, { { "corpid" }, { "corp_name" }, { "agentid" } })
end

local token_check = {
    name = "token-check",
    summary = "check that a downstream token can be had for each shared corp",
    usage = "wecom token-check [--business-type 0|1] [--corp CORPID] [--verify] [--concurrency N]",
    options = {
        ["business-type"] = BUSINESS_TYPE,
        corp = { value = "CORPID" },
        verify = {},
        concurrency = { value = "N", check = args.integer(1, 256) },
    },
    help = [[
For every corp the app is shared to (or only --corp), gets the downstream
access token (corpgroup/corp/gettoken), concurrently, with a progress bar on a
terminal. One record per corp: corpid, corp_name, agentid, status (ok, or the
error kind), expires_in (seconds the token has left), error. Tokens are never
printed. Exit status 1 when any corp failed.

  --business-type 0|1   0: 企业互联 (the default), 1: 上下游
  --verify              also call /cgi-bin/agent/get with the token
  --concurrency N       corps at once (default 16)

Tokens go to the token store (the file store by default), so a cron job
that runs this every few minutes asks WeCom for each token only when it
expires.]],
}

function token_check.run(ctx, opts)
    local app = ctx:app()
    local business_type = opts["business-type"] or 0
    local shares = list_shares(ctx, opts)
    local rows = {}
    for i, corp in ipairs(shares) do
        rows[i] = { corpid = corp.corpid, corp_name = corp.corp_name, agentid = corp.agentid }
    end
    ctx:token_rows(rows, { { "corpid" }, { "corp_name" }, { "agentid" } }, "downstream tokens", opts.concurrency,
        function(row)
            local down = app:downstream { corpid = row.corpid, agentid = row.agentid, business_type = business_type }
            local token, expires_at = down:token()
            return token, expires_at, opts.verify and function()
                local _, err = down:get("/cgi-bin/agent/get", { agentid = row.agentid })
                return err
            end
        end)
end

_M.commands = { shared_corps, token_check }

return _M
