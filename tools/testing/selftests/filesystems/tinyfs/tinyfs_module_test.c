// SPDX-License-Identifier: GPL-2.0
/*
 * Load and unload the tinyfs module and check what the kernel reports.
 *
 * The module is taken from $TINYFS_MODULE, or from tinyfs.ko next to this
 * program. The tests need CAP_SYS_MODULE and a kernel without tinyfs built in.
 */

#define _GNU_SOURCE

#include "../../kselftest_harness.h"
#include "tinyfs_util.h"

/* Is tinyfs listed in /proc/filesystems? */
static bool fs_registered(void)
{
	char line[256];
	bool found = false;
	FILE *f = fopen("/proc/filesystems", "r");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (!strcmp(line, "\t" TINYFS_NAME "\n"))
			found = true;
	fclose(f);
	return found;
}

FIXTURE(module) {
	int ko;		/* the module file */
	int kmsg;	/* /dev/kmsg, positioned after set-up */
};

FIXTURE_SETUP(module)
{
	char path[PATH_MAX];

	self->ko = tinyfs_open_module(path, sizeof(path));
	ASSERT_LE(0, self->ko) TH_LOG("cannot open %s: %s", path, strerror(errno));
	/* A module left loaded by an earlier, failed test would skew this one. */
	if (tinyfs_module_listed())
		ASSERT_EQ(0, tinyfs_delete_module());
	ASSERT_FALSE(tinyfs_module_listed());
	self->kmsg = kmsg_open_at_end();
	ASSERT_LE(0, self->kmsg) TH_LOG("/dev/kmsg: %s", strerror(errno));
}

FIXTURE_TEARDOWN(module)
{
	if (tinyfs_module_listed())
		tinyfs_delete_module();
	close(self->kmsg);
	close(self->ko);
}

TEST_F(module, load_logs_and_lists)
{
	ASSERT_EQ(0, tinyfs_finit_module(self->ko)) TH_LOG("finit_module: %s", strerror(errno));
	EXPECT_TRUE(tinyfs_module_listed());
	EXPECT_TRUE(kmsg_logged(self->kmsg, TINYFS_NAME ": module loaded"));
}

TEST_F(module, load_registers_the_filesystem)
{
	EXPECT_FALSE(fs_registered());
	ASSERT_EQ(0, tinyfs_finit_module(self->ko));
	EXPECT_TRUE(fs_registered());
	ASSERT_EQ(0, tinyfs_delete_module());
	EXPECT_FALSE(fs_registered());
}

TEST_F(module, unload_logs_and_unlists)
{
	ASSERT_EQ(0, tinyfs_finit_module(self->ko)) TH_LOG("finit_module: %s", strerror(errno));
	ASSERT_EQ(0, tinyfs_delete_module()) TH_LOG("delete_module: %s", strerror(errno));
	EXPECT_FALSE(tinyfs_module_listed());
	EXPECT_TRUE(kmsg_logged(self->kmsg, TINYFS_NAME ": module unloaded"));
}

TEST_F(module, second_load_is_refused)
{
	ASSERT_EQ(0, tinyfs_finit_module(self->ko));
	EXPECT_EQ(-1, tinyfs_finit_module(self->ko));
	EXPECT_EQ(EEXIST, errno);
	EXPECT_TRUE(tinyfs_module_listed());
}

TEST_F(module, unload_when_absent_is_refused)
{
	EXPECT_EQ(-1, tinyfs_delete_module());
	EXPECT_EQ(ENOENT, errno);
}

TEST_F(module, reload_cycles)
{
	int i;

	for (i = 0; i < 5; i++) {
		ASSERT_EQ(0, tinyfs_finit_module(self->ko))
			TH_LOG("load %d: %s", i, strerror(errno));
		ASSERT_EQ(0, tinyfs_delete_module())
			TH_LOG("unload %d: %s", i, strerror(errno));
	}
	EXPECT_FALSE(tinyfs_module_listed());
}

TEST_HARNESS_MAIN
