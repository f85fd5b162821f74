/*
 * client_srv.c - client:connect_srv(): finds the broker of a DNS domain
 * through its SRV records (_mqtt._tcp.DOMAIN, or _secure-mqtt._tcp.DOMAIN
 * once tls_set was called, as paho does), orders the targets as RFC 2782
 * says (lowest priority first, weighted random order within a priority) and
 * calls client:connect() on each until one succeeds.
 *
 * libmosquitto's own mosquitto_connect_srv needs c-ares and Debian builds it
 * without (it returns MOSQ_ERR_NOT_SUPPORTED), so the lookup uses glibc's
 * libresolv. The query blocks the loop for at most 3 s per name server
 * (SRV_TIMEOUT_S, doubled on each of SRV_TRIES tries). The name server is resolv.conf's, or the one in
 * connect_srv's dns_server argument or $MQLUA_DNS_SERVER ("ipv4[:port]").
 */
#include "bindings/client.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SRV_TIMEOUT_S 1   /* first wait for an answer; libresolv doubles it per try */
#define SRV_TRIES 2
#define SRV_MAX 32

struct srv_target {
	int priority, weight, port;
	char host[NS_MAXDNAME];
};

/* Reads "ipv4[:port]" (port 53 by default) into sa. Returns false when spec
 * is not of that form. */
static bool parse_dns_server(const char *spec, struct sockaddr_in *sa)
{
	char ip[INET_ADDRSTRLEN];
	long port = 53;
	const char *colon = strchr(spec, ':');
	size_t iplen = colon ? (size_t)(colon - spec) : strlen(spec);
	if (iplen == 0 || iplen >= sizeof ip)
		return false;
	memcpy(ip, spec, iplen);
	ip[iplen] = 0;
	if (colon) {
		char *end;
		port = strtol(colon + 1, &end, 10);
		if (end == colon + 1 || *end || port < 1 || port > 65535)
			return false;
	}
	*sa = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	return inet_pton(AF_INET, ip, &sa->sin_addr) == 1;
}

/* Sorts targets by priority; within a priority, orders them by RFC 2782's
 * weighted random selection. */
static void srv_order(struct srv_target *t, int n)
{
	for (int i = 1; i < n; i++)            /* insertion sort by priority, stable */
		for (int j = i; j > 0 && t[j - 1].priority > t[j].priority; j--) {
			struct srv_target tmp = t[j];
			t[j] = t[j - 1];
			t[j - 1] = tmp;
		}
	for (int start = 0; start < n;) {
		int end = start;
		while (end < n && t[end].priority == t[start].priority)
			end++;
		for (int pos = start; pos < end - 1; pos++) {
			long sum = 0;
			for (int k = pos; k < end; k++)
				sum += t[k].weight;
			long pick = sum > 0 ? lrand48() % (sum + 1) : 0, run = 0;
			int chosen = pos;
			/* zero-weight records come first in the running sum, so they are
			 * picked only when the random number is 0 */
			for (int pass = 0; pass < 2; pass++)
				for (int k = pos; k < end; k++) {
					if ((pass == 0) != (t[k].weight == 0))
						continue;
					run += t[k].weight;
					if (run >= pick) {
						chosen = k;
						goto found;
					}
				}
found:;
			struct srv_target tmp = t[pos];
			t[pos] = t[chosen];
			t[chosen] = tmp;
		}
		start = end;
	}
}

/* Looks up the SRV records of name, asking server (NULL: resolv.conf's) if
 * given. Returns their number (0 or more), or -1 with words for the failure
 * in why. */
static int srv_lookup(const char *name, const struct sockaddr_in *server, const char *server_name,
                      struct srv_target *out, int max, char *why, size_t whylen)
{
	struct __res_state st;
	memset(&st, 0, sizeof st);
	if (res_ninit(&st) != 0) {
		snprintf(why, whylen, "cannot read the resolver configuration");
		return -1;
	}
	st.retrans = SRV_TIMEOUT_S;
	st.retry = SRV_TRIES;
	if (server) {
		st.nsaddr_list[0] = *server;
		st.nscount = 1;
	}
	unsigned char answer[NS_MAXMSG];
	int len = res_nquery(&st, name, ns_c_in, ns_t_srv, answer, sizeof answer);
	int herr = st.res_h_errno;
	res_nclose(&st);
	if (len < 0) {
		if (herr == HOST_NOT_FOUND)
			snprintf(why, whylen, "NXDOMAIN: %s does not exist", name);
		else if (herr == NO_DATA)
			snprintf(why, whylen, "%s has no SRV record", name);
		else if (herr == TRY_AGAIN)
			snprintf(why, whylen, "no answer from the name server%s%s (waited at most %d s)",
			         server ? " " : "", server ? server_name : "", SRV_TIMEOUT_S * ((1 << SRV_TRIES) - 1));
		else
			snprintf(why, whylen, "the name server refused the query for %s", name);
		return -1;
	}
	ns_msg msg;
	if (ns_initparse(answer, len, &msg) != 0) {
		snprintf(why, whylen, "malformed DNS answer for %s", name);
		return -1;
	}
	int n = 0, count = ns_msg_count(msg, ns_s_an);
	for (int i = 0; i < count && n < max; i++) {
		ns_rr rr;
		if (ns_parserr(&msg, ns_s_an, i, &rr) != 0 || ns_rr_type(rr) != ns_t_srv || ns_rr_rdlen(rr) < 7)
			continue;
		const unsigned char *rd = ns_rr_rdata(rr);
		struct srv_target *t = &out[n];
		t->priority = ns_get16(rd);
		t->weight = ns_get16(rd + 2);
		t->port = ns_get16(rd + 4);
		if (dn_expand(ns_msg_base(msg), ns_msg_end(msg), rd + 6, t->host, sizeof t->host) < 0)
			continue;
		if (t->host[0] == 0 || strcmp(t->host, ".") == 0)
			continue;   /* "." says the service is not offered here */
		n++;
	}
	if (n == 0)
		snprintf(why, whylen, "%s has no usable SRV record", name);
	return n;
}

