-- wecom.cli: the `wecom` command (bin/wecom is a thin launcher).
--
--   local status = require("wecom.cli").main(arg)   -- the exit status
--
-- Global options, subcommands from wecom.cli.<family>, settings from
-- wecom.cli.config, output through wecom.cli.output.  Every failure ends in
-- an exit status of its own (EXIT below) and one line on stderr that has
-- gone through the secret scrubber.

local error = error
local floor = math.floor
local getmetatable = getmetatable
local io_open = io.open
local ipairs = ipairs
local pairs = pairs
local setmetatable = setmetatable
local sort = table.sort
local tostring = tostring
local type = type
local xpcall = xpcall

local args = require "wecom.cli.args"
local config = require "wecom.cli.config"
local csv = require "wecom.cli.csv"
local shell = require "wecom.shell"
local errors = require "wecom.errors"
local output = require "wecom.cli.output"

local _M = {}

-- Exit statuses: one per kind of failure (documented in docs/cli.md).
_M.EXIT = {
    ok = 0,
    partial = 1,        -- done, but some rows/corps/recipients failed (see the output)
    usage = 2,          -- unknown command or option, bad argument
    config = 3,         -- credentials missing, config file unreadable or not private
    input = 4,          -- the input file is missing or malformed
    api = 10,           -- WeCom answered an errcode
    token = 11,         -- the credentials were refused (secret, corpid, share)
    transport = 12,     -- could not connect, connection broken
    timeout = 13,
    tls = 14,           -- certificate verification failed
    rate_limit = 15,    -- 45009/45033
    busy = 16,          -- -1 after the retries
    decode = 17,        -- an answer that is not what WeCom sends
    callback = 18,      -- signature, decryption or receive id of a callback
    store = 19,         -- the token store failed
    internal = 70,      -- a bug: please report it with the message
}
local EXIT = _M.EXIT

local FAMILIES = { "wecom.cli.chain", "wecom.cli.share", "wecom.cli.linkedcorp", "wecom.cli.callback",
    "wecom.cli.provider" }

local GLOBAL = {
    help = { short = "h" },
    version = {},
    quiet = { short = "q" },
    progress = {},
    format = { value = "FORMAT", check = args.one_of { "table", "json", "csv" } },
    config = { value = "FILE" },
    profile = { value = "NAME" },
    corpid = { value = "CORPID" },
    agentid = { value = "AGENTID", check = args.integer(0) },
    ["base-url"] = { value = "URL" },
    ["ca-file"] = { value = "FILE" },
    ["token-dir"] = { value = "DIR" },
    ["no-token-cache"] = {},
    timeout = { value = "SECONDS", check = args.number(0.001) },
    retries = { value = "N", check = args.integer(0, 10) },
}

local GLOBAL_HELP = [[
Options for every command:
  --format table|json|csv  how results print (default: table)
  -q, --quiet              no progress bar, no notes on stderr
  --progress               a progress bar even when stderr is no terminal
  --config FILE            the config file (default $WECOM_CONFIG, else
                           $XDG_CONFIG_HOME/wecom/config, i.e. ~/.config/wecom/config)
  --profile NAME           a [NAME] section of the config file ($WECOM_PROFILE)
  --corpid ID, --agentid N, --base-url URL, --ca-file FILE
                           override WECOM_CORPID, WECOM_AGENTID, WECOM_BASE_URL,
                           WECOM_CA_FILE and the config file (the secret comes only
                           from WECOM_SECRET or the config file)
  --token-dir DIR          the token store's directory ($WECOM_TOKEN_DIR; default
                           $XDG_CACHE_HOME/wecom/tokens, i.e. ~/.cache/wecom/tokens)
  --no-token-cache         keep tokens in this process only
  --timeout SECONDS        per request (default 5); --retries N (default 2)
  -h, --help               help (also `wecom COMMAND --help`)]]

local commands, order

