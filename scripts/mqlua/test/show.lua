--[[
mqlua/test/show.lua - value display and deep comparison for mqlua.test:
show(v) renders any value as compact Lua-like text (sorted keys, cycles
marked, cut at a limit); diff(a, b) finds the first place two values differ.
]]

local M = {}

local function is_identifier(k)
	return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil
end

function M.quote(s)
	return (string.format("%q", s):gsub("\\\n", "\\n"))
end
local quote = M.quote

local function key_order(a, b)
	local ta, tb = type(a), type(b)
	if ta ~= tb then return ta < tb end
	if ta == "number" or ta == "string" then return a < b end
	return tostring(a) < tostring(b)
end

-- show(v[, limit]): v as text, cut at `limit` characters (default 400).
function M.show(v, limit)
	limit = limit or 400
	local out, len, seen = {}, 0, {}
	local function put(s)
		out[#out + 1] = s
		len = len + #s
	end
	local function walk(x, depth)
		if len > limit then return end
		local tx = type(x)
		if tx == "string" then
			put(quote(x))
		elseif tx == "number" then
			if x ~= x then put("nan")
			elseif math.type(x) == "float" and x == math.floor(x) and math.abs(x) < 1e15 then
				put(string.format("%.1f", x))
			else put(tostring(x)) end
		elseif tx ~= "table" then
			put(tostring(x))
		elseif seen[x] then
			put("<cycle>")
		elseif depth > 8 then
			put("{...}")
		else
			seen[x] = true
			local keys, n = {}, #x
			for k in pairs(x) do
				if not (math.type(k) == "integer" and k >= 1 and k <= n) then
					keys[#keys + 1] = k
				end
			end
			table.sort(keys, key_order)
			put("{")
			local first = true
			local function sep()
				if not first then put(", ") end
				first = false
			end
			for i = 1, n do
				sep()
				walk(x[i], depth + 1)
			end
			for _, k in ipairs(keys) do
				sep()
				if is_identifier(k) then put(k)
				else put("["); walk(k, depth + 1); put("]") end
				put(" = ")
				walk(x[k], depth + 1)
			end
			put("}")
			seen[x] = nil
		end
	end
	walk(v, 0)
	local s = table.concat(out)
	if #s > limit then s = s:sub(1, limit) .. "..." end
	return s
end

local function path_of(path, k)
	if is_identifier(k) then return path .. "." .. k end
	return path .. "[" .. M.show(k, 60) .. "]"
end

local function diff(a, b, path, seen)
	if rawequal(a, b) then return nil end
	if type(a) ~= type(b) then return path, a, b end
	if type(a) == "number" and a ~= a and b ~= b then return nil end
	if type(a) ~= "table" then
		if a == b then return nil end
		return path, a, b
	end
	seen[a] = seen[a] or {}
	if seen[a][b] then return nil end      -- already being compared above
	seen[a][b] = true
	local keys = {}
	for k in pairs(a) do keys[#keys + 1] = k end
	for k in pairs(b) do
		if rawget(a, k) == nil then keys[#keys + 1] = k end
	end
	table.sort(keys, key_order)
	for _, k in ipairs(keys) do
		local p, x, y = diff(rawget(a, k), rawget(b, k), path_of(path, k), seen)
		if p then return p, x, y end
	end
	return nil
end

-- diff(a, b): nil if a deep-equals b (tables: same keys, equal values,
-- metatables ignored; numbers with ==, so 1 == 1.0; NaN equals NaN), else
-- the path of the first difference ("" at the top, ".k[2]" below) and the
-- two values found there.
function M.diff(a, b)
	return diff(a, b, "", {})
end

return M
