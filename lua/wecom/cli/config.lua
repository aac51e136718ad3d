-- Where bin/wecom gets its settings: command-line options first, then
-- WECOM_* environment variables, then a profile of the config file.
--
-- The config file (--config FILE, $WECOM_CONFIG, else
-- $XDG_CONFIG_HOME/wecom/config, i.e. ~/.config/wecom/config) is INI:
--
--   # comments start with # or ;
--   [default]                 ; keys before any section belong to [default]
--   corpid = wwUPSTREAMCORP
--   secret = ...
--   agentid = 1000002
--   [emulator]                ; --profile emulator (or WECOM_PROFILE)
--   base_url = https://localhost:8443
--
-- A file holding a secret must be the user's own and not readable by
-- anyone else (mode 600 or 400), as ssh insists for its keys: otherwise the
-- command refuses to run.  The secret never comes from a command-line
-- option: command lines are visible to every user of the host (ps).

local concat = table.concat
local error = error
local floor = math.floor
local format = string.format
local getmetatable = getmetatable
local os_execute = os.execute
local setmetatable = setmetatable
local type = type
local io_open = io.open
local lower = string.lower
local pairs = pairs
local tonumber = tonumber
local tostring = tostring

local shell = require "wecom.shell"

local _M = {}

-- key -> environment variable
_M.ENV = {
    corpid = "WECOM_CORPID",
    secret = "WECOM_SECRET",
    agentid = "WECOM_AGENTID",
    base_url = "WECOM_BASE_URL",
    ca_file = "WECOM_CA_FILE",
    token_dir = "WECOM_TOKEN_DIR",
    callback_token = "WECOM_CALLBACK_TOKEN",
    callback_aes_key = "WECOM_CALLBACK_AES_KEY",
    receive_id = "WECOM_RECEIVE_ID",
    -- a service provider's third-party app (install-url, authorized-corps)
    suite_id = "WECOM_SUITE_ID",
    suite_secret = "WECOM_SUITE_SECRET",
    web_base_url = "WECOM_WEB_BASE_URL",
}

-- keys whose values are secret: never printed, and a file holding one must
-- be private
_M.SECRET_KEYS = { secret = true, callback_token = true, callback_aes_key = true, suite_secret = true }

-- A configuration problem: wecom.cli.main exits 3 with the message.
local CONFIG = {}
CONFIG.__index = CONFIG
CONFIG.__tostring = function(e) return e.message end

function _M.config_error(message)
    error(setmetatable({ message = message }, CONFIG), 0)
end

function _M.is_config_error(v)
    return type(v) == "table" and getmetatable(v) == CONFIG
end

local config_error = _M.config_error

local shell_quote, capture = shell.quote, shell.capture

-- parse_ini(text, path) -> { [section] = { key = value } }
function _M.parse_ini(text, path)
    local sections, current = { default = {} }, "default"
    local n = 0
    for line in (text .. "\n"):gmatch("([^\n]*)\n") do
        n = n + 1
        line = line:gsub("\r$", ""):gsub("^%s+", ""):gsub("%s+$", "")
        if line ~= "" and not line:find("^[#;]") then
            local section = line:match("^%[%s*([^%]]-)%s*%]$")
            if section then
                current = section
                sections[current] = sections[current] or {}
            else
                local key, value = line:match("^([%w_%.%-]+)%s*=%s*(.-)$")
                if not key then
                    config_error(path .. ":" .. n .. ": expected `key = value` or `[profile]`")
                end
                -- a value may be quoted to keep leading/trailing spaces or a #
                value = value:match('^"(.*)"$') or value:match("^'(.*)'$") or value
                sections[current][lower(key)] = value
            end
        end
    end
    return sections
end

-- mode(path) -> permission bits as a number (octal digits), owner uid | nil
local function mode_and_owner(path)
    local out = capture("stat -L -c '%a %u' " .. shell_quote(path) .. " 2>/dev/null")
    local mode, uid = out:match("^(%d+) (%d+)")
    if not mode then
        return nil
    end
    return tonumber(mode, 8), tonumber(uid)
end

local function my_uid()
    return tonumber((capture("id -u 2>/dev/null"):gsub("%s+$", "")))
end

