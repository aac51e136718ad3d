-- What bin/wecom writes: results on stdout as a table, JSON or CSV;
-- messages and the progress bar on stderr; never a secret (every line goes
-- through scrub first).
--
--   local out = output.new{ format = "table", stdout = io.stdout, stderr = io.stderr,
--                           progress = true, secrets = { secret, aes_key } }
--   out:rows(records, { { "corpid" }, { "corp_name", "name" } })
--   out:note("job %s submitted", jobid)
--   local bar = out:progress(total, "converting"); bar:step(); bar:done()

local assert = assert
local byte = string.byte
local concat = table.concat
local find = string.find
local floor = math.floor
local format = string.format
local ipairs = ipairs
local math_type = math.type          -- nil on LuaJIT
local rep = string.rep
local select = select
local setmetatable = setmetatable
local sub = string.sub
local tostring = tostring
local type = type

local core = require "wecom.core"
local csv = require "wecom.cli.csv"
local json = require "wecom.json"

local _M = {}

local Output = {}
Output.__index = Output

local REDACTED = "[REDACTED]"
local MIN_SECRET = 6          -- shorter strings would redact ordinary words
local BAR_WIDTH = 30
local REDRAW = 0.1            -- seconds between two drawings of the bar

-- Display width of a UTF-8 string: East Asian wide characters (CJK, Hangul,
-- full-width forms) take two columns, so Chinese corp names line up.
local function codepoint_width(cp)
    if (cp >= 0x1100 and cp <= 0x115F) or (cp >= 0x2E80 and cp <= 0xA4CF)
        or (cp >= 0xAC00 and cp <= 0xD7A3) or (cp >= 0xF900 and cp <= 0xFAFF)
        or (cp >= 0xFE30 and cp <= 0xFE4F) or (cp >= 0xFF00 and cp <= 0xFF60)
        or (cp >= 0xFFE0 and cp <= 0xFFE6) or (cp >= 0x20000 and cp <= 0x3FFFD) then
        return 2
    end
    return 1
end

function _M.width(s)
    local w, i, n = 0, 1, #s
    while i <= n do
        local c = byte(s, i)
        local cp, len
        if c < 0x80 then
            cp, len = c, 1
        elseif c >= 0xF0 then
            cp, len = ((c % 8) * 262144) + ((byte(s, i + 1) or 128) % 64) * 4096
                + ((byte(s, i + 2) or 128) % 64) * 64 + (byte(s, i + 3) or 128) % 64, 4
        elseif c >= 0xE0 then
            cp, len = ((c % 16) * 4096) + ((byte(s, i + 1) or 128) % 64) * 64 + (byte(s, i + 2) or 128) % 64, 3
        elseif c >= 0xC0 then
            cp, len = ((c % 32) * 64) + (byte(s, i + 1) or 128) % 64, 2
        else
            cp, len = 0xFFFD, 1
        end
        w = w + (cp < 32 and 0 or codepoint_width(cp))
        i = i + len
    end
    return w
end
local width = _M.width

-- text(v) -> how a field value prints in a table or CSV cell
local function text(v)
    local tv = type(v)
    if v == nil or v == json.null then
        return ""
    elseif tv == "number" then
        if (math_type and math_type(v) == "integer") or (v == floor(v) and v > -2^53 and v < 2^53) then
            return format("%d", v)
        end
        return tostring(v)
    elseif tv == "boolean" then
        return v and "true" or "false"
    elseif tv == "table" then
        return json.encode(v) or "?"
    end
    return tostring(v)
end
_M.text = text

-- new{ format, stdout, stderr, progress, secrets } -> out
function _M.new(o)
    local self = setmetatable({
        format = o.format or "table",
        stdout = o.stdout,
        stderr = o.stderr,
        show_progress = o.progress == true,
        secrets = {},
    }, Output)
    for _, s in ipairs(o.secrets or {}) do
        self:secret(s)
    end
    return self
end

