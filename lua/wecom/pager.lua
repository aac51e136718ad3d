-- wecom.pager: lazy iterators over WeCom's cursor-paged APIs (the plumbing
-- the endpoint modules in wecom.api.* build their iterators on).
--
-- A pager turns a `fetch(cursor)` function into a generic-for iterator that
-- yields one item at a time and asks for the next page only when the current
-- one is used up.  `fetch` returns `items, next_cursor` (next_cursor nil or ""
-- when there is nothing left) or `nil, err`.  A failure part-way through is
-- raised with the error object itself, so a loop never ends silently on an
-- error; wrap the loop in pcall to handle it.

local error = error
local type = type
local tostring = tostring
local errors = require "wecom.errors"

local _M = {}

-- A server that keeps answering with the same cursor (or with empty pages
-- that claim more data) would otherwise make the loop spin forever.
local MAX_EMPTY_PAGES = 100

local function stalled(what)
    return errors.new("decode", what .. ": the server's cursor does not advance")
end

-- iterate(fetch [, name]) -> iterator
-- name labels the errors raised when paging stalls.
function _M.iterate(fetch, name)
    errors.need("wecom.pager.iterate", "fetch", fetch, errors.func)
    name = name or "pager"

    local items, pos = nil, 0
    local cursor = nil
    local done = false
    local failure = nil
    local empty_pages = 0

    -- once failed, keep raising the same error instead of looking finished
    local function raise(err)
        failure = err
        error(err, 0)
    end

    return function()
        while true do
            if failure then
                error(failure, 0)
            end
            if items then
                pos = pos + 1
                local item = items[pos]
                if item ~= nil then
                    return item
                end
                items = nil
            end
            if done then
                return nil
            end

            local page, next_cursor = fetch(cursor)
            if page == nil then
                raise(next_cursor or errors.new("decode", name .. ": fetch failed without an error"))
            end
            if type(page) ~= "table" then
                raise(errors.new("decode", name .. ": page is not a list (" .. type(page) .. ")"))
            end

            if next_cursor == nil or next_cursor == "" then
                done = true
            elseif next_cursor == cursor then
                raise(stalled(name))
            else
                if #page == 0 then
                    empty_pages = empty_pages + 1
                    if empty_pages > MAX_EMPTY_PAGES then
                        raise(stalled(name))
                    end
                else
                    empty_pages = 0
                end
                cursor = tostring(next_cursor)
            end
            items, pos = page, 0
        end
    end
end

-- concat(sources) -> iterator over the items of each iterator that
-- `sources()` returns in turn (nil ends).  Used to walk group trees.
function _M.concat(sources)
    local current = nil
    return function()
        while true do
            if current == nil then
                current = sources()
                if current == nil then
                    return nil
                end
            end
            local item = current()
            if item ~= nil then
                return item
            end
            current = nil
        end
    end
end

-- collect(iterator) -> array of everything it yields (raises like the iterator).
function _M.collect(iterator)
    local list, n = {}, 0
    for item in iterator do
        n = n + 1
        list[n] = item
    end
    return list
end

return _M
