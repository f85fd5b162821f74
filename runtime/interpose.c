/*
 * interpose.c - read() and close() for the whole mqlua executable, so that
 * libmosquitto's reads of a client socket go through runtime/netbuf.c.
 *
 * A shared library's call to read() binds to the executable's definition
 * before the C library's; every other descriptor passes straight through to
 * the C library's read (found with dlsym(RTLD_NEXT), which under the
 * sanitizers is their checked wrapper). Only the executable links this file:
 * in mqlua.so it would not take precedence over the host's C library anyway.
 */
#include "netbuf.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static ssize_t (*libc_read)(int, void *, size_t);
static int (*libc_close)(int);

static ssize_t sys_read(int fd, void *buf, size_t n)
{
	return syscall(SYS_read, fd, buf, n);
}

static int sys_close(int fd)
{
	return (int)syscall(SYS_close, fd);
}

static void resolve(void)
{
	libc_read = (ssize_t (*)(int, void *, size_t))dlsym(RTLD_NEXT, "read");
	libc_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
	if (!libc_read)
		libc_read = sys_read;
	if (!libc_close)
		libc_close = sys_close;
}

ssize_t read(int fd, void *buf, size_t n)
{
	if (!libc_read)
		resolve();
	return netbuf_read(fd, buf, n, libc_read);
}

int close(int fd)
{
	if (!libc_close)
		resolve();
	netbuf_close(fd);
	return libc_close(fd);
}
