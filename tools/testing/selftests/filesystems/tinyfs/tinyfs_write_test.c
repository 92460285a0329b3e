// SPDX-License-Identifier: GPL-2.0
/*
 * Write to tinyfs through the page cache at every block size: create,
 * write, read back, persistence across unmount and mount, unlink and the
 * space it frees, a full file system, bad names, fsync.
 *
 * Needs TINYFS_DEV and TINYFS_MKFS as tinyfs_mount_test does.
 */

#define _GNU_SOURCE
#include <dirent.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>

#include "../../kselftest_harness.h"
#include "tinyfs_util.h"

#define LONG_NAME "a-rather-long-file-name-number-"

static uint8_t pattern(unsigned int seed, off_t off)
{
	return (uint8_t)(off * 13 + off / 1021 + seed * 101 + 7);
}

/* Writes @size bytes of pattern @seed to @path in @chunk-byte writes. */
static int write_file(const char *path, unsigned int seed, off_t size, size_t chunk)
{
	static uint8_t buf[256 * 1024];
	off_t off;
	size_t k, n;
	ssize_t w;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0)
		return -errno;
	for (off = 0; off < size; off += w) {
		n = size - off < (off_t)chunk ? size - off : chunk;
		for (k = 0; k < n; k++)
			buf[k] = pattern(seed, off + k);
		w = write(fd, buf, n);	/* a short write is followed by the error */
		if (w <= 0) {
			int err = w < 0 ? -errno : -EIO;

			close(fd);
			return err;
		}
	}
	return close(fd) ? -errno : 0;
}

/* Number of bytes of @path that differ from pattern @seed, or -1. */
static long long check_file(const char *path, unsigned int seed, off_t size)
{
	static uint8_t buf[256 * 1024];
	long long bad = 0;
	off_t off = 0;
	ssize_t n, k;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -1;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (k = 0; k < n; k++)
			bad += buf[k] != pattern(seed, off + k);
		off += n;
	}
	close(fd);
	return n < 0 || off != size ? -1 : bad;
}

FIXTURE(fs) {
	const char *dev;
	char mnt[64];
	bool loaded_here, mounted;
};

FIXTURE_VARIANT(fs) {
	const char *block_size;
};

FIXTURE_VARIANT_ADD(fs, bs1024) { .block_size = "1024" };
FIXTURE_VARIANT_ADD(fs, bs2048) { .block_size = "2048" };
FIXTURE_VARIANT_ADD(fs, bs4096) { .block_size = "4096" };

FIXTURE_SETUP(fs)
{
	int ret;

	self->dev = getenv("TINYFS_DEV");
	if (!self->dev || !*self->dev)
		SKIP(return, "set TINYFS_DEV to a scratch block device");
	ret = tinyfs_ensure_module();
	ASSERT_LE(0, ret) TH_LOG("loading tinyfs.ko: %s", strerror(errno));
	self->loaded_here = ret > 0;
	ASSERT_EQ(0, tinyfs_run_mkfs(self->dev, variant->block_size));
	strcpy(self->mnt, "/tmp/tinyfs-mnt.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->mnt));
	ASSERT_EQ(0, mount(self->dev, self->mnt, TINYFS_NAME, 0, NULL))
		TH_LOG("mount: %s", strerror(errno));
	self->mounted = true;
}

FIXTURE_TEARDOWN(fs)
{
	if (self->mounted)
		umount(self->mnt);
	rmdir(self->mnt);
	if (self->loaded_here)
		tinyfs_delete_module();
}

/* Unmounts, checks the image with fsck.tinyfs (it must be clean) and mounts again. */
static int remount(FIXTURE_DATA(fs) * self)
{
	self->mounted = false;
	if (umount(self->mnt))
		return -1;
	if (tinyfs_run_fsck(self->dev))
		return -2;
	if (mount(self->dev, self->mnt, TINYFS_NAME, 0, NULL))
		return -1;
	self->mounted = true;
	return 0;
}

TEST_F_TIMEOUT(fs, write_read_and_persist, 300)
{
	/* Sizes around block and page boundaries, and into double indirect blocks at 1 KiB. */
	static const off_t sizes[] = { 1, 1023, 1024, 4097, 65536, 300000, 3 << 20 };
	char path[PATH_MAX];
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		snprintf(path, sizeof(path), "%s/file%u", self->mnt, i);
		ASSERT_EQ(0, write_file(path, i, sizes[i], 3000));
		EXPECT_EQ(0, check_file(path, i, sizes[i]));
	}
	ASSERT_EQ(0, remount(self));
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		snprintf(path, sizeof(path), "%s/file%u", self->mnt, i);
		EXPECT_EQ(0, check_file(path, i, sizes[i]));
	}
	EXPECT_EQ(0, remount(self)) TH_LOG("the image must stay consistent");
}

