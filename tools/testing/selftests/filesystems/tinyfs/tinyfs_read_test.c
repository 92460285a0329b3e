// SPDX-License-Identifier: GPL-2.0
/*
 * Read what mkfs.tinyfs -d put into a tinyfs file system, at every block
 * size: directory listings, file contents through the page cache (with
 * holes, and files that need indirect blocks), symbolic links, metadata.
 *
 * Needs TINYFS_DEV and TINYFS_MKFS as tinyfs_mount_test does.
 */

#define _GNU_SOURCE
#include <dirent.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "../../kselftest_harness.h"
#include "tinyfs_util.h"

/* The files of the source tree: name, size, and a hole [hole_start, hole_end). */
static const struct {
	const char *name;
	off_t size;
	off_t hole_start, hole_end;
} files[] = {
	{ "empty", 0 },
	{ "one-byte", 1 },
	{ "small", 1000 },
	{ "page", 4096 },
	{ "indirect", 300 * 1024 },		/* single and double indirect at 1 KiB */
	{ "sparse", 1024 * 1024, 64 * 1024, 960 * 1024 },
	{ "dir/nested/deep", 70000 },
};

/* The byte at @off of file @i: a pattern that differs between files. */
static uint8_t pattern(int i, off_t off)
{
	return (uint8_t)(off * 7 + off / 4099 + i * 31 + 1);
}

static int write_source_file(const char *dir, int i)
{
	char path[PATH_MAX], buf[4096];
	off_t off, n, k;
	int fd, ret = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, files[i].name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
	if (fd < 0)
		return -1;
	for (off = 0; off < files[i].size; off += n) {
		n = files[i].size - off;
		if (n > (off_t)sizeof(buf))
			n = sizeof(buf);
		if (off >= files[i].hole_start && off < files[i].hole_end)
			continue;	/* leave a hole */
		for (k = 0; k < n; k++)
			buf[k] = pattern(i, off + k);
		if (pwrite(fd, buf, n, off) != n)
			ret = -1;
	}
	if (ftruncate(fd, files[i].size) < 0)
		ret = -1;
	close(fd);
	return ret;
}

