/*
 * broker.c - the embedded broker launcher (see broker.h).
 */

#include "broker.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct broker *running;
static bool atexit_installed;

int broker_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sa;
	int port = -1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static void stop_all(void)
{
	while (running)
		broker_stop(running);
}

/* Finds `mosquitto` in PATH, then in the sbin directories Debian uses. */
static bool find_mosquitto(char *out, size_t outlen)
{
	const char *path = getenv("PATH");
	char buf[4096];
	snprintf(buf, sizeof buf, "%s:/usr/sbin:/usr/local/sbin:/sbin", path ? path : "/usr/bin:/bin");
	for (char *save = NULL, *dir = strtok_r(buf, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		snprintf(out, outlen, "%s/mosquitto", *dir ? dir : ".");
		if (access(out, X_OK) == 0)
			return true;
	}
	return false;
}

static bool port_accepts(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
	                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	bool ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
	close(fd);
	return ok;
}

static void remove_tree(const char *dir, const char *conf, const char *logpath)
{
	unlink(conf);
	unlink(logpath);
	rmdir(dir);
}

/* Copies the last lines of the broker's log into err, for a failed start. */
static void log_tail(const char *logpath, char *err, size_t errlen)
{
	FILE *f = fopen(logpath, "r");
	if (!f)
		return;
	char line[512], last[1024] = "";
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		if (*line)
			snprintf(last, sizeof last, "%s", line);
	}
	fclose(f);
	if (*last) {
		size_t n = strlen(err);
		snprintf(err + n, errlen - n, ": %s", last);
	}
}

static int try_start(struct broker *b, const struct broker_opts *o, const char *exe, int port,
                     char *err, size_t errlen)
{
	char dir[] = "/tmp/mqlua-broker-XXXXXX";
	if (!mkdtemp(dir)) {
		snprintf(err, errlen, "cannot create a directory for the broker: %s", strerror(errno));
		return -1;
	}
	char conf[PATH_MAX], logpath[PATH_MAX];
	snprintf(conf, sizeof conf, "%s/mosquitto.conf", dir);
	snprintf(logpath, sizeof logpath, "%s/mosquitto.log", dir);
	FILE *f = fopen(conf, "w");
	if (!f) {
		snprintf(err, errlen, "cannot write %s: %s", conf, strerror(errno));
		rmdir(dir);
		return -1;
	}
	struct passwd *pw = getpwuid(getuid());
	fprintf(f, "# written by mqlua for an embedded broker\n");
	if (pw && getuid() == 0)
		fprintf(f, "user %s\n", pw->pw_name);
	fprintf(f, "persistence false\nlog_dest stderr\nlog_type error\nlog_type warning\n");
	fprintf(f, "log_timestamp false\n");
	fprintf(f, "listener %d 127.0.0.1\n", port);
	fprintf(f, "allow_anonymous %s\n", o->allow_anonymous ? "true" : "false");
	if (o->config)
		fprintf(f, "%s\n", o->config);
	fclose(f);

	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		remove_tree(dir, conf, logpath);
		return -1;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(1);
		setpgid(0, 0);   /* a Ctrl-C on the terminal is mqlua's to handle */
		int null = open("/dev/null", O_RDWR);
		int logfd = o->show_log ? STDERR_FILENO : open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
		}
		if (logfd >= 0 && logfd != STDERR_FILENO)
			dup2(logfd, STDERR_FILENO);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execl(exe, "mosquitto", "-c", conf, (char *)NULL);
		_exit(127);
	}

	b->pid = pid;
	b->port = port;
	snprintf(b->host, sizeof b->host, "127.0.0.1");
	double timeout = o->timeout > 0 ? o->timeout : 10;
	struct timespec start, now, nap = { 0, 5 * 1000000 };
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			b->pid = 0;
			snprintf(err, errlen, "mosquitto exited at startup (%s %d)",
			         WIFEXITED(status) ? "status" : "signal",
			         WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
			log_tail(logpath, err, errlen);
			remove_tree(dir, conf, logpath);
			return 1;  /* perhaps the port was taken meanwhile: retry */
		}
		if (port_accepts(port))
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9 > timeout) {
			snprintf(err, errlen, "mosquitto did not listen on 127.0.0.1:%d within %.0f s", port, timeout);
			log_tail(logpath, err, errlen);
			broker_stop(b);
			remove_tree(dir, conf, logpath);
			return -1;
		}
		nanosleep(&nap, NULL);
	}
	/* It has read its configuration and opened its log: nothing on disk is needed any more. */
	remove_tree(dir, conf, logpath);
	return 0;
}

int broker_start(struct broker *b, const struct broker_opts *opts, char *err, size_t errlen)
{
	struct broker_opts o = *opts;
	char exe[PATH_MAX];
	memset(b, 0, sizeof *b);
	if (!find_mosquitto(exe, sizeof exe)) {
		snprintf(err, errlen, "cannot start an embedded broker: `mosquitto` is not installed "
		         "(not found in PATH; on Debian: apt-get install mosquitto)");
		return -1;
	}
	if (!atexit_installed) {
		atexit(stop_all);
		atexit_installed = true;
	}
	for (int attempt = 0; attempt < 3; attempt++) {
		int port = o.port > 0 ? o.port : broker_free_port();
		if (port < 0) {
			snprintf(err, errlen, "no free port on 127.0.0.1: %s", strerror(errno));
			return -1;
		}
		int rc = try_start(b, &o, exe, port, err, errlen);
		if (rc == 0) {
			b->next = running;
			running = b;
			log_debug("embedded broker (pid %d) listening on 127.0.0.1:%d", (int)b->pid, port);
			return 0;
		}
		if (rc < 0 || o.port > 0)
			return -1;
	}
	return -1;
}

void broker_stop(struct broker *b)
{
	for (struct broker **p = &running; *p; p = &(*p)->next) {
		if (*p == b) {
			*p = b->next;
			break;
		}
	}
	b->next = NULL;
	if (b->pid <= 0)
		return;
	kill(b->pid, SIGTERM);
	struct timespec nap = { 0, 10 * 1000000 };
	for (int i = 0; i < 300; i++) {
		if (waitpid(b->pid, NULL, WNOHANG) == b->pid) {
			b->pid = 0;
			return;
		}
		nanosleep(&nap, NULL);
	}
	kill(b->pid, SIGKILL);
	waitpid(b->pid, NULL, 0);
	b->pid = 0;
}