-- secret(s): s is never written (replaced by [REDACTED])
function Output:secret(s)
    if type(s) == "string" and #s >= MIN_SECRET then
        self.secrets[#self.secrets + 1] = s
    end
end

function Output:scrub(s)
    s = tostring(s)
    for _, secret in ipairs(self.secrets) do
        local from = 1
        while true do
            local a, b = find(s, secret, from, true)
            if not a then
                break
            end
            s = sub(s, 1, a - 1) .. REDACTED .. sub(s, b + 1)
            from = a + #REDACTED
        end
    end
    return s
end

function Output:write(...)
    local parts = { ... }
    for i = 1, select("#", ...) do
        parts[i] = tostring(parts[i])
    end
    self:clear_bar()
    self.stdout:write(self:scrub(concat(parts)))
end

-- note(fmt, ...): a line on stderr
function Output:note(fmt, ...)
    local line = select("#", ...) > 0 and format(fmt, ...) or fmt
    self:clear_bar()
    self.stderr:write(self:scrub(line), "\n")
    self.stderr:flush()
end

---------------------------------------------------------------------------
-- Results
---------------------------------------------------------------------------

-- columns: { { key [, title] }, ... }
local function table_text(records, columns)
    local widths, header = {}, {}
    for i, col in ipairs(columns) do
        header[i] = col[2] or col[1]
        widths[i] = width(header[i])
    end
    local cells = {}
    for r, rec in ipairs(records) do
        local row = {}
        for i, col in ipairs(columns) do
            row[i] = text(rec[col[1]]):gsub("[\r\n\t]", " ")
            local w = width(row[i])
            if w > widths[i] then
                widths[i] = w
            end
        end
        cells[r] = row
    end
    local lines = {}
    local function add(row)
        local parts = {}
        for i, cell in ipairs(row) do
            if i < #row then
                parts[i] = cell .. rep(" ", widths[i] - width(cell) + 2)
            else
                parts[i] = cell
            end
        end
        lines[#lines + 1] = (concat(parts):gsub("%s+$", ""))
    end
    add(header)
    for _, row in ipairs(cells) do
        add(row)
    end
    return concat(lines, "\n") .. "\n"
end

-- json_text(records) -> a JSON array, one element per line
local function json_text(records)
    if #records == 0 then
        return "[]\n"
    end
    local parts = {}
    for i, rec in ipairs(records) do
        parts[i] = assert(json.encode(rec))
    end
    return "[\n" .. concat(parts, ",\n") .. "\n]\n"
end
_M.json_text = json_text

function _M.csv_text(records, columns)
    local lines = {}
    local header = {}
    for i, col in ipairs(columns) do
        header[i] = col[1]
    end
    lines[1] = csv.line(header)
    for r, rec in ipairs(records) do
        local row = {}
        for i, col in ipairs(columns) do
            row[i] = text(rec[col[1]])
        end
        lines[r + 1] = csv.line(row)
    end
    return concat(lines)
end

-- rows(records, columns [, tree]): the records in the chosen format; JSON
-- has every field of a record, the table and CSV the columns.  tree: text
-- for the table format instead (groups and corps print as a tree there).
function Output:rows(records, columns, tree)
    if self.format == "json" then
        self:write(json_text(records))
    elseif self.format == "csv" then
        self:write(_M.csv_text(records, columns))
    elseif tree then
        self:write(tree)
    else
        self:write(table_text(records, columns))
    end
end

-- object(t): one record; JSON as an object, table as "key  value" lines
function Output:object(t, keys)
    if self.format == "json" then
        self:write(assert(json.encode(t)), "\n")
        return
    end
    local records = {}
    for _, k in ipairs(keys) do
        records[#records + 1] = { field = k, value = t[k] }
    end
    self:rows(records, { { "field" }, { "value" } })
end

---------------------------------------------------------------------------
-- Progress on stderr (only when it is a terminal)
---------------------------------------------------------------------------

local Bar = {}
Bar.__index = Bar

function Bar:draw(force)
    local now = core.monotonic()
    if not force and now - self.drawn < REDRAW then
        return
    end
    self.drawn = now
    local line
    if self.total and self.total > 0 then
        local filled = floor(BAR_WIDTH * self.count / self.total)
        line = format("%s [%s%s] %d/%d %3d%%", self.label, rep("#", filled), rep(".", BAR_WIDTH - filled),
            self.count, self.total, floor(100 * self.count / self.total))
    else
        line = format("%s %d%s", self.label, self.count, self.status and (" " .. self.status) or "")
    end
    self.out.bar = self
    self.out.stderr:write("\r\27[K", self.out:scrub(line))
    self.out.stderr:flush()
end

-- step([n]): n more done
function Bar:step(n)
    self.count = self.count + (n or 1)
    self:draw(self.count == self.total)
end

-- status(s): a word shown after the count ("running 12s")
function Bar:set_status(s)
    self.status = s
    self:draw(true)
end

function Bar:done()
    if self.out.bar == self then
        self:draw(true)
        self.out.stderr:write("\n")
        self.out.bar = nil
    end
end

local NO_BAR = { step = function() end, set_status = function() end, done = function() end }

function Output:progress(total, label)
    if not self.show_progress then
        return NO_BAR
    end
    local bar = setmetatable({ out = self, total = total, label = label, count = 0, drawn = -1 }, Bar)
    bar:draw(true)
    return bar
end

-- a message in the middle of a bar: wipe the bar's line first
function Output:clear_bar()
    if self.bar then
        self.stderr:write("\r\27[K")
        self.bar.drawn = -1
    end
end

return _M
