/*
 * interpose.c - read(), write(), close() and socketpair() for the whole mqlua
 * executable, so that libmosquitto's socket calls go through runtime/netbuf.c.
 *
 * A shared library's call to read() binds to the executable's definition
 * before the C library's. Everything netbuf.c does not take passes straight
 * through to the C library's function (found with dlsym(RTLD_NEXT), which
 * under the sanitizers is their checked wrapper). Only the executable links
 * this file: in mqlua.so it would not take precedence over the host's C
 * library anyway.
 */
#include "netbuf.h"

#include <dlfcn.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static ssize_t (*libc_read)(int, void *, size_t);
static ssize_t (*libc_write)(int, const void *, size_t);
static int (*libc_close)(int);
static int (*libc_socketpair)(int, int, int, int[2]);

static ssize_t sys_read(int fd, void *buf, size_t n)
{
	return syscall(SYS_read, fd, buf, n);
}

static ssize_t sys_write(int fd, const void *buf, size_t n)
{
	return syscall(SYS_write, fd, buf, n);
}

static int sys_close(int fd)
{
	return (int)syscall(SYS_close, fd);
}

static int sys_socketpair(int domain, int type, int protocol, int sv[2])
{
	return (int)syscall(SYS_socketpair, domain, type, protocol, sv);
}

static void resolve(void)
{
	libc_read = (ssize_t (*)(int, void *, size_t))dlsym(RTLD_NEXT, "read");
	libc_write = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
	libc_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
	libc_socketpair = (int (*)(int, int, int, int[2]))dlsym(RTLD_NEXT, "socketpair");
	if (!libc_read)
		libc_read = sys_read;
	if (!libc_write)
		libc_write = sys_write;
	if (!libc_close)
		libc_close = sys_close;
	if (!libc_socketpair)
		libc_socketpair = sys_socketpair;
}

ssize_t read(int fd, void *buf, size_t n)
{
	if (!libc_read)
		resolve();
	return netbuf_read(fd, buf, n, libc_read);
}

ssize_t write(int fd, const void *buf, size_t n)
{
	if (!libc_write)
		resolve();
	return netbuf_write(fd, buf, n, libc_write);
}

int close(int fd)
{
	if (!libc_close)
		resolve();
	netbuf_close(fd);
	return libc_close(fd);
}

/* True when the code at addr belongs to libmosquitto. */
static int in_libmosquitto(const void *addr)
{
	Dl_info info;
	return dladdr(addr, &info) && info.dli_fname && strstr(info.dli_fname, "libmosquitto");
}

int socketpair(int domain, int type, int protocol, int sv[2])
{
	if (!libc_socketpair)
		resolve();
	int rc = libc_socketpair(domain, type, protocol, sv);
	/* libmosquitto's wake-up pair: its first descriptor is read by
	 * mosquitto_loop(), which mqlua never calls; the second is written */
	if (rc == 0 && in_libmosquitto(__builtin_return_address(0)))
		netbuf_mark_wakeup(sv[1]);
	return rc;
}
