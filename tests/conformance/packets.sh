# packets.sh - runs the packet-level conformance scenarios (packets.py, with
# the fake broker in fakebroker.py) against $MQLUA, with Debian's python3.
. tests/lib/sh.sh

py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)
if [ -z "$py" ]; then
	not_ok "python3 is installed" "install Debian's python3 package"
	finish
fi
export MQLUA
PYTHONDONTWRITEBYTECODE=1 "$py" tests/conformance/packets.py
