# repl_live.sh - the loop runs while the prompt waits: a message published
# from outside appears above the prompt and the half-typed line survives;
# Tab completes methods; Ctrl-C stops a runaway statement or clears the line.
. tests/lib/sh.sh
. tests/lib/repl.sh

if ! start_broker; then
	not_ok "a broker for the REPL" "start_broker failed"
	finish
fi
if ! repl_start --broker "mqtt://127.0.0.1:$BROKER_PORT"; then
	not_ok "the prompt opens" "$(repl_show)"
	finish
fi

repl_type 'client = connect()'
repl_wait_last '>' 10
repl_type 'client:is_connected()'
repl_wait_for_line 'true' 10 && ok "connect() returns a connected client on --broker" ||
	not_ok "connect() returns a connected client on --broker" "$(repl_show)"

repl_type 'sub("live/#", 1)'
repl_wait_last '>'
sleep 0.3
repl_keys -l 'answer = 40 +'
wait_for 5 repl_last_is '> answer = 40 +'
mosquitto_pub -p "$BROKER_PORT" -t live/a -q 1 -m 'hello from outside'
printf 'bin\001\377x' | mosquitto_pub -p "$BROKER_PORT" -t live/b -s
if repl_wait_for_line 'live/a 1 hello from outside' && repl_wait_for_line 'live/b 0 bin\x01\xFFx'; then
	ok "messages published from outside appear while the prompt is idle, binary escaped"
else
	not_ok "messages published from outside appear while the prompt is idle, binary escaped" "$(repl_show)"
fi
repl_wait_last '> answer = 40 +' 2 && ok "the half-typed line is redrawn intact below them" ||
	not_ok "the half-typed line is redrawn intact below them" "$(repl_show)"
repl_type ' 2'
repl_wait_last '>'
repl_type 'answer'
repl_wait_for_line '42' && ok "the half-typed line is still the one that runs" ||
	not_ok "the half-typed line is still the one that runs" "$(repl_show)"

repl_type 'sub("fail/#"); client:message_callback_add("fail/#", function() error("handler failed") end)'
repl_wait_last '>'
repl_keys -l 'still = "typing"'
wait_for 5 repl_last_is '> still = "typing"'
mosquitto_pub -p "$BROKER_PORT" -t fail/x -m boom
if repl_wait_for_re '.*ERROR +\[main\] error in message callback .fail/#.: .*handler failed' && repl_wait_last '> still = "typing"' 2; then
	ok "an error logged by a handler appears above the prompt, the line intact"
else
	not_ok "an error logged by a handler appears above the prompt, the line intact" "$(repl_show)"
fi
repl_keys C-u

repl_keys -l 'client:pu'
repl_keys Tab
repl_wait_last '> client:publish' && ok "client:pu<Tab> completes to client:publish" ||
	not_ok "client:pu<Tab> completes to client:publish" "$(repl_show)"
repl_keys C-u
repl_keys -l 'string.fo'
repl_keys Tab
repl_wait_last '> string.format' && ok "string.fo<Tab> completes to string.format" ||
	not_ok "string.fo<Tab> completes to string.format" "$(repl_show)"
repl_keys C-u
repl_keys -l 'client.on_mes'
repl_keys Tab
repl_wait_last '> client.on_message' && ok "client.on_mes<Tab> completes to client.on_message" ||
	not_ok "client.on_mes<Tab> completes to client.on_message" "$(repl_show)"
repl_keys C-u
repl_type 'client:message_callback_add("keep/#", function(_, _, m) kept = m end); sub("keep/#")'
repl_wait_last '>'
mosquitto_pub -p "$BROKER_PORT" -t keep/1 -m kept
repl_type 'kept ~= nil'
repl_wait_for_line 'true'
repl_keys -l 'kept.pay'
repl_keys Tab
repl_wait_last '> kept.payload' && ok "a message's fields complete (kept.pay<Tab> -> kept.payload)" ||
	not_ok "a message's fields complete (kept.pay<Tab> -> kept.payload)" "$(repl_show)"
repl_keys C-u
repl_type 'strict = setmetatable({}, {__index = function() error("no such field") end})'
repl_wait_last '>'
repl_keys -l 'strict.a.b'
repl_keys Tab
sleep 0.3
repl_keys C-u
repl_type '"survived"'
repl_wait_for_line 'survived' && ok "completing through a raising __index does not crash the prompt" ||
	not_ok "completing through a raising __index does not crash the prompt" "$(repl_show)"

repl_type 'while true do end'
sleep 0.5
repl_keys C-c
repl_wait_for_re '(\^C)?interrupted' && repl_wait_last '>' &&
	ok "Ctrl-C stops while true do end and the prompt returns" ||
	not_ok "Ctrl-C stops while true do end and the prompt returns" "$(repl_show)"
repl_type '6*7 .. "!"'
repl_wait_for_line '42!' && ok "the prompt works after the interruption" ||
	not_ok "the prompt works after the interruption" "$(repl_show)"
mosquitto_pub -p "$BROKER_PORT" -t live/c -m 'still here'
repl_wait_for_line 'live/c 0 still here' && ok "the subscription survives the interruption" ||
	not_ok "the subscription survives the interruption" "$(repl_show)"

repl_type 'c2 = connect("mqtt://127.0.0.1:'"$BROKER_PORT"'")'
repl_wait_last '>' 10
repl_type 'clients()'
repl_wait_for_re 'mqlua-repl-[0-9-]+ +127\.0\.0\.1:'"$BROKER_PORT"' +connected' &&
	repl_wait_for_re 'mqlua-repl-[0-9-]+ +default broker +connected +\(default\)' &&
	ok "connect(url) connects to that URL; clients() lists both with their state" ||
	not_ok "connect(url) connects to that URL; clients() lists both with their state" "$(repl_show)"
repl_type 'unsub("live/#"); sub("other/#")'
repl_wait_last '>'
repl_type 'pub("live/d", "gone"); pub("other/x", "here", 1)'
if repl_wait_for_line 'other/x 0 here' && ! repl_has_line 'live/d 0 gone'; then
	ok "unsub stops the printing; pub publishes"
else
	not_ok "unsub stops the printing; pub publishes" "$(repl_show)"
fi

repl_keys -l 'forgotten = 1'
wait_for 5 repl_last_is '> forgotten = 1'
repl_keys C-c
repl_wait_last '>' && ok "Ctrl-C at the prompt clears the line" ||
	not_ok "Ctrl-C at the prompt clears the line" "$(repl_show)"
repl_type 'forgotten'
repl_wait_for_line 'nil' && ok "the cleared line did not run" || not_ok "the cleared line did not run" "$(repl_show)"
repl_stop
finish