-- Refuses a file with a secret that others can read or that someone else owns.
function _M.check_private(path, holds_secret)
    if not holds_secret then
        return
    end
    local mode, owner = mode_and_owner(path)
    if not mode then
        config_error("cannot check the permissions of " .. path .. " (stat failed)")
    end
    if mode % 64 ~= 0 then
        config_error(path .. " holds a secret and others can read it (mode "
            .. format("%o", mode) .. "): run chmod 600 " .. path)
    end
    local me = my_uid()
    if me and owner ~= me then
        config_error(path .. " holds a secret and belongs to another user (uid " .. tostring(owner) .. ")")
    end
end

function _M.default_path(getenv)
    local explicit = getenv("WECOM_CONFIG")
    if explicit and explicit ~= "" then
        return explicit, true
    end
    local base = getenv("XDG_CONFIG_HOME")
    if not base or base == "" then
        local home = getenv("HOME")
        if not home or home == "" then
            return nil
        end
        base = home .. "/.config"
    end
    return base .. "/wecom/config", false
end

-- load(opts, getenv) -> settings
--   opts: the parsed command-line options (config, profile, corpid, agentid,
--   base-url, ca-file, token-dir, ...); getenv: os.getenv or a stand-in.
--   settings: corpid, secret, agentid, base_url, ca_file, token_dir,
--   callback_token, callback_aes_key, receive_id, suite_id, suite_secret,
--   web_base_url, config_path, profile.
function _M.load(opts, getenv)
    local path, explicit = opts.config, true
    if not path then
        path, explicit = _M.default_path(getenv)
    end
    local profile = opts.profile or getenv("WECOM_PROFILE")
    if profile == "" then
        profile = nil
    end
    local file = {}
    if path then
        local f = io_open(path, "rb")
        if f then
            local text = f:read("*a")
            f:close()
            local sections = _M.parse_ini(text, path)
            if profile and not sections[profile] then
                config_error(path .. " has no [" .. profile .. "] profile")
            end
            file = sections[profile or "default"]
            local holds_secret = false
            for _, s in pairs(sections) do
                for k in pairs(_M.SECRET_KEYS) do
                    if s[k] and s[k] ~= "" then
                        holds_secret = true
                    end
                end
            end
            _M.check_private(path, holds_secret)
        elseif explicit then
            config_error("cannot read the config file " .. path)
        elseif profile then
            config_error("--profile " .. profile .. " needs a config file (" .. path .. " does not exist)")
        end
    end

    local settings = { config_path = path, profile = profile or "default" }
    for key, var in pairs(_M.ENV) do
        local value
        -- a secret never comes from the command line (ps shows it)
        if not _M.SECRET_KEYS[key] then
            value = opts[(key:gsub("_", "-"))]
        end
        if value == nil then
            local env = getenv(var)
            if env ~= nil and env ~= "" then
                value = env
            end
        end
        if value == nil then
            value = file[key]
            if value == "" then
                value = nil
            end
        end
        settings[key] = value
    end
    if settings.agentid ~= nil then
        local n = tonumber(settings.agentid)
        if not n or n ~= floor(n) or n < 0 then
            config_error("agentid must be an integer (got '" .. tostring(settings.agentid) .. "')")
        end
        settings.agentid = n
    end
    return settings
end

-- The places a setting can come from, for messages.
function _M.sources(key)
    local parts = { _M.ENV[key] }
    if not _M.SECRET_KEYS[key] then
        parts[#parts + 1] = "--" .. key:gsub("_", "-")
    end
    parts[#parts + 1] = "`" .. key .. " =` in the config file"
    return concat(parts, ", ")
end

-- token_dir(settings, getenv) -> the file store's directory (created with its
-- parents, 0700): $XDG_CACHE_HOME/wecom/tokens, i.e. ~/.cache/wecom/tokens
function _M.token_dir(settings, getenv)
    local dir = settings.token_dir
    if not dir then
        local base = getenv("XDG_CACHE_HOME")
        if not base or base == "" then
            local home = getenv("HOME")
            if not home or home == "" then
                return nil
            end
            base = home .. "/.cache"
        end
        dir = base .. "/wecom/tokens"
    end
    local parent = dir:match("^(.*)/[^/]+/?$")
    if parent and parent ~= "" then
        os_execute("umask 077 && mkdir -p " .. shell_quote(parent) .. " 2>/dev/null")
    end
    return dir
end

return _M
