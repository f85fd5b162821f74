#!/usr/bin/env bash
# bad_broker.sh - runs bad_broker.py (a silent broker, a garbage-sending
# broker, 1,000 reconnects with memory measured) against $MQLUA, with
# Debian's python3.
. tests/lib/sh.sh

py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)
if [ -z "$py" ]; then
	not_ok "python3 is installed" "install Debian's python3 package"
	finish
fi
export MQLUA MQLUA_BUILD
PYTHONDONTWRITEBYTECODE=1 "$py" tests/faults/bad_broker.py
