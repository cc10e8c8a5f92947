"""Runs a Fluent Bit Lua filter on a record the way Fluent Bit 5.1.1 does, on a real LuaJIT.

Fluent Bit embeds LuaJIT 2.1 (lib/luajit-7152e154 at v5.1.1); the tests run Debian 12's LuaJIT
2.1 build, unpacked by `make checkers` into .tools/luajit (or the one LUAJIT names). What Fluent
Bit does around the call is reproduced here from its source (fluent/fluent-bit v5.1.1):

- plugins/filter_lua/lua.c, cb_lua_filter: the function gets (tag, timestamp, record) and
  returns (code, timestamp, record); code -1 drops the record, 0 keeps the original, 1 and 2
  take the returned record (2 keeps the original timestamp). `enable_flb_null` sets the
  global `flb_null` (src/flb_lua.c, flb_lua_enable_flb_null: a NULL light userdata).
- src/flb_lua.c, flb_lua_pushmsgpack: a msgpack map becomes a table with the metatable
  {type = 2}, an array one with {type = 1} (FLB_LUA_L2C_TYPE_ARRAY/MAP in flb_lua.h), nil
  becomes `flb_null`, integers and floats Lua numbers, strings Lua strings (bytes).
- src/flb_lua.c, flb_lua_tomsgpack: a table with such a metatable goes back as that type
  (arrays by `#t`); one without, as an array when flb_lua_arraylength finds 1..n keys, else a
  map; a number with an integral value as an integer; a NULL light userdata as nil.

The record goes in as a Lua expression and comes back as JSON (bytes kept as they are: a string
cut inside a UTF-8 character fails to decode here).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from offline.engine import PROJECT_DIR

LUAJIT = Path(
    os.environ.get("LUAJIT", PROJECT_DIR / ".tools" / "luajit" / "usr" / "bin" / "luajit")
)

# Fluent Bit's side of the call, in Lua: `flb_null` (a userdata, as the light userdata is to the
# script), the metatables, and the conversion back (flb_lua_tomsgpack) written as JSON.
HARNESS = r"""
flb_null = newproxy(false)
local ARRAY, MAP = 1, 2
local function arr(t) return setmetatable(t, {type = ARRAY}) end
local function map(t) return setmetatable(t, {type = MAP}) end

local function arraylength(t)
  local n = table.maxn(t)
  if n > 0 then return n end
  local count, max = 0, 0
  for k in pairs(t) do
    if type(k) ~= "number" or k <= 0 then return -1 end
    count = count + 1
    if k > max then max = k end
  end
  if max ~= count then return -1 end
  return max
end

local out = {}
local function emit(s) out[#out + 1] = s end
local function string_json(s)
  emit('"')
  emit((s:gsub('[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end)))
  emit('"')
end
local tojson
local function as_array(t, n)
  emit("[")
  for i = 1, n do
    if i > 1 then emit(",") end
    tojson(t[i])
  end
  emit("]")
end
local function as_map(t)
  emit("{")
  local first = true
  for k, v in pairs(t) do
    if not first then emit(",") end
    first = false
    string_json(tostring(k))
    emit(":")
    tojson(v)
  end
  emit("}")
end
tojson = function(v)
  local kind = type(v)
  if kind == "string" then string_json(v)
  elseif kind == "number" then
    if v == math.floor(v) and v > -2^63 and v < 2^63 then emit(string.format("%d", v))
    else emit(string.format("%.17g", v)) end
  elseif kind == "boolean" then emit(tostring(v))
  elseif kind == "nil" or v == flb_null then emit("null")
  elseif kind == "table" then
    local meta = getmetatable(v)
    if meta ~= nil and meta.type ~= nil then
      if meta.type == ARRAY then as_array(v, #v) else as_map(v) end
    else
      local n = arraylength(v)
      if n > 0 then as_array(v, n) else as_map(v) end
    end
  else error("cannot serialize a " .. kind) end
end

local script, call, tag, timestamp, record = ...
assert(loadstring(script, "fluentbit.lua"))()
local code, new_timestamp, new_record = _G[call](tag, timestamp, record)
emit('{"code":')
tojson(code)
emit(',"timestamp":')
tojson(new_timestamp)
emit(',"record":')
if code == 0 then emit("null") else tojson(new_record) end
emit("}")
io.write(table.concat(out))
"""


def lua_value(value: Any) -> str:
    """`value` as the table flb_lua_pushmsgpack would build from its msgpack form."""
    if value is None:
        return "flb_null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # Every byte as a decimal escape: any text, any length, no quoting rules to get wrong.
        return '"' + "".join(f"\\{byte}" for byte in value.encode()) + '"'
    if isinstance(value, list):
        return "arr({" + ", ".join(lua_value(v) for v in value) + "})"
    if isinstance(value, dict):
        items = ", ".join(f"[{lua_value(str(k))}] = {lua_value(v)}" for k, v in value.items())
        return "map({" + items + "})"
    raise TypeError(type(value))


def run_filter(
    script: str, function: str, record: dict[str, Any], tag: str = "kube.x"
) -> tuple[int, dict[str, Any]]:
    """The filter's return code and the record Fluent Bit passes on (the original for code 0)."""
    assert LUAJIT.exists(), f"{LUAJIT} missing: run `make checkers`"
    # The harness's arguments: the script and the record are built by a small Lua chunk that
    # the harness runs first (a record can be larger than a command line).
    program = HARNESS.replace(
        "local script, call, tag, timestamp, record = ...",
        "local script, call, tag, timestamp = SCRIPT, CALL, TAG, 1700000000.5\n"
        "local record = RECORD()",
    )
    prelude = (
        f"SCRIPT = {lua_value(script)}\nCALL = {lua_value(function)}\nTAG = {lua_value(tag)}\n"
        "local function arr(t) return setmetatable(t, {type = 1}) end\n"
        "local function map(t) return setmetatable(t, {type = 2}) end\n"
        "flb_null = newproxy(false)\n"
        f"function RECORD() return {lua_value(record)} end\n"
    )
    library = LUAJIT.parent.parent / "lib" / "x86_64-linux-gnu"
    result = subprocess.run(
        [str(LUAJIT), "-"],
        input=(prelude + program.replace("flb_null = newproxy(false)\n", "", 1)).encode(),
        capture_output=True,
        check=False,
        env={**os.environ, "LD_LIBRARY_PATH": str(library)},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    answer = json.loads(result.stdout.decode("utf-8", errors="strict"))
    code = int(answer["code"])
    return code, (record if code == 0 else answer["record"])