TEST_F(fs, overwrite_in_place)
{
	char path[PATH_MAX];
	uint8_t b = 0x5a;
	int fd;

	snprintf(path, sizeof(path), "%s/f", self->mnt);
	ASSERT_EQ(0, write_file(path, 1, 100000, 8192));
	fd = open(path, O_WRONLY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(1, pwrite(fd, &b, 1, 5000));
	ASSERT_EQ(0, fsync(fd));
	close(fd);
	ASSERT_EQ(0, remount(self));
	EXPECT_EQ(1, check_file(path, 1, 100000));
	EXPECT_EQ(0, remount(self)) TH_LOG("the image must stay consistent");
}

TEST_F(fs, holes_read_as_zeros)
{
	char path[PATH_MAX], buf[4096];
	struct stat st;
	int fd, i, nonzero = 0;

	snprintf(path, sizeof(path), "%s/sparse", self->mnt);
	fd = open(path, O_RDWR | O_CREAT, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(1, pwrite(fd, "x", 1, 1 << 20));
	ASSERT_EQ(0, fsync(fd));
	ASSERT_EQ(0, fstat(fd, &st));
	EXPECT_EQ((1 << 20) + 1, st.st_size);
	EXPECT_LT(st.st_blocks * 512, 64 * 1024);
	ASSERT_EQ(sizeof(buf), pread(fd, buf, sizeof(buf), 512 * 1024));
	for (i = 0; i < (int)sizeof(buf); i++)
		nonzero += buf[i] != 0;
	EXPECT_EQ(0, nonzero);
	close(fd);
	EXPECT_EQ(0, remount(self)) TH_LOG("the image must stay consistent");
}

TEST_F_TIMEOUT(fs, unlink_frees_space, 300)
{
	char path[PATH_MAX];
	struct statfs before, full, after;

	ASSERT_EQ(0, statfs(self->mnt, &before));
	snprintf(path, sizeof(path), "%s/big", self->mnt);
	ASSERT_EQ(0, write_file(path, 3, 4 << 20, 65536));
	sync();
	ASSERT_EQ(0, statfs(self->mnt, &full));
	EXPECT_LT(full.f_bfree, before.f_bfree);
	EXPECT_EQ(before.f_ffree - 1, full.f_ffree);
	ASSERT_EQ(0, unlink(path));
	ASSERT_EQ(0, statfs(self->mnt, &after));
	EXPECT_EQ(before.f_bfree, after.f_bfree);
	EXPECT_EQ(before.f_ffree, after.f_ffree);
	EXPECT_EQ(-1, access(path, F_OK));
	ASSERT_EQ(0, remount(self));
	ASSERT_EQ(0, statfs(self->mnt, &after));
	EXPECT_EQ(before.f_bfree, after.f_bfree);
	EXPECT_EQ(before.f_ffree, after.f_ffree);
	EXPECT_EQ(0, remount(self)) TH_LOG("the image must stay consistent");
}

TEST_F_TIMEOUT(fs, many_files_in_one_directory, 300)
{
	char path[PATH_MAX];
	struct dirent *d;
	int i, n = 0;
	DIR *dir;

	/* Enough entries to need several directory blocks, and an indirect one at 1 KiB. */
	for (i = 0; i < 600; i++) {
		snprintf(path, sizeof(path), "%s/" LONG_NAME "%04d", self->mnt, i);
		ASSERT_EQ(0, write_file(path, i, i % 50, 64)) TH_LOG("file %d", i);
	}
	ASSERT_EQ(0, remount(self));
	dir = opendir(self->mnt);
	ASSERT_NE(NULL, dir);
	while ((d = readdir(dir)))
		n++;
	closedir(dir);
	EXPECT_EQ(602, n);
	snprintf(path, sizeof(path), "%s/" LONG_NAME "%04d", self->mnt, 577);
	EXPECT_EQ(0, check_file(path, 577, 577 % 50));
	EXPECT_EQ(0, remount(self)) TH_LOG("the image must stay consistent");
}

TEST_F_TIMEOUT(fs, full_file_system_gives_enospc, 300)
{
	char path[PATH_MAX];
	struct statfs sf;
	int ret;

	snprintf(path, sizeof(path), "%s/huge", self->mnt);
	ret = write_file(path, 5, 128 << 20, 256 * 1024);	/* twice the disk */
	EXPECT_EQ(-ENOSPC, ret);
	ASSERT_EQ(0, statfs(self->mnt, &sf));
	EXPECT_EQ(0, sf.f_bfree);
	ASSERT_EQ(0, unlink(path));
	ASSERT_EQ(0, statfs(self->mnt, &sf));
	EXPECT_LT(0, sf.f_bfree);
	snprintf(path, sizeof(path), "%s/after", self->mnt);
	EXPECT_EQ(0, write_file(path, 6, 100000, 4096));
	EXPECT_EQ(0, check_file(path, 6, 100000));
	EXPECT_EQ(0, remount(self)) TH_LOG("the image must stay consistent");
}

TEST_F(fs, bad_names_and_existing_files)
{
	char path[PATH_MAX];
	int len, fd;

	len = snprintf(path, sizeof(path), "%s/", self->mnt);
	memset(path + len, 'n', 256);
	path[len + 256] = '\0';
	EXPECT_EQ(-1, open(path, O_CREAT | O_WRONLY, 0644));
	EXPECT_EQ(ENAMETOOLONG, errno);
	path[len + 255] = '\0';
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	EXPECT_LE(0, fd);
	close(fd);
	EXPECT_EQ(-1, open(path, O_CREAT | O_EXCL | O_WRONLY, 0644));
	EXPECT_EQ(EEXIST, errno);
	EXPECT_EQ(0, remount(self)) TH_LOG("the image must stay consistent");
}

TEST_F(fs, truncate_is_not_supported_yet)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/t", self->mnt);
	ASSERT_EQ(0, write_file(path, 1, 10000, 4096));
	EXPECT_EQ(-1, truncate(path, 10));
	EXPECT_EQ(EOPNOTSUPP, errno);
	EXPECT_EQ(0, truncate(path, 10000));
	EXPECT_EQ(0, check_file(path, 1, 10000));
	EXPECT_EQ(0, remount(self)) TH_LOG("the image must stay consistent");
}

TEST_HARNESS_MAIN
