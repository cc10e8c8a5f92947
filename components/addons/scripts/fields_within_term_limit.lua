-- Fluent Bit Lua filter: keeps every string of a record's merged JSON (FIELDS_KEY, a
-- flat_object in the logs index) within the longest term Lucene indexes, so that OpenSearch
-- never refuses the record (and, with it, after the output's retries, its chunk of good ones).
--
-- FIELDS_KEY, UNINDEXED_KEY and MAX_TERM_BYTES are defined before this text by the program
-- (components/addons/log_shipper.py), from the same constants the index template uses.
--
-- OpenSearch 2.19's flat_object (FlatObjectFieldMapper.parseToken) indexes each leaf as terms
-- and doc values; the longest is the doc value of its "path=value" term:
--   <field>.<field>.<key>.<key>...=<value>
-- (keys of nested maps joined by "."; array elements add nothing to the path; a null leaf is
-- skipped). Lucene refuses a document with a term or doc value over MAX_TERM_BYTES bytes.
-- A string whose term would be longer keeps its longest prefix that fits (cut at a UTF-8
-- character boundary), and its whole text goes to UNINDEXED_KEY[<key path>] (a list), which
-- the index keeps in _source without parsing it. Where not even an empty value fits (a key
-- path longer than the limit) the leaf becomes null.
--
-- The record passes untouched (return code 0) unless a string is too long: only those records
-- are rebuilt from Lua tables (code 2, timestamp kept).

-- Fluent Bit marks each table it makes from a record with the msgpack type it came from
-- (src/flb_lua.c, flb_lua_pushmsgpack: metatable {type = 1} for an array, {type = 2} for a
-- map), which is how an empty map stays a map on the way back.
local ARRAY = 1

local function is_array(node)
    local meta = getmetatable(node)
    if meta ~= nil and meta.type ~= nil then
        return meta.type == ARRAY
    end
    local count = 0
    for key in pairs(node) do
        if type(key) ~= "number" or key < 1 then
            return false
        end
        count = count + 1
    end
    return count > 0 and count == #node
end

-- The longest prefix of `text` of at most `bytes` bytes that ends on a character boundary
-- (a UTF-8 continuation byte is 10xxxxxx: the cut moves back over them).
local function utf8_prefix(text, bytes)
    local cut = bytes
    while cut > 0 do
        local next_byte = string.byte(text, cut + 1)
        if next_byte == nil or next_byte < 0x80 or next_byte >= 0xC0 then
            break
        end
        cut = cut - 1
    end
    return string.sub(text, 1, cut)
end

-- The bytes a leaf under `path` may have: MAX_TERM_BYTES less "<field>.<field>.<path>=".
local function room_for(path)
    return MAX_TERM_BYTES - (2 * (#FIELDS_KEY + 1) + #path + 1)
end

local function keep_within(node, path, unindexed)
    local array = is_array(node)
    local changed = false
    for key, value in pairs(node) do
        local child = path
        if not array then
            child = (path == "" and "" or path .. ".") .. tostring(key)
        end
        if type(value) == "table" then
            if keep_within(value, child, unindexed) then
                changed = true
            end
        elseif type(value) == "string" then
            local room = room_for(child)
            if #value > room then
                local whole = unindexed[child]
                if whole == nil then
                    whole = {}
                    unindexed[child] = whole
                end
                whole[#whole + 1] = value
                if room >= 0 then
                    node[key] = utf8_prefix(value, room)
                else
                    node[key] = flb_null
                end
                changed = true
            end
        end
    end
    return changed
end

function fields_within_term_limit(tag, timestamp, record)
    local fields = record[FIELDS_KEY]
    if type(fields) ~= "table" then
        return 0, timestamp, record
    end
    local unindexed = {}
    if not keep_within(fields, "", unindexed) then
        return 0, timestamp, record
    end
    record[UNINDEXED_KEY] = unindexed
    return 2, timestamp, record
end
