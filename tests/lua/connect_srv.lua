-- connect_srv.lua - client:connect_srv(domain, ...) against a real DNS server
-- (dnsmasq on a free loopback port, holding the SRV records) and real
-- brokers: priority order, falling back to the next target, NXDOMAIN and
-- "no SRV hosts responded" errors, weighted order within a priority, the
-- _secure-mqtt record after tls_set, and $MQLUA_DNS_SERVER.
local mqtt = require "mqlua"
local test = T.test

local certs = T.certs()

local tls_port = mqtt.broker.free_port()
local a = T.broker()
local b = T.broker{ config = "" }
local tls = T.broker{ config = table.concat({
	string.format("listener %d 127.0.0.1", tls_port),
	"cafile " .. certs .. "/ca.crt",
	"certfile " .. certs .. "/server.crt",
	"keyfile " .. certs .. "/server.key" }, "\n") }
local closed1, closed2 = mqtt.broker.free_port(), mqtt.broker.free_port()   -- nobody listens there

-- The DNS server: dnsmasq answers for *.test from these records only.
local dns_port = mqtt.broker.free_port()
local dns = "127.0.0.1:" .. dns_port
local function srv(name, port, prio, weight, target)
	return string.format("--srv-host=%s,%s,%d,%d,%d", name, target or "127.0.0.1", port, prio, weight)
end
local records = {
	srv("_mqtt._tcp.prio.test", a.port, 20, 0), srv("_mqtt._tcp.prio.test", b.port, 10, 0),
	srv("_mqtt._tcp.fallback.test", closed1, 1, 0), srv("_mqtt._tcp.fallback.test", a.port, 2, 0),
	srv("_mqtt._tcp.down.test", closed1, 1, 0), srv("_mqtt._tcp.down.test", closed2, 2, 0),
	srv("_mqtt._tcp.even.test", closed1, 1, 10), srv("_mqtt._tcp.even.test", closed2, 1, 10),
	srv("_mqtt._tcp.heavy.test", closed1, 1, 0), srv("_mqtt._tcp.heavy.test", closed2, 1, 65535),
	srv("_mqtt._tcp.sec.test", closed1, 1, 0), srv("_secure-mqtt._tcp.sec.test", tls_port, 1, 0, "localhost"),
	"--srv-host=_mqtt._tcp.off.test",     -- target ".": no service here
}
local out = T.sh("timeout 300 dnsmasq -k -C /dev/null --port=" .. dns_port ..
	" --listen-address=127.0.0.1 --bind-interfaces --no-resolv --no-hosts --pid-file= --user=root" ..
	" --local=/test/ " .. table.concat(records, " ") .. " >/dev/null 2>&1 & echo $!")
local dns_pid = assert(out:match("^(%d+)"), "dnsmasq did not start")

-- A fresh client; connect_srv through dnsmasq, returning true, rc or false, error.
local seq = 0
local function new_client()
	seq = seq + 1
	return mqtt.Client("srv-test-" .. seq)
end
local function srv_connect(c, domain)
	return pcall(c.connect_srv, c, { domain = domain, keepalive = 30, dns_server = dns })
end

-- dnsmasq needs a moment before it answers
T.wait_until(function()
	local ok, err = srv_connect(new_client(), "nope.test")
	return not ok and err:find("NXDOMAIN:", 1, true)
end, 5)

-- Subscribes on broker br and returns the list of payloads that arrive there.
local function listen(t, br, topic)
	local l = T.connected(t, "srv-listen-" .. br.port, true, br)
	local got = T.collector(l)
	T.subscribed(t, l, topic, 1)
	return got, l
end