/* Waits for child @pid; returns its exit status, or -1. */
static int wait_exit(pid_t pid)
{
	int status;

	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/* Runs mkfs.tinyfs -q -b @bs -d @src @dev. */
static int run_mkfs(const char *mkfs, const char *bs, const char *src, const char *dev)
{
	pid_t pid = fork();

	if (pid == 0) {
		execlp(mkfs, mkfs, "-q", "-b", bs, "-d", src, dev, (char *)NULL);
		_exit(127);
	}
	return wait_exit(pid);
}

/* Removes the tree at @path. */
static int remove_tree(const char *path)
{
	pid_t pid = fork();

	if (pid == 0) {
		execlp("rm", "rm", "-rf", path, (char *)NULL);
		_exit(127);
	}
	return wait_exit(pid);
}

FIXTURE(tree) {
	const char *dev;
	char src[64], mnt[64];
	bool loaded_here, mounted;
};

FIXTURE_VARIANT(tree) {
	const char *block_size;
};

FIXTURE_VARIANT_ADD(tree, bs1024) { .block_size = "1024" };
FIXTURE_VARIANT_ADD(tree, bs2048) { .block_size = "2048" };
FIXTURE_VARIANT_ADD(tree, bs4096) { .block_size = "4096" };

FIXTURE_SETUP(tree)
{
	const char *mkfs = getenv("TINYFS_MKFS");
	char path[PATH_MAX], longname[256];
	unsigned int i;
	int fd, ret;

	self->dev = getenv("TINYFS_DEV");
	if (!self->dev || !*self->dev)
		SKIP(return, "set TINYFS_DEV to a scratch block device");
	if (!mkfs || !*mkfs)
		mkfs = "mkfs.tinyfs";

	ret = tinyfs_ensure_module();
	ASSERT_LE(0, ret) TH_LOG("loading tinyfs.ko: %s", strerror(errno));
	self->loaded_here = ret > 0;

	/* The source tree. */
	strcpy(self->src, "/tmp/tinyfs-src.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->src));
	snprintf(path, sizeof(path), "%s/dir", self->src);
	ASSERT_EQ(0, mkdir(path, 0750));
	snprintf(path, sizeof(path), "%s/dir/nested", self->src);
	ASSERT_EQ(0, mkdir(path, 0700));
	for (i = 0; i < ARRAY_SIZE(files); i++)
		ASSERT_EQ(0, write_source_file(self->src, i));
	snprintf(path, sizeof(path), "%s/link", self->src);
	ASSERT_EQ(0, symlink("dir/nested/deep", path));
	memset(longname, 'x', 255);
	longname[255] = '\0';
	snprintf(path, sizeof(path), "%s/%s", self->src, longname);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	ASSERT_LE(0, fd);
	close(fd);

	ASSERT_EQ(0, run_mkfs(mkfs, variant->block_size, self->src, self->dev));
	strcpy(self->mnt, "/tmp/tinyfs-mnt.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->mnt));
	ASSERT_EQ(0, mount(self->dev, self->mnt, TINYFS_NAME, MS_RDONLY, NULL))
		TH_LOG("mount: %s", strerror(errno));
	self->mounted = true;
}

FIXTURE_TEARDOWN(tree)
{
	if (self->mounted)
		umount(self->mnt);
	rmdir(self->mnt);
	if (self->src[0])
		remove_tree(self->src);
	if (self->loaded_here)
		tinyfs_delete_module();
}

TEST_F(tree, file_contents_match)
{
	char path[PATH_MAX];
	static uint8_t buf[64 * 1024];
	unsigned int i;
	off_t off, k;
	ssize_t n;
	int fd;

	for (i = 0; i < ARRAY_SIZE(files); i++) {
		struct stat st;
		size_t bad = 0;

		snprintf(path, sizeof(path), "%s/%s", self->mnt, files[i].name);
		fd = open(path, O_RDONLY);
		ASSERT_LE(0, fd) TH_LOG("%s: %s", files[i].name, strerror(errno));
		ASSERT_EQ(0, fstat(fd, &st));
		EXPECT_EQ(files[i].size, st.st_size) TH_LOG("%s", files[i].name);
		for (off = 0; (n = read(fd, buf, sizeof(buf))) > 0; off += n) {
			for (k = 0; k < n; k++) {
				uint8_t want = off + k >= files[i].hole_start &&
					       off + k < files[i].hole_end ? 0 :
					       pattern(i, off + k);

				bad += buf[k] != want;
			}
		}
		EXPECT_EQ(0, n);
		EXPECT_EQ(files[i].size, off) TH_LOG("%s", files[i].name);
		EXPECT_EQ(0, bad) TH_LOG("%s: %zu bytes differ", files[i].name, bad);
		close(fd);
	}
}

TEST_F(tree, holes_take_no_blocks)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/sparse", self->mnt);
	ASSERT_EQ(0, stat(path, &st));
	/* 1 MiB with a 896 KiB hole: well under 1 MiB allocated. */
	EXPECT_LT(st.st_blocks * 512, 512 * 1024);
	EXPECT_LT(0, st.st_blocks);
}

TEST_F(tree, directories_list_their_entries)
{
	static const char * const want[] = { ".", "..", "empty", "one-byte", "small", "page",
					      "indirect", "sparse", "dir", "link" };
	unsigned int found[ARRAY_SIZE(want)] = { 0 }, i, other = 0, longname = 0, wrong = 0;
	struct dirent *d;
	DIR *dir = opendir(self->mnt);

	ASSERT_NE(NULL, dir);
	while ((d = readdir(dir))) {
		for (i = 0; i < ARRAY_SIZE(want); i++)
			if (!strcmp(d->d_name, want[i])) {
				found[i]++;
				break;
			}
		if (i < ARRAY_SIZE(want))
			continue;
		if (strlen(d->d_name) == 255)
			longname++;
		else
			other++;
	}
	closedir(dir);
	for (i = 0; i < ARRAY_SIZE(want); i++) {
		if (found[i] != 1) {
			wrong++;
			TH_LOG("%s listed %u times", want[i], found[i]);
		}
	}
	EXPECT_EQ(0, wrong);
	EXPECT_EQ(1, longname);
	EXPECT_EQ(0, other);
}

TEST_F(tree, metadata_is_preserved)
{
	char src[PATH_MAX], dst[PATH_MAX];
	struct stat s, d;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(files); i++) {
		snprintf(src, sizeof(src), "%s/%s", self->src, files[i].name);
		snprintf(dst, sizeof(dst), "%s/%s", self->mnt, files[i].name);
		ASSERT_EQ(0, lstat(src, &s));
		ASSERT_EQ(0, lstat(dst, &d));
		EXPECT_EQ(s.st_mode, d.st_mode) TH_LOG("%s", files[i].name);
		EXPECT_EQ(s.st_uid, d.st_uid);
		EXPECT_EQ(s.st_gid, d.st_gid);
		EXPECT_EQ(s.st_mtim.tv_sec, d.st_mtim.tv_sec) TH_LOG("%s", files[i].name);
		EXPECT_EQ(s.st_mtim.tv_nsec, d.st_mtim.tv_nsec) TH_LOG("%s", files[i].name);
		EXPECT_EQ(1, d.st_nlink);
	}
	snprintf(dst, sizeof(dst), "%s/dir", self->mnt);
	ASSERT_EQ(0, stat(dst, &d));
	EXPECT_TRUE(S_ISDIR(d.st_mode));
	EXPECT_EQ(0750, d.st_mode & 07777);
	EXPECT_EQ(3, d.st_nlink);	/* ".", its entry, "nested/.." */
}

TEST_F(tree, symlink_is_followed)
{
	char path[PATH_MAX], target[PATH_MAX];
	struct stat st;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/link", self->mnt);
	n = readlink(path, target, sizeof(target) - 1);
	ASSERT_LT(0, n) TH_LOG("readlink: %s", strerror(errno));
	target[n] = '\0';
	EXPECT_STREQ("dir/nested/deep", target);
	ASSERT_EQ(0, stat(path, &st));
	EXPECT_EQ(70000, st.st_size);
}

TEST_F(tree, read_only_mount_refuses_writes)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/small", self->mnt);
	EXPECT_EQ(-1, open(path, O_WRONLY));
	EXPECT_EQ(EROFS, errno);
}

TEST_HARNESS_MAIN
