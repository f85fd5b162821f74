-- handler_budget.lua - instruction budgets for handlers (--handler-budget N,
-- Client{handler_budget = N}): a child mqlua has one client whose handlers
-- spin forever (also inside pcall) and another that answers pings; the
-- spinning handlers are stopped with "handler exceeded its budget of N
-- instructions" in the log, and the pings are still answered. A handler
-- that waits gets a fresh budget for every slice.
local mqtt = require "mqlua"

local dir = T.tmpdir()
local child = dir .. "/child.lua"
local f = assert(io.open(child, "w"))
f:write([[
local mqtt = require "mqlua"
local HOST, PORT, MODE = arg[1], tonumber(arg[2]), arg[3]
local spinner = mqtt.Client{ client_id = "budget-spinner-" .. MODE,
	handler_budget = MODE == "client" and 200000 or nil }
-- no budget for this one: none given (MODE client), or 0 over --handler-budget (MODE cli)
local answerer = mqtt.Client{ client_id = "budget-answerer-" .. MODE, handler_budget = MODE == "cli" and 0 or nil }
local ready = 0
local function subscribe_on_connect(c, filter)
	c.on_connect = function(cl) cl:subscribe(filter) end
	c.on_subscribe = function()
		ready = ready + 1
		if ready == 2 then print("ready") io.stdout:flush() end
	end
end
spinner.on_message = function(_, _, m)
	if m.payload == "pcall" then   -- catching the error does not buy more time
		while true do pcall(function() while true do end end) end
	end
	while true do end
end
spinner:message_callback_add("budget/spin/cb", function() while true do end end)
spinner:message_callback_add("budget/spin/slices", function(c)
	for _ = 1, 5 do                  -- 5 x ~100,000 instructions, waiting in between
		local x = 0
		for j = 1, 25000 do x = x + j end
		mqtt.sleep(0.01)
	end
	c:publish("budget/pong", "slices done")
end)
subscribe_on_connect(spinner, "budget/spin/#")
answerer.on_message = function(c, _, m)
	local x = 0
	for j = 1, 250000 do x = x + j end   -- more than the spinner's budget
	c:publish("budget/pong", m.payload)
end
subscribe_on_connect(answerer, "budget/ping")
spinner:connect(HOST, PORT)
answerer:connect(HOST, PORT)
]])
f:close()

local function count(s, plain)
	local n, at = 0, 1
	while true do
		local i, j = s:find(plain, at, true)
		if not i then return n end
		n, at = n + 1, j + 1
	end
end

-- Runs the child (extra: mqlua options before the script), sends the spin
-- messages and three pings, and checks what comes back and what it logged.
local function run(t, extra, mode)
	local b = T.broker()
	local p = T.spawn.start(T.mqlua() .. " " .. extra .. " " .. child .. " " .. b.host .. " " .. b.port .. " " .. mode,
		"ready")
	local c = T.connected(t, "budget-tester-" .. mode)
	local got = T.collector(c)
	T.subscribed(t, c, "budget/pong")
	c:publish("budget/spin/x", "spin")
	c:publish("budget/spin/cb", "spin")
	c:publish("budget/spin/x", "pcall")
	for i = 1, 3 do c:publish("budget/ping", "ping" .. i) end
	t:ok(T.wait_until(function() return #got >= 3 end, 15), "the other client's handler answers every ping")
	t:eq(T.payloads(got), { "ping1", "ping2", "ping3" }, "the answers, in order")
	local log = p:log()
	local exceeded = "handler exceeded its budget of 200000 instructions"
	t:eq(count(log, "error in on_message (budget/spin/x): " .. exceeded), 2, "on_message stopped twice (also the pcall loop)")
	t:eq(count(log, "error in message callback (budget/spin/cb): " .. exceeded), 1, "the message_callback_add handler stopped")
	return c, got, p
end

test("--handler-budget: spinning handlers are stopped and logged; the other client keeps answering", function(t)
	local c, _, p = run(t, "--handler-budget 200000", "cli")
	c:disconnect()
	p:stop()
end, { timeout = 40 })

test("Client{handler_budget}: only that client's handlers; a handler that waits gets a budget per slice", function(t)
	local c, got, p = run(t, "", "client")
	c:publish("budget/spin/slices", "go")
	t:ok(T.wait_until(function() return #got >= 4 end, 10), "the waiting handler finishes")
	t:eq(got[4] and got[4].payload, "slices done", "500,000 instructions in 5 slices of 100,000 pass")
	t:eq(count(p:log(), "error in message callback"), 1, "the waiting handler was not stopped")
	c:disconnect()
	p:stop()
end, { timeout = 40 })

test("handler_budget: the attribute, and errors naming it", function(t)
	local c = mqtt.Client("budget-attr")
	t:eq(c.handler_budget, nil, "none by default")
	t:eq(mqtt.Client{ client_id = "budget-attr2", handler_budget = 5000 }.handler_budget, 5000, "from Client{}")
	c.handler_budget = 0
	t:eq(c.handler_budget, 0, "0: no budget, even with --handler-budget")
	t:raises(function() c.handler_budget = -1 end, "handler_budget must be a whole number of instructions")
	t:raises(function() mqtt.Client{ client_id = "x", handler_budget = 1.5 } end, "handler_budget")
	local out, code = T.sh(T.mqlua() .. " --handler-budget lots -e 'print(1)' 2>&1")
	t:eq(code, 2, "a bad --handler-budget exits 2")
	t:ok(out:find("--handler-budget wants a number of instructions (0: none), not 'lots'", 1, true), out)
end)
