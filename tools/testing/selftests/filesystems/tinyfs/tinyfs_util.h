/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the tinyfs selftests: the module, the kernel log, and
 * the on-disk super block.
 */

#ifndef TINYFS_UTIL_H
#define TINYFS_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define TINYFS_NAME "tinyfs"
#define TINYFS_MAGIC 0x53464e54u	/* "TNFS" */
#define TINYFS_SUPER_SIZE 1024

static inline int tinyfs_finit_module(int fd)
{
	return syscall(__NR_finit_module, fd, "", 0);
}

static inline int tinyfs_delete_module(void)
{
	return syscall(__NR_delete_module, TINYFS_NAME, O_NONBLOCK);
}

/* Is a module called tinyfs listed in /proc/modules? */
static inline bool tinyfs_module_listed(void)
{
	size_t len = strlen(TINYFS_NAME);
	bool found = false;
	char line[512];
	FILE *f = fopen("/proc/modules", "r");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, TINYFS_NAME, len) && line[len] == ' ') {
			found = true;
			break;
		}
	}
	fclose(f);
	return found;
}

/* Open the module file: $TINYFS_MODULE, or tinyfs.ko next to this program. */
static inline int tinyfs_open_module(char *path, size_t size)
{
	const char *env = getenv("TINYFS_MODULE");
	char exe[PATH_MAX];
	ssize_t n;

	if (env && *env) {
		snprintf(path, size, "%s", env);
	} else {
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n < 0)
			return -1;
		exe[n] = '\0';
		snprintf(path, size, "%s/%s.ko", dirname(exe), TINYFS_NAME);
	}
	return open(path, O_RDONLY | O_CLOEXEC);
}

/*
 * Load tinyfs unless it is loaded already: returns 1 if this loaded it (the
 * caller unloads it when done), 0 if it was there, -1 with errno on error.
 */
static inline int tinyfs_ensure_module(void)
{
	char path[PATH_MAX];
	int fd, ret;

	if (tinyfs_module_listed())
		return 0;
	fd = tinyfs_open_module(path, sizeof(path));
	if (fd < 0)
		return -1;
	ret = tinyfs_finit_module(fd);
	close(fd);
	return ret ? -1 : 1;
}

/*
 * (Re)load tinyfs with module parameters @params: unloads it first if it is
 * loaded (it must not be in use). Returns 0, or -1 with errno.
 */
static inline int tinyfs_load_module_params(const char *params)
{
	char path[PATH_MAX];
	int fd, ret;

	if (tinyfs_module_listed() && tinyfs_delete_module())
		return -1;
	fd = tinyfs_open_module(path, sizeof(path));
	if (fd < 0)
		return -1;
	ret = syscall(__NR_finit_module, fd, params, 0);
	close(fd);
	return ret ? -1 : 0;
}

/* Open /dev/kmsg positioned after the last record logged so far. */
static inline int kmsg_open_at_end(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd >= 0 && lseek(fd, 0, SEEK_END) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Has a record containing @text been logged since @fd was positioned? */
static inline bool kmsg_logged(int fd, const char *text)
{
	char rec[8192];
	ssize_t n;

	for (;;) {
		n = read(fd, rec, sizeof(rec) - 1);
		if (n < 0 && errno == EPIPE)	/* overwritten records: go on */
			continue;
		if (n <= 0)
			return false;
		rec[n] = '\0';
		if (strstr(rec, text))
			return true;
	}
}

/* CRC32C in the convention of the kernel's crc32c(): no inversion. */
static inline uint32_t tinyfs_crc32c(uint32_t crc, const uint8_t *p, size_t len)
{
	int i;

	while (len--) {
		crc ^= *p++;
		for (i = 0; i < 8; i++)
			crc = (crc >> 1) ^ (0x82f63b78u & -(crc & 1));
	}
	return crc;
}

/* Recompute the checksum at the end of the super block area. */
static inline void tinyfs_super_set_csum(uint8_t *sb)
{
	uint32_t csum = tinyfs_crc32c(~0u, sb, TINYFS_SUPER_SIZE - 4);

	memcpy(sb + TINYFS_SUPER_SIZE - 4, &csum, 4);	/* little-endian host */
}

/* Runs fsck.tinyfs -n @dev; returns its exit status (0: clean). */
static inline int tinyfs_run_fsck(const char *dev)
{
	const char *fsck = getenv("TINYFS_FSCK");
	int status;
	pid_t pid;

	if (!fsck || !*fsck)
		fsck = "fsck.tinyfs";
	pid = fork();
	if (pid == 0) {
		execlp(fsck, fsck, "-n", "-v", dev, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/* Runs mkfs.tinyfs -q -b @bs @dev; returns its exit status (0: made). */
static inline int tinyfs_run_mkfs(const char *dev, const char *bs)
{
	const char *mkfs = getenv("TINYFS_MKFS");
	int status;
	pid_t pid;

	if (!mkfs || !*mkfs)
		mkfs = "mkfs.tinyfs";
	pid = fork();
	if (pid == 0) {
		execlp(mkfs, mkfs, "-q", "-b", bs, dev, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

#endif /* TINYFS_UTIL_H */
