-- tasks.lua - handlers and the main chunk run as tasks: a handler that
-- waits (mqlua.sleep, wait_for_publish, wait_until) lets the loop run other
-- handlers meanwhile; mqlua.spawn starts another task; outside a task (a
-- coroutine the script made) the waits keep their blocking form.
local mqtt = require "mqlua"
local test = T.test

T.broker()   -- the default broker of this file

test("a handler that sleeps does not hold up the next message", function(t)
	local c = T.connected(t, "task-sleep")
	local events = {}
	c:message_callback_add("slow/#", function(_, _, msg)
		events[#events + 1] = "slow start"
		mqtt.sleep(0.5)
		events[#events + 1] = "slow end " .. msg.payload
	end)
	c:message_callback_add("fast/#", function(_, _, msg)
		events[#events + 1] = "fast " .. msg.payload
	end)
	T.subscribed(t, c, { { "slow/#", 1 }, { "fast/#", 1 } })
	c:publish("slow/1", "a", 1)
	t:ok(T.wait_until(function() return #events == 1 end), "the slow handler started")
	c:publish("fast/1", "b", 1)
	t:ok(T.wait_until(function() return #events == 3 end), "both finished")
	t:eq(events, { "slow start", "fast b", "slow end a" }, "the fast message was handled while the slow one slept")
	c:disconnect()
end)

test("many handlers sleep at once, each resumes with its own message", function(t)
	local c = T.connected(t, "task-many")
	local done = {}
	c.on_message = function(_, _, msg)
		local p = msg.payload
		mqtt.sleep(0.2 + (tonumber(p) % 3) * 0.05)
		done[#done + 1] = p
	end
	T.subscribed(t, c, "many/#", 1)
	local t0 = mqtt.time()
	for i = 1, 50 do c:publish("many/x", tostring(i), 1) end
	t:ok(T.wait_until(function() return #done == 50 end), "all 50 handlers finished")
	t:ok(mqtt.time() - t0 < 2, "they slept side by side, not one after the other ("
		.. string.format("%.2f", mqtt.time() - t0) .. " s)")
	table.sort(done, function(a, b) return tonumber(a) < tonumber(b) end)
	local want = {}
	for i = 1, 50 do want[i] = tostring(i) end
	t:eq(done, want, "every message once")
	c:disconnect()
end)

test("wait_for_publish inside a handler of the same client waits for the ack", function(t)
	local c = T.connected(t, "task-wfp")
	local result
	c:message_callback_add("wfp/in", function(client)
		local info = client:publish("wfp/out", "y", 1)
		result = { info:wait_for_publish(5), info:is_published() }
	end)
	T.subscribed(t, c, "wfp/in", 0)
	c:publish("wfp/in", "go", 0)
	t:ok(T.wait_until(function() return result ~= nil end), "the handler finished")
	t:eq(result, { true, true }, "wait_for_publish returned true and the message is published")
	c:disconnect()
end)

test("wait_until inside a handler sees what other handlers do", function(t)
	local c = T.connected(t, "task-wu")
	local flag, outcome = false, nil
	c:message_callback_add("wu/wait", function()
		outcome = { mqtt.wait_until(function() return flag end, 3) }
	end)
	c:message_callback_add("wu/set", function() flag = true end)
	T.subscribed(t, c, "wu/#", 0)
	c:publish("wu/wait", "", 0)
	mqtt.sleep(0.2)
	t:eq(outcome, nil, "still waiting")
	c:publish("wu/set", "", 0)
	t:ok(T.wait_until(function() return outcome ~= nil end), "the waiting handler finished")
	t:eq(outcome, { true }, "wait_until returned true")
	outcome = nil
	flag = false
	c:message_callback_add("wu/short", function()
		outcome = { mqtt.wait_until(function() return flag end, 0.2) }
	end)
	c:publish("wu/short", "", 0)
	t:ok(T.wait_until(function() return outcome ~= nil end), "the short wait ended")
	t:eq(outcome, { nil, "timeout" }, "a timeout gives nil, \"timeout\"")
	c:disconnect()
end)

test("mqlua.spawn runs a function as a task beside the caller", function(t)
	local log = {}
	mqtt.spawn(function(a, b)
		log[#log + 1] = "spawned " .. a .. b
		mqtt.sleep(0.2)
		log[#log + 1] = "spawned woke"
	end, "x", "y")
	log[#log + 1] = "caller"
	t:eq(log, { "spawned xy", "caller" }, "it ran at once, up to its first wait")
	t:ok(T.wait_until(function() return #log == 3 end), "it finished on the loop")
	t:eq(log[3], "spawned woke", "and woke from its sleep")
	t:raises(function() mqtt.spawn("nope") end, "bad argument #1 to 'spawn'")
end)

test("an error in a task after it waited is logged with its traceback", function(t)
	local out = T.sh([[$MQLUA -e '
		local mqtt = require "mqlua"
		mqtt.spawn(function() mqtt.sleep(0.1); error("late boom") end)
		mqtt.sleep(0.3)
		print("still running")' 2>&1]])
	t:match(out, "ERROR %[%(command line%)%] error in mqlua.spawn task: %(command line%):3: late boom", "the error is logged")
	t:match(out, "stack traceback:", "with a traceback")
	t:match(out, "still running", "the script goes on")
end)

test("the main chunk is a task: its error after a wait exits 1 with file:line", function(t)
	local dir = T.tmpdir()
	local f = assert(io.open(dir .. "/late.lua", "w"))
	f:write('local mqtt = require "mqlua"\nmqtt.after(0.05, function() print("timer ran") end)\n',
		'mqtt.sleep(0.2)\nerror("main failed late")\n')
	f:close()
	local out, code = T.sh("$MQLUA " .. dir .. "/late.lua 2>&1; echo \"exit=$?\"")
	t:match(out, "timer ran", "the loop ran while the main chunk slept")
	t:match(out, "mqlua: " .. dir:gsub("%p", "%%%0") .. "/late.lua:4: main failed late", "the error names file:line")
	t:match(out, "exit=1", "exit status 1")
end)

test("coroutine.yield at the top of a handler is an error, not a lost message", function(t)
	local out = T.sh([[$MQLUA -e '
		local mqtt = require "mqlua"
		mqtt.after(0, function() coroutine.yield() end)
		mqtt.sleep(0.1)
		print("went on")' 2>&1]])
	t:match(out, "error in mqlua.after callback: attempt to yield from a handler", "the error says what happened")
	t:match(out, "went on", "the script goes on")
end)

test("outside a task (a coroutine the script made) sleep blocks as before", function(t)
	local ticks = 0
	local tm = mqtt.every(0.02, function() ticks = ticks + 1 end)
	local co = coroutine.create(function()
		mqtt.sleep(0.2)
		return "slept"
	end)
	local ok, res = coroutine.resume(co)
	tm:cancel()
	t:eq({ ok, res }, { true, "slept" }, "the coroutine slept and returned (it did not yield to us)")
	t:ok(ticks >= 5, "the loop ran during the blocking sleep (" .. ticks .. " ticks)")
end)

test("client:wait_message returns the next message on a filter, or nil, \"timeout\"", function(t)
	local c = T.connected(t, "task-wm")
	local seen = T.collector(c)
	T.subscribed(t, c, "wm/#", 1)
	mqtt.after(0.1, function() c:publish("wm/other", "no", 1); c:publish("wm/answer/1", "42", 1) end)
	local msg = c:wait_message("wm/answer/+", 5)
	t:ok(msg, "a message came")
	t:eq({ msg.topic, msg.payload }, { "wm/answer/1", "42" }, "the first one on the filter, not the one before it")
	t:ok(T.wait_until(function() return #seen == 2 end), "on_message still got both")
	local none, why = c:wait_message("wm/never", 0.2)
	t:eq({ none, why }, { nil, "timeout" }, "nothing within the timeout")
	t:raises(function() c:wait_message("wm/#/x") end, "bad argument #1 to 'wait_message' %(invalid topic filter")
	c:disconnect()
end)

test("a handler can ask and wait for the answer (request/response)", function(t)
	local responder = T.connected(t, "task-resp")
	responder:message_callback_add("svc/request", function(client, _, msg)
		client:publish("svc/response", "re:" .. msg.payload, 1)
	end)
	T.subscribed(t, responder, "svc/request", 1)
	local asker = T.connected(t, "task-ask")
	T.subscribed(t, asker, "svc/response", 1)
	local answers = {}
	asker:message_callback_add("ask/#", function(client, _, msg)
		client:publish("svc/request", msg.payload, 1)
		local reply = client:wait_message("svc/response", 5)
		answers[#answers + 1] = reply and reply.payload or "none"
	end)
	T.subscribed(t, asker, "ask/#", 1)
	asker:publish("ask/1", "ping", 1)
	t:ok(T.wait_until(function() return #answers == 1 end), "the handler got its answer")
	t:eq(answers, { "re:ping" }, "the response")
	asker:disconnect()
	responder:disconnect()
end)

test("wait_message outside a task (a coroutine the script made) blocks until the message", function(t)
	local c = T.connected(t, "task-wm-block")
	T.subscribed(t, c, "wmb/#", 0)
	mqtt.after(0.1, function() c:publish("wmb/x", "late", 0) end)
	local co = coroutine.create(function() return c:wait_message("wmb/#", 5) end)
	local ok, msg = coroutine.resume(co)
	t:ok(ok and msg, "the coroutine got the message without yielding")
	t:eq(msg and msg.payload, "late", "payload")
	c:disconnect()
end)
