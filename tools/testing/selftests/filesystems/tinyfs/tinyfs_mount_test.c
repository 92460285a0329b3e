// SPDX-License-Identifier: GPL-2.0
/*
 * Mount tinyfs file systems made by mkfs.tinyfs, at every block size, and
 * check that bad images and bad options are refused with the documented
 * error and a kernel log line.
 *
 * Needs, as root:
 *   TINYFS_DEV   a scratch block device; its contents are destroyed
 *   TINYFS_MKFS  mkfs.tinyfs (default: mkfs.tinyfs in $PATH)
 * and the module, as for tinyfs_module_test (loaded here if it is not).
 */

#define _GNU_SOURCE
#include <dirent.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>

#include "../../kselftest_harness.h"
#include "tinyfs_util.h"

#define ROOT_INO 1

/* Runs mkfs.tinyfs -q -b @bs @dev; returns its exit status. */
static int run_mkfs(const char *dev, int bs)
{
	const char *mkfs = getenv("TINYFS_MKFS");
	char bs_arg[16];
	int status;
	pid_t pid;

	if (!mkfs || !*mkfs)
		mkfs = "mkfs.tinyfs";
	snprintf(bs_arg, sizeof(bs_arg), "%d", bs);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execlp(mkfs, mkfs, "-q", "-b", bs_arg, dev, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static int pread_full(const char *dev, void *buf, size_t len, off_t off)
{
	int fd = open(dev, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = pread(fd, buf, len, off);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

static int pwrite_full(const char *dev, const void *buf, size_t len, off_t off)
{
	int fd = open(dev, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = pwrite(fd, buf, len, off);
	if (fsync(fd) < 0)
		n = -1;
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

FIXTURE(tinyfs) {
	const char *dev;
	char mnt[64];
	uint64_t dev_size;
	bool loaded_here;	/* we loaded the module: unload it after */
	bool mounted;
	int kmsg;
};

FIXTURE_VARIANT(tinyfs) {
	int block_size;
};

FIXTURE_VARIANT_ADD(tinyfs, bs1024) { .block_size = 1024 };
FIXTURE_VARIANT_ADD(tinyfs, bs2048) { .block_size = 2048 };
FIXTURE_VARIANT_ADD(tinyfs, bs4096) { .block_size = 4096 };

FIXTURE_SETUP(tinyfs)
{
	int fd, ret;

	self->dev = getenv("TINYFS_DEV");
	if (!self->dev || !*self->dev)
		SKIP(return, "set TINYFS_DEV to a scratch block device");
	fd = open(self->dev, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, fd) TH_LOG("%s: %s", self->dev, strerror(errno));
	ASSERT_EQ(0, ioctl(fd, BLKGETSIZE64, &self->dev_size));
	close(fd);

	ret = tinyfs_ensure_module();
	ASSERT_LE(0, ret) TH_LOG("loading tinyfs.ko: %s", strerror(errno));
	self->loaded_here = ret > 0;

	strcpy(self->mnt, "/tmp/tinyfs-mnt.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->mnt));
	ASSERT_EQ(0, run_mkfs(self->dev, variant->block_size));
	self->kmsg = kmsg_open_at_end();
	ASSERT_LE(0, self->kmsg);
}

FIXTURE_TEARDOWN(tinyfs)
{
	if (self->mounted)
		umount(self->mnt);
	rmdir(self->mnt);
	if (self->loaded_here)
		tinyfs_delete_module();
	close(self->kmsg);
}

/* Mounts tinyfs from @dev on @mnt; notes success in @mounted for the teardown. */
static int mount_tinyfs(const char *dev, const char *mnt, const char *options, bool *mounted)
{
	int ret = mount(dev, mnt, TINYFS_NAME, 0, options);

	if (ret == 0)
		*mounted = true;
	return ret;
}

#define do_mount(options) mount_tinyfs(self->dev, self->mnt, options, &self->mounted)

TEST_F(tinyfs, empty_root_directory)
{
	struct dirent *d;
	struct stat st;
	int dots = 0, others = 0;
	DIR *dir;

	ASSERT_EQ(0, do_mount(NULL)) TH_LOG("mount: %s", strerror(errno));
	ASSERT_EQ(0, stat(self->mnt, &st));
	EXPECT_TRUE(S_ISDIR(st.st_mode));
	EXPECT_EQ(0755, st.st_mode & 07777);
	EXPECT_EQ(ROOT_INO, st.st_ino);
	EXPECT_EQ(2, st.st_nlink);
	EXPECT_EQ(variant->block_size, st.st_size);

	dir = opendir(self->mnt);
	ASSERT_NE(NULL, dir);
	while ((d = readdir(dir))) {
		if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, "..")) {
			dots++;
			EXPECT_EQ(ROOT_INO, d->d_ino);
			EXPECT_EQ(DT_DIR, d->d_type);
		} else {
			others++;
		}
	}
	closedir(dir);
	EXPECT_EQ(2, dots);
	EXPECT_EQ(0, others);
}

TEST_F(tinyfs, statfs_reports_the_geometry)
{
	struct statfs sf;

	ASSERT_EQ(0, do_mount(NULL));
	ASSERT_EQ(0, statfs(self->mnt, &sf));
	EXPECT_EQ(TINYFS_MAGIC, (uint32_t)sf.f_type);
	EXPECT_EQ(variant->block_size, sf.f_bsize);
	EXPECT_EQ(self->dev_size / variant->block_size, sf.f_blocks);
	EXPECT_LT(0, sf.f_bfree);
	EXPECT_LT(sf.f_bfree, sf.f_blocks);
	EXPECT_EQ(sf.f_files - 1, sf.f_ffree);	/* the root directory */
	EXPECT_EQ(255, sf.f_namelen);
}

TEST_F(tinyfs, lookup_of_missing_names)
{
	char name[PATH_MAX];
	struct stat st;
	int len;

	ASSERT_EQ(0, do_mount(NULL));
	snprintf(name, sizeof(name), "%s/missing", self->mnt);
	EXPECT_EQ(-1, stat(name, &st));
	EXPECT_EQ(ENOENT, errno);

	/* 255 bytes is a valid name; 256 is too long. */
	len = snprintf(name, sizeof(name), "%s/", self->mnt);
	memset(name + len, 'n', 255);
	name[len + 255] = '\0';
	EXPECT_EQ(-1, stat(name, &st));
	EXPECT_EQ(ENOENT, errno);
	name[len + 255] = 'n';
	name[len + 256] = '\0';
	EXPECT_EQ(-1, stat(name, &st));
	EXPECT_EQ(ENAMETOOLONG, errno);
}

TEST_F(tinyfs, read_only_mount_refuses_writes)
{
	char name[PATH_MAX];

	ASSERT_EQ(0, mount(self->dev, self->mnt, TINYFS_NAME, MS_RDONLY, NULL));
	self->mounted = true;
	snprintf(name, sizeof(name), "%s/new", self->mnt);
	EXPECT_EQ(-1, open(name, O_CREAT | O_WRONLY, 0644));
	EXPECT_EQ(EROFS, errno);
}

TEST_F(tinyfs, remount_after_unmount)
{
	ASSERT_EQ(0, do_mount(NULL));
	ASSERT_EQ(0, umount(self->mnt));
	self->mounted = false;
	ASSERT_EQ(0, do_mount(NULL));
}

TEST_F(tinyfs, unknown_option_is_refused)
{
	EXPECT_EQ(-1, do_mount("no_such_option"));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_TRUE(kmsg_logged(self->kmsg, "tinyfs: Unknown parameter 'no_such_option'"));
}

TEST_F(tinyfs, bad_magic_is_refused)
{
	uint8_t sb[TINYFS_SUPER_SIZE];

	ASSERT_EQ(0, pread_full(self->dev, sb, sizeof(sb), 0));
	sb[0] ^= 0xff;
	ASSERT_EQ(0, pwrite_full(self->dev, sb, sizeof(sb), 0));
	EXPECT_EQ(-1, do_mount(NULL));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_TRUE(kmsg_logged(self->kmsg, "bad magic number"));
}

TEST_F(tinyfs, bad_super_block_checksum_is_refused)
{
	uint8_t sb[TINYFS_SUPER_SIZE];

	ASSERT_EQ(0, pread_full(self->dev, sb, sizeof(sb), 0));
	sb[500] ^= 0x01;	/* reserved, but covered by the checksum */
	ASSERT_EQ(0, pwrite_full(self->dev, sb, sizeof(sb), 0));
	EXPECT_EQ(-1, do_mount(NULL));
	EXPECT_EQ(EUCLEAN, errno);
	EXPECT_TRUE(kmsg_logged(self->kmsg, "super block: checksum mismatch"));
}

TEST_F(tinyfs, inconsistent_super_block_is_refused)
{
	uint8_t sb[TINYFS_SUPER_SIZE];

	ASSERT_EQ(0, pread_full(self->dev, sb, sizeof(sb), 0));
	sb[88] ^= 0x01;		/* first data block: no longer the derived one */
	tinyfs_super_set_csum(sb);
	ASSERT_EQ(0, pwrite_full(self->dev, sb, sizeof(sb), 0));
	EXPECT_EQ(-1, do_mount(NULL));
	EXPECT_EQ(EUCLEAN, errno);
	EXPECT_TRUE(kmsg_logged(self->kmsg, "corrupt super block geometry"));
}

TEST_F(tinyfs, device_smaller_than_the_file_system_is_refused)
{
	uint8_t sb[TINYFS_SUPER_SIZE];
	uint64_t blocks;

	ASSERT_EQ(0, pread_full(self->dev, sb, sizeof(sb), 0));
	memcpy(&blocks, sb + 24, 8);
	ASSERT_EQ(self->dev_size / variant->block_size, blocks);
	/* Claim 8 more blocks: the bitmaps and the rest of the geometry do not change. */
	blocks += 8;
	memcpy(sb + 24, &blocks, 8);
	tinyfs_super_set_csum(sb);
	ASSERT_EQ(0, pwrite_full(self->dev, sb, sizeof(sb), 0));
	EXPECT_EQ(-1, do_mount(NULL));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_TRUE(kmsg_logged(self->kmsg, "but the device has only"));
}

TEST_F(tinyfs, stale_free_counts_are_recounted)
{
	uint8_t sb[TINYFS_SUPER_SIZE];
	struct statfs before, after;
	uint64_t free_blocks;

	ASSERT_EQ(0, do_mount(NULL));
	ASSERT_EQ(0, statfs(self->mnt, &before));
	ASSERT_EQ(0, umount(self->mnt));
	self->mounted = false;
	/* As after a crash: the super block's count lags the bitmap. */
	ASSERT_EQ(0, pread_full(self->dev, sb, sizeof(sb), 0));
	memcpy(&free_blocks, sb + 40, 8);
	free_blocks -= 5;
	memcpy(sb + 40, &free_blocks, 8);
	tinyfs_super_set_csum(sb);
	ASSERT_EQ(0, pwrite_full(self->dev, sb, sizeof(sb), 0));
	ASSERT_EQ(0, do_mount(NULL));
	ASSERT_EQ(0, statfs(self->mnt, &after));
	EXPECT_EQ(before.f_bfree, after.f_bfree);
	EXPECT_TRUE(kmsg_logged(self->kmsg, "free counts taken from the bitmaps"));
}

TEST_F(tinyfs, corrupt_root_inode_is_refused)
{
	uint8_t sb[TINYFS_SUPER_SIZE], byte;
	uint64_t table;

	ASSERT_EQ(0, pread_full(self->dev, sb, sizeof(sb), 0));
	memcpy(&table, sb + 72, 8);
	/* Flip a bit of the root inode's size, inode table block checksum left stale. */
	ASSERT_EQ(0, pread_full(self->dev, &byte, 1, table * variant->block_size + 16));
	byte ^= 0x01;
	ASSERT_EQ(0, pwrite_full(self->dev, &byte, 1, table * variant->block_size + 16));
	EXPECT_EQ(-1, do_mount(NULL));
	EXPECT_EQ(EUCLEAN, errno);
	EXPECT_TRUE(kmsg_logged(self->kmsg, "inode table block: checksum mismatch"));
}

TEST_HARNESS_MAIN