/* The part of this host's fully qualified name after its first dot (paho
 * takes it from socket.getfqdn()); NULL if it has none. */
static const char *local_domain(char *buf, size_t len)
{
	char host[256];
	if (gethostname(host, sizeof host) != 0)
		return NULL;
	host[sizeof host - 1] = 0;
	struct addrinfo hints = { .ai_flags = AI_CANONNAME }, *ai = NULL;
	const char *fqdn = host;
	if (getaddrinfo(host, NULL, &hints, &ai) == 0 && ai && ai->ai_canonname)
		fqdn = ai->ai_canonname;
	const char *dot = strchr(fqdn, '.');
	if (dot && dot[1])
		snprintf(buf, len, "%s", dot + 1);
	if (ai)
		freeaddrinfo(ai);
	return dot && dot[1] ? buf : NULL;
}

/* client:connect_srv(domain=nil, keepalive=60, bind_address="", bind_port=0,
 * clean_start, properties, dns_server=nil) -> rc. Raises "No answer/NXDOMAIN
 * for SRV in DOMAIN (...)" when the lookup gives no target, and "No SRV hosts
 * responded (...)" when connect() failed for every target, as paho raises
 * ValueError. */
static int l_connect_srv(lua_State *L)
{
	static const char *const names[] = { "domain", "keepalive", "bind_address", "bind_port",
		"clean_start", "properties", "dns_server", NULL };
	struct client *c = client_check(L, 1);
	mqlua_named_args(L, 2, names);
	lua_settop(L, 8);
	char dombuf[256];
	const char *domain = luaL_optstring(L, 2, NULL);
	if (!domain && !(domain = local_domain(dombuf, sizeof dombuf)))
		luaL_argerror(L, 2, "domain is required: this host's name has no domain part");
	luaL_argcheck(L, *domain, 2, "domain must not be empty");
	const char *dns_server = luaL_optstring(L, 8, getenv("MQLUA_DNS_SERVER"));
	struct sockaddr_in server;
	if (dns_server && !*dns_server)
		dns_server = NULL;
	if (dns_server && !parse_dns_server(dns_server, &server))
		luaL_argerror(L, 8, lua_pushfstring(L, "dns_server must be \"ipv4[:port]\", got '%s'%s", dns_server,
		              lua_isnoneornil(L, 8) ? " (from $MQLUA_DNS_SERVER)" : ""));

	char name[NS_MAXDNAME], why[300];
	snprintf(name, sizeof name, "%s._tcp.%s", c->tls ? "_secure-mqtt" : "_mqtt", domain);
	struct srv_target *targets = lua_newuserdatauv(L, SRV_MAX * sizeof *targets, 0);
	int n = srv_lookup(name, dns_server ? &server : NULL, dns_server, targets, SRV_MAX, why, sizeof why);
	if (n <= 0)
		return luaL_error(L, "No answer/NXDOMAIN for SRV in %s (%s)", domain, why);
	srv_order(targets, n);

	luaL_Buffer tried;
	luaL_buffinit(L, &tried);
	for (int i = 0; i < n; i++) {
		lua_getfield(L, 1, "connect");
		lua_pushvalue(L, 1);
		lua_pushstring(L, targets[i].host);
		lua_pushinteger(L, targets[i].port);
		for (int a = 3; a <= 7; a++)      /* keepalive .. properties */
			lua_pushvalue(L, a);
		lua_call(L, 8, 2);
		if (lua_tointeger(L, -2) == 0) {
			lua_pop(L, 1);
			return 1;
		}
		const char *err = lua_tostring(L, -1);
		lua_pushfstring(L, "%s%s:%d: %s", i ? "; " : "", targets[i].host, targets[i].port,
		                err ? err : "connect failed");
		lua_replace(L, -3);
		lua_pop(L, 1);
		luaL_addvalue(&tried);
	}
	luaL_pushresult(&tried);
	return luaL_error(L, "No SRV hosts responded (%s)", lua_tostring(L, -1));
}

const luaL_Reg client_srv_methods[] = {
	{ "connect_srv", l_connect_srv },
	{ NULL, NULL }
};
