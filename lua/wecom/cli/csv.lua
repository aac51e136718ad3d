-- CSV for bin/wecom (RFC 4180): reading the files users give it (unionids,
-- contacts to import) and writing `--format csv`.
--
--   local rows, err = csv.records(text)   -- the first row names the columns
--   csv.line({ "a", "b,c" })              -- 'a,"b,c"\n'

local byte = string.byte
local concat = table.concat
local find = string.find
local gsub = string.gsub
local ipairs = ipairs
local lower = string.lower
local sub = string.sub
local tostring = tostring

local _M = {}

local QUOTE = byte('"')

-- rows(text) -> { { field, ... , line = n }, ... } | nil, err
--   Quoted fields may hold commas, quotes ("") and newlines; CRLF and LF
--   both end a row; a UTF-8 byte order mark at the start is dropped; blank
--   lines are skipped.
function _M.rows(text)
    if sub(text, 1, 3) == "\239\187\191" then
        text = sub(text, 4)
    end
    local rows, row = {}, {}
    local pos, len, line = 1, #text, 1
    local row_line = 1
    while pos <= len + 1 do
        local field
        if byte(text, pos) == QUOTE then
            local parts, p = {}, pos + 1
            while true do
                local q = find(text, '"', p, true)
                if not q then
                    return nil, "line " .. line .. ": a quoted field is not closed"
                end
                parts[#parts + 1] = sub(text, p, q - 1)
                if byte(text, q + 1) == QUOTE then
                    parts[#parts + 1] = '"'
                    p = q + 2
                else
                    pos = q + 1
                    break
                end
            end
            field = concat(parts)
            local _, newlines = gsub(field, "\n", "")
            line = line + newlines
            local c = sub(text, pos, pos)
            if c ~= "," and c ~= "\n" and c ~= "\r" and c ~= "" then
                return nil, "line " .. line .. ": text after a closing quote"
            end
        else
            local stop = find(text, "[,\r\n]", pos) or len + 1
            field = sub(text, pos, stop - 1)
            if find(field, '"', 1, true) then
                return nil, "line " .. line .. ": a quote inside an unquoted field"
            end
            pos = stop
        end
        row[#row + 1] = field
        local c = sub(text, pos, pos)
        if c == "," then
            pos = pos + 1
        else
            -- end of the row (CRLF, LF or the end of the text)
            if c == "\r" and sub(text, pos + 1, pos + 1) == "\n" then
                pos = pos + 1
            end
            pos = pos + 1
            if not (#row == 1 and row[1] == "") then
                row.line = row_line
                rows[#rows + 1] = row
            end
            row = {}
            line = line + 1
            row_line = line
            if pos > len then
                break
            end
        end
    end
    return rows
end

local function trim(s)
    return (gsub(s, "^%s*(.-)%s*$", "%1"))
end

-- records(text) -> records, columns | nil, err
--   The first row names the columns (trimmed, lower case); each record maps
--   those names to the row's fields (trimmed) and has `line`, its line number.
function _M.records(text)
    local rows, err = _M.rows(text)
    if not rows then
        return nil, err
    end
    local header = rows[1]
    if not header then
        return nil, "the file is empty (the first line names the columns)"
    end
    local columns, seen = {}, {}
    for i, name in ipairs(header) do
        name = lower(trim(name))
        if name == "" then
            return nil, "line " .. header.line .. ": column " .. i .. " has no name"
        end
        if seen[name] then
            return nil, "line " .. header.line .. ": column '" .. name .. "' appears twice"
        end
        seen[name] = true
        columns[i] = name
    end
    local records = {}
    for r = 2, #rows do
        local row = rows[r]
        if #row > #columns then
            return nil, "line " .. row.line .. ": " .. #row .. " fields, the header has " .. #columns
        end
        local rec = { line = row.line }
        for i, name in ipairs(columns) do
            rec[name] = trim(row[i] or "")
        end
        records[#records + 1] = rec
    end
    return records, columns
end

-- field(v) -> v as one CSV field, quoted when it holds , " CR or LF
function _M.field(v)
    if v == nil then
        return ""
    end
    local s = tostring(v)
    if find(s, '[,"\r\n]') then
        return '"' .. gsub(s, '"', '""') .. '"'
    end
    return s
end

-- line(values) -> one CSV row ending in \n
function _M.line(values)
    local out = {}
    for i = 1, #values do
        out[i] = _M.field(values[i])
    end
    return concat(out, ",") .. "\n"
end

return _M