local function load_commands()
    if commands then
        return
    end
    commands, order = {}, {}
    for _, name in ipairs(FAMILIES) do
        for _, cmd in ipairs(require(name).commands) do
            commands[cmd.name] = cmd
            order[#order + 1] = cmd
        end
    end
end

function _M.commands()
    load_commands()
    return order
end

local function main_help()
    load_commands()
    local lines = {
        "usage: wecom [OPTIONS] COMMAND [ARGS]",
        "",
        "WeCom (企业微信) cross-corporation automation from the shell.",
        "",
        "Commands:",
    }
    local width = 0
    for _, cmd in ipairs(order) do
        width = #cmd.name > width and #cmd.name or width
    end
    for _, cmd in ipairs(order) do
        lines[#lines + 1] = "  " .. cmd.name .. (" "):rep(width - #cmd.name + 2) .. cmd.summary
    end
    lines[#lines + 1] = ""
    lines[#lines + 1] = GLOBAL_HELP
    lines[#lines + 1] = ""
    lines[#lines + 1] = "Credentials: WECOM_CORPID, WECOM_SECRET, WECOM_AGENTID (and WECOM_BASE_URL,"
    lines[#lines + 1] = "WECOM_CA_FILE for the emulator), or the config file; a provider's third-party"
    lines[#lines + 1] = "app: WECOM_SUITE_ID, WECOM_SUITE_SECRET, WECOM_WEB_BASE_URL. Tokens are kept in"
    lines[#lines + 1] = "the token directory so that cron runs share them. Exit status: 0 ok, 1 partly"
    lines[#lines + 1] = "failed, 2 usage, 3 configuration, 4 input file, 10-19 by error kind (see"
    lines[#lines + 1] = "docs/cli.md), 70 a bug."
    return table.concat(lines, "\n") .. "\n"
end

local function command_help(cmd)
    return "usage: " .. cmd.usage .. "\n\n" .. cmd.summary:gsub("^%l", string.upper) .. ".\n\n"
        .. (cmd.help and (cmd.help .. "\n\n") or "") .. GLOBAL_HELP .. "\n"
end

---------------------------------------------------------------------------
-- Failures
---------------------------------------------------------------------------

local INPUT = {}
INPUT.__tostring = function(e) return e.message end

local function input_error(message)
    error(setmetatable({ message = message }, INPUT), 0)
end

---------------------------------------------------------------------------
-- The context a command runs in
---------------------------------------------------------------------------

local Context = {}
Context.__index = Context

function Context:settings()
    if not self.settings_cache then
        local s = config.load(self.opts, self.env.getenv)
        for key in pairs(config.SECRET_KEYS) do
            self.out:secret(s[key])
        end
        self.settings_cache = s
    end
    return self.settings_cache
end

local function need_settings(s, keys)
    for _, key in ipairs(keys) do
        if not s[key] then
            config.config_error(key .. " is not set (" .. config.sources(key) .. ")")
        end
    end
end

-- store() -> the token store: the file store in the token directory (nil:
-- this process's memory, with --no-token-cache or no home directory)
function Context:store()
    if self.opts["no-token-cache"] then
        return nil
    end
    local dir = config.token_dir(self:settings(), self.env.getenv)
    return dir and require("wecom").store.file(dir) or nil
end

-- construct(fn, opts) -> what fn(opts) returns; a bad setting (base_url,
-- ca_file...) is a configuration error whose message names the option
local function construct(fn, opts)
    local ok, value = pcall(fn, opts)
    if not ok then
        config.config_error((tostring(value):gsub("^[^:]*:%d+: ", "")))
    end
    return value
end

-- app() -> the upstream app's client (settings checked on first use)
function Context:app()
    if self.client then
        return self.client
    end
    local s = self:settings()
    need_settings(s, { "corpid", "secret" })
    self.client = construct(require("wecom").new, {
        corpid = s.corpid, secret = s.secret, agentid = s.agentid,
        base_url = s.base_url, ca_file = s.ca_file,
        timeout = self.opts.timeout, retries = self.opts.retries,
        store = self:store(),
    })
    return self.client
end

-- suite() -> the provider's third-party app (wecom.suite) on the token
-- store, where its suite_ticket and permanent codes are
function Context:suite()
    if self.suite_client then
        return self.suite_client
    end
    local s = self:settings()
    need_settings(s, { "suite_id", "suite_secret" })
    self.suite_client = construct(require("wecom").suite, {
        suite_id = s.suite_id, suite_secret = s.suite_secret,
        base_url = s.base_url, ca_file = s.ca_file, web_base_url = s.web_base_url,
        timeout = self.opts.timeout, retries = self.opts.retries,
        store = self:store(),
    })
    return self.suite_client
end

-- token_rows(rows, columns, label, concurrency, fetch): gets a token for each
-- row, `concurrency` at once (default 16), with a progress bar, and prints
-- the rows with the columns and status (ok, or the error kind), expires_in,
-- error; a failed row makes the run partial.  fetch(row) -> token,
-- expires_at [, verify] | nil, err; verify() -> nil | err, a check made with
-- the token.  Tokens are never printed.
function Context:token_rows(rows, columns, label, concurrency, fetch)
    local core = require "wecom.core"
    local bar = self.out:progress(#rows, label)
    local tasks = {}
    for i, row in ipairs(rows) do
        tasks[i] = function()
            local token, expires_at, verify = fetch(row)
            if token then
                self.out:secret(token)
                row.status, row.expires_in = "ok", floor(expires_at - core.now())
                local err = verify and verify()
                if err then
                    row.status, row.error = err.kind, tostring(err)
                end
            else
                row.status, row.error = expires_at.kind, tostring(expires_at)
            end
            bar:step()
        end
    end
    local results = require("wecom.parallel").run(tasks, { concurrency = concurrency or 16 })
    bar:done()
    local failed = 0
    for i, row in ipairs(rows) do
        if not results[i].ok then
            row.status, row.expires_in, row.error = "error", nil, tostring(results[i].err)
        end
        if row.status ~= "ok" then
            failed = failed + 1
        end
    end
    columns[#columns + 1] = { "status" }
    columns[#columns + 1] = { "expires_in" }
    columns[#columns + 1] = { "error" }
    self.out:rows(rows, columns)
    if failed > 0 then
        self.out:note("%d of %d corps failed", failed, #rows)
        self.partial = true
    end
end

-- fail(err): ends the command with err's exit status
function Context.fail(_, err)
    error(err, 0)
end

-- call(value, err) -> value, or ends the command with err
function Context:call(value, err, ...)
    if value == nil then
        self:fail(err)
    end
    return value, err, ...
end

function Context.input_error(_, message)
    input_error(message)
end

function Context.config_error(_, message)
    config.config_error(message)
end

-- read_input(path) -> the file's bytes ("-": standard input)
function Context:read_input(path)
    if path == "-" then
        return self.env.stdin:read("*a") or ""
    end
    local f, err = io_open(path, "rb")
    if not f then
        input_error("cannot read " .. tostring(err))
    end
    local text = f:read("*a")
    f:close()
    return text or ""
end

-- read_csv(path) -> records, columns
function Context:read_csv(path)
    local records, columns = csv.records(self:read_input(path))
    if not records then
        input_error(path .. ": " .. columns)
    end
    return records, columns
end

---------------------------------------------------------------------------
-- main
---------------------------------------------------------------------------

local shell_test = shell.run

-- Lua cannot ask isatty(3) and wecom.core has no such call: `test -t 2` in
-- the shell os.execute starts answers for our own stderr, which that shell
-- inherits.  One fork, once per run, and only when a bar could be shown.
local function stderr_is_terminal()
    return shell_test("test -t 2")
end

function _M.default_env()
    return {
        getenv = os.getenv,
        stdout = io.stdout,
        stderr = io.stderr,
        stdin = io.stdin,
        isatty = stderr_is_terminal,
    }
end

local function exit_status(e)
    if errors.is_error(e) then
        -- "wecom api error 60011: ..." after "wecom corps: "
        return EXIT[e.kind] or EXIT.internal, (tostring(e):gsub("^wecom ", ""))
    elseif args.is_usage_error(e) then
        return EXIT.usage, e.message
    elseif config.is_config_error(e) then
        return EXIT.config, e.message
    elseif type(e) == "table" and getmetatable(e) == INPUT then
        return EXIT.input, e.message
    end
    return EXIT.internal, nil
end

local function run(argv, env, state)
    local opts, _, i = args.parse(argv, 1, GLOBAL, true)
    if opts.version then
        env.stdout:write("wecom ", require "wecom.version", "\n")
        return EXIT.ok
    end
    local name = argv[i]
    if name == "help" then
        name = argv[i + 1]
        if name == nil then
            env.stdout:write(main_help())
            return EXIT.ok
        end
        opts.help = true
        i = i + 1
    end
    if name == nil then
        if opts.help then
            env.stdout:write(main_help())
            return EXIT.ok
        end
        env.stderr:write(main_help())
        return EXIT.usage
    end
    load_commands()
    local cmd = commands[name]
    if not cmd then
        args.usage_error("unknown command '" .. name .. "' (wecom --help lists them)")
    end
    state.cmd = cmd
    local more, positional = args.parse(argv, i + 1, args.merge(GLOBAL, cmd.options))
    for k, v in pairs(more) do
        opts[k] = v
    end
    if opts.help then
        env.stdout:write(command_help(cmd))
        return EXIT.ok
    end
    for _, a in ipairs(positional) do
        if a == "" then
            args.usage_error("an argument is an empty string")
        end
    end
    local want = cmd.args or {}
    if #positional ~= #want then
        if #positional < #want then
            args.usage_error("missing " .. want[#positional + 1])
        end
        args.usage_error("unexpected argument '" .. positional[#want + 1] .. "'")
    end

    local term = env.getenv("TERM")
    local out = output.new {
        format = opts.format or "table",
        stdout = env.stdout,
        stderr = opts.quiet and { write = function() end, flush = function() end } or env.stderr,
        progress = not opts.quiet and (opts.progress or (term ~= "dumb" and env.isatty())),
    }
    state.out = out
    local ctx = setmetatable({ opts = opts, env = env, out = out, partial = false }, Context)
    cmd.run(ctx, opts, positional)
    return ctx.partial and EXIT.partial or EXIT.ok
end

-- main(argv [, env]) -> exit status
--   env: getenv, stdout, stderr, stdin, isatty (default_env())
function _M.main(argv, env)
    env = env or _M.default_env()
    local state = {}
    local ok, res = xpcall(function() return run(argv, env, state) end, function(e)
        if type(e) == "string" and env.getenv("WECOM_DEBUG") then
            return debug.traceback(e, 2)
        end
        return e
    end)
    if ok then
        env.stdout:flush()
        return res
    end
    local status, message = exit_status(res)
    local out = state.out or output.new { stdout = env.stdout, stderr = env.stderr }
    if state.out and state.out.bar then
        state.out.bar:done()
    end
    local prefix = "wecom" .. (state.cmd and (" " .. state.cmd.name) or "") .. ": "
    if status == EXIT.internal then
        message = "internal error (a bug; please report it): " .. tostring(res)
    end
    -- state.out scrubs the secrets it knows; errors come out on stderr even
    -- with --quiet
    out.stderr = env.stderr
    out:note("%s", prefix .. tostring(message))
    if status == EXIT.usage then
        out:note("%s", state.cmd and ("usage: " .. state.cmd.usage .. "\nRun 'wecom " .. state.cmd.name
            .. " --help' for more.") or "Run 'wecom --help' for the commands.")
    end
    env.stdout:flush()
    return status
end

-- the order of the kinds, for docs and specs
function _M.exit_table()
    local list = {}
    for k, v in pairs(EXIT) do
        list[#list + 1] = { k, v }
    end
    sort(list, function(a, b) return a[2] < b[2] end)
    return list
end

return _M
