// SPDX-License-Identifier: GPL-2.0
/*
 * Load and unload the tinyfs module and check what the kernel reports.
 *
 * The module is taken from $TINYFS_MODULE, or from tinyfs.ko next to this
 * program. The tests need CAP_SYS_MODULE and a kernel without tinyfs built in.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../../kselftest_harness.h"

#define MODNAME "tinyfs"

static int finit_module(int fd, const char *params, int flags)
{
	return syscall(__NR_finit_module, fd, params, flags);
}

static int delete_module(const char *name, int flags)
{
	return syscall(__NR_delete_module, name, flags);
}

/* Is a module called @name listed in /proc/modules? */
static bool module_listed(const char *name)
{
	char line[512];
	size_t len = strlen(name);
	bool found = false;
	FILE *f = fopen("/proc/modules", "r");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, name, len) && line[len] == ' ') {
			found = true;
			break;
		}
	}
	fclose(f);
	return found;
}

/* Open /dev/kmsg positioned after the last record logged so far. */
static int kmsg_open_at_end(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);

	if (fd >= 0 && lseek(fd, 0, SEEK_END) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Has a record containing @text been logged since @fd was positioned? */
static bool kmsg_logged(int fd, const char *text)
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

static const char *module_path(char *buf, size_t size)
{
	const char *env = getenv("TINYFS_MODULE");
	char exe[PATH_MAX];
	ssize_t n;

	if (env && *env)
		return env;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0)
		return NULL;
	exe[n] = '\0';
	snprintf(buf, size, "%s/%s.ko", dirname(exe), MODNAME);
	return buf;
}

FIXTURE(module) {
	int ko;		/* the module file */
	int kmsg;	/* /dev/kmsg, positioned after set-up */
};

FIXTURE_SETUP(module)
{
	char buf[PATH_MAX];
	const char *path = module_path(buf, sizeof(buf));

	ASSERT_NE(NULL, path);
	self->ko = open(path, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, self->ko) TH_LOG("cannot open %s: %s", path, strerror(errno));
	/* A module left loaded by an earlier, failed test would skew this one. */
	if (module_listed(MODNAME))
		ASSERT_EQ(0, delete_module(MODNAME, O_NONBLOCK));
	ASSERT_FALSE(module_listed(MODNAME));
	self->kmsg = kmsg_open_at_end();
	ASSERT_LE(0, self->kmsg) TH_LOG("/dev/kmsg: %s", strerror(errno));
}

FIXTURE_TEARDOWN(module)
{
	if (module_listed(MODNAME))
		delete_module(MODNAME, O_NONBLOCK);
	close(self->kmsg);
	close(self->ko);
}

TEST_F(module, load_logs_and_lists)
{
	ASSERT_EQ(0, finit_module(self->ko, "", 0)) TH_LOG("finit_module: %s", strerror(errno));
	EXPECT_TRUE(module_listed(MODNAME));
	EXPECT_TRUE(kmsg_logged(self->kmsg, MODNAME ": module loaded"));
}

TEST_F(module, unload_logs_and_unlists)
{
	ASSERT_EQ(0, finit_module(self->ko, "", 0)) TH_LOG("finit_module: %s", strerror(errno));
	ASSERT_EQ(0, delete_module(MODNAME, O_NONBLOCK))
		TH_LOG("delete_module: %s", strerror(errno));
	EXPECT_FALSE(module_listed(MODNAME));
	EXPECT_TRUE(kmsg_logged(self->kmsg, MODNAME ": module unloaded"));
}

TEST_F(module, second_load_is_refused)
{
	ASSERT_EQ(0, finit_module(self->ko, "", 0));
	EXPECT_EQ(-1, finit_module(self->ko, "", 0));
	EXPECT_EQ(EEXIST, errno);
	EXPECT_TRUE(module_listed(MODNAME));
}

TEST_F(module, unload_when_absent_is_refused)
{
	EXPECT_EQ(-1, delete_module(MODNAME, O_NONBLOCK));
	EXPECT_EQ(ENOENT, errno);
}

TEST_F(module, reload_cycles)
{
	int i;

	for (i = 0; i < 5; i++) {
		ASSERT_EQ(0, finit_module(self->ko, "", 0))
			TH_LOG("load %d: %s", i, strerror(errno));
		ASSERT_EQ(0, delete_module(MODNAME, O_NONBLOCK))
			TH_LOG("unload %d: %s", i, strerror(errno));
	}
	EXPECT_FALSE(module_listed(MODNAME));
}

TEST_HARNESS_MAIN