test("the target with the lowest priority value is used: messages reach that broker", function(t)
	local got_b = listen(t, b, "srv/prio")
	local got_a = listen(t, a, "srv/prio")
	local c = new_client()
	local ok, rc = srv_connect(c, "prio.test")
	t:ok(ok, "connect_srv raised: " .. tostring(rc))
	t:eq(rc, mqtt.MQTT_ERR_SUCCESS, "connect_srv rc")
	t:eq({ c.host, c.port, c.keepalive }, { "127.0.0.1", b.port, 30 }, "host, port, keepalive")
	t:ok(T.wait_until(function() return c:is_connected() end), "connected")
	c:publish("srv/prio", "via SRV", 1)
	t:ok(T.wait_until(function() return #got_b == 1 end), "the message reached broker b (priority 10)")
	t:eq(T.payloads(got_b), { "via SRV" }, "broker b got")
	t:eq(#got_a, 0, "broker a (priority 20) got nothing")
	c:disconnect()
end)

test("the first target is down: the next one is tried", function(t)
	local c = new_client()
	local ok, rc = srv_connect(c, "fallback.test")
	t:ok(ok, "connect_srv raised: " .. tostring(rc))
	t:eq(rc, mqtt.MQTT_ERR_SUCCESS, "connect_srv rc")
	t:eq(c.port, a.port, "port of the second target")
	t:ok(T.wait_until(function() return c:is_connected() end), "connected to the second target")
	c:disconnect()
end)

test("every target is down: 'No SRV hosts responded' naming each attempt", function(t)
	local ok, err = srv_connect(new_client(), "down.test")
	t:ok(not ok, "connect_srv raised")
	t:eq(err, string.format("No SRV hosts responded (127.0.0.1:%d: Connection refused; " ..
		"127.0.0.1:%d: Connection refused)", closed1, closed2), "error")
end)

test("NXDOMAIN, a record without a target: paho's 'No answer/NXDOMAIN' error", function(t)
	local ok, err = srv_connect(new_client(), "nope.test")
	t:ok(not ok, "raised")
	t:eq(err, "No answer/NXDOMAIN for SRV in nope.test (NXDOMAIN: _mqtt._tcp.nope.test does not exist)", "error")
	ok, err = srv_connect(new_client(), "off.test")
	t:eq(err, "No answer/NXDOMAIN for SRV in off.test (_mqtt._tcp.off.test has no usable SRV record)", "target '.'")
end)

test("a silent name server: the error says so after a bounded wait", function(t)
	local c = new_client()
	local start = mqtt.time()
	local ok, err = pcall(c.connect_srv, c, { domain = "prio.test", dns_server = "127.0.0.1:" .. closed1 })
	t:ok(not ok, "raised")
	t:match(err, "^No answer/NXDOMAIN for SRV in prio%.test %(no answer from the name server 127%.0%.0%.1:" ..
		closed1 .. " %(waited at most 3 s%)%)$", "error")
	t:ok(mqtt.time() - start < 4, "returned within 4 s")
end)

-- The order connect_srv tried two dead targets of one priority, as "p1,p2".
local function order(domain)
	local _, err = srv_connect(new_client(), domain)
	local p1, p2 = err:match(":(%d+): Connection refused; 127%.0%.0%.1:(%d+):")
	return p1 .. "," .. p2
end

test("within a priority the order is weighted random (RFC 2782)", function(t)
	local seen = {}
	for _ = 1, 40 do seen[order("even.test")] = true end
	t:ok(seen[closed1 .. "," .. closed2] and seen[closed2 .. "," .. closed1],
		"equal weights: both orders seen in 40 lookups (" .. T.show(seen) .. ")")
	local heavy_first = 0
	for _ = 1, 20 do
		if order("heavy.test") == closed2 .. "," .. closed1 then heavy_first = heavy_first + 1 end
	end
	t:eq(heavy_first, 20, "weight 65535 before weight 0, of 20 lookups")
end)

test("after tls_set the _secure-mqtt record is used, and the TLS broker accepts", function(t)
	local c = new_client()
	c:tls_set(certs .. "/ca.crt")
	local rcs = {}
	c.on_connect = function(_, _, _, rc) rcs[#rcs + 1] = rc end
	local ok, rc = srv_connect(c, "sec.test")
	t:ok(ok, "connect_srv raised: " .. tostring(rc))
	t:eq({ rc, c.host, c.port }, { 0, "localhost", tls_port }, "rc, host, port")
	t:ok(T.wait_until(function() return #rcs > 0 end), "CONNACK over TLS (last error: " .. tostring(c:last_error()) .. ")")
	t:eq(rcs, { 0 }, "on_connect rc")
	c:disconnect()
	-- without TLS the same domain gives the _mqtt record, whose target is down
	local ok2, err = srv_connect(new_client(), "sec.test")
	t:eq({ ok2, err }, { false, "No SRV hosts responded (127.0.0.1:" .. closed1 .. ": Connection refused)" }, "plain")
end)

test("$MQLUA_DNS_SERVER chooses the name server; a bad dns_server names the argument", function(t)
	local script = string.format([[
local m = require "mqlua"
local c = m.Client()
print(c:connect_srv("fallback.test"), c.port)
c:disconnect()]])
	local got = T.sh("MQLUA_DNS_SERVER=" .. dns .. " " .. T.mqlua() .. " -q -e '" .. script .. "' 2>&1")
	t:eq(got, "0\t" .. a.port .. "\n", "output")
	local c = new_client()
	t:raises(function() c:connect_srv{ domain = "prio.test", dns_server = "dns.example" } end,
		"dns_server must be \"ipv4%[:port%]\", got 'dns%.example'")
	got = T.sh("MQLUA_DNS_SERVER=nonsense " .. T.mqlua() ..
		" -q -e 'local m = require \"mqlua\"; print(pcall(m.Client().connect_srv, m.Client(), \"x.test\"))' 2>&1")
	t:match(got, "dns_server must be \"ipv4%[:port%]\", got 'nonsense' %(from %$MQLUA_DNS_SERVER%)", "env error")
	t:raises(function() c:connect_srv{ domain = "" } end, "domain must not be empty")
end)

T.sh("kill " .. dns_pid)
