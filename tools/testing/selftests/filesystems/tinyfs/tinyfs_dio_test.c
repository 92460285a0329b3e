// SPDX-License-Identifier: GPL-2.0
/*
 * tinyfs O_DIRECT tests: alignment, holes, extending writes, coherence with
 * the page cache, O_SYNC, RWF_NOWAIT and AIO; and the race of Linux 2.6.27-rc1
 * ("VFS: fix dio write returning EIO when try_to_release_page fails"):
 *
 *  - held: with debug_writeback_hold_ms, writeback keeps a folio's buffers
 *    for a second after unlocking it; an O_DIRECT write over that folio must
 *    fall back to a buffered write, succeed, count the fallback, and have its
 *    data on the disk when it returns;
 *  - no_fallback: the same with dio_fallback=0 must fail with EIO (the
 *    negative control: it shows that "held" detects the bug);
 *  - race: buffered writers, sync_file_range(), fsync(), O_DIRECT writers and
 *    readers (synchronous and AIO) on the same slots of one file for a
 *    bounded time; no call may fail, every byte must match a model, before
 *    and after a remount, and the fallback counter must have risen.
 *
 * Needs $TINYFS_DEV (a scratch block device: it is reformatted), the module
 * (see tinyfs_util.h) and mkfs.tinyfs/fsck.tinyfs ($TINYFS_MKFS/$TINYFS_FSCK).
 */

#define _GNU_SOURCE
#include <linux/aio_abi.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>

#include "../../kselftest_harness.h"
#include "tinyfs_util.h"

#define SLOT 4096		/* the unit of the race's model: one page */
#define STATS_DIR "/sys/kernel/debug/tinyfs"

/* The byte at @off of a block written by @seed. */
static uint8_t pattern(uint64_t seed, off_t off)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + (uint64_t)(off / 8) * 0xbf58476d1ce4e5b9ull;

	x ^= x >> 29;
	return (uint8_t)(x >> ((off % 8) * 8)) ^ (uint8_t)off;
}

static void fill(uint8_t *buf, uint64_t seed, off_t off, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = pattern(seed, off + i);
}

/* Number of bytes of @buf that differ from @seed's pattern at @off. */
static size_t mismatches(const uint8_t *buf, uint64_t seed, off_t off, size_t len)
{
	size_t i, bad = 0;

	for (i = 0; i < len; i++)
		bad += buf[i] != pattern(seed, off + i);
	return bad;
}

static uint8_t *alloc_aligned(size_t len)
{
	void *p;

	return posix_memalign(&p, 4096, len) ? NULL : p;
}

/* Reads counter @name of the mount of @dev; -1 if it cannot be read. */
static long long stat_read(const char *dev, const char *name)
{
	const char *base = strrchr(dev, '/') ? strrchr(dev, '/') + 1 : dev;
	char path[PATH_MAX], line[64];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), STATS_DIR "/%s/%s", base, name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fgets(line, sizeof(line), f))
		v = strtoll(line, NULL, 10);
	fclose(f);
	return v;
}

/*
 * Looks for the 512-byte sectors of @buf (@len bytes) on @dev, reading it
 * with O_DIRECT, which bypasses every cache of this machine: returns how many
 * of them are on the disk.
 */
static int sectors_on_disk(const char *dev, const uint8_t *buf, size_t len)
{
	const size_t chunk = 1 << 20;
	size_t nsect = len / 512, found = 0, i, s;
	bool *seen = calloc(nsect, sizeof(bool));
	uint8_t *rd = alloc_aligned(chunk);
	ssize_t n;
	off_t off;
	int fd = open(dev, O_RDONLY | O_DIRECT);

	if (fd < 0 || !seen || !rd)
		goto out;
	for (off = 0; (n = pread(fd, rd, chunk, off)) > 0; off += n)
		for (i = 0; i + 512 <= (size_t)n; i += 512)
			for (s = 0; s < nsect; s++)
				if (!seen[s] && !memcmp(rd + i, buf + s * 512, 512)) {
					seen[s] = true;
					found++;
				}
out:
	if (fd >= 0)
		close(fd);
	free(seen);
	free(rd);
	return found;
}

static int io_setup(unsigned int nr, aio_context_t *ctx)
{
	return syscall(__NR_io_setup, nr, ctx);
}

static int io_destroy(aio_context_t ctx)
{
	return syscall(__NR_io_destroy, ctx);
}

/* One AIO request, submitted and waited for: returns its result (bytes or -errno). */
static long long aio_rw(aio_context_t ctx, int fd, bool write, void *buf, size_t len, off_t off)
{
	struct iocb cb = {
		.aio_fildes = fd,
		.aio_lio_opcode = write ? IOCB_CMD_PWRITE : IOCB_CMD_PREAD,
		.aio_buf = (uintptr_t)buf,
		.aio_nbytes = len,
		.aio_offset = off,
	};
	struct iocb *cbs[1] = { &cb };
	struct io_event ev;

	if (syscall(__NR_io_submit, ctx, 1, cbs) != 1)
		return -errno;
	if (syscall(__NR_io_getevents, ctx, 1, 1, &ev, NULL) != 1)
		return -errno;
	return ev.res;
}

struct fs {
	const char *dev;
	char mnt[64];
	bool mounted;
};

/* Loads the module with @params, formats the device with block size @bs and mounts it. */
static int fs_setup(struct __test_metadata *_metadata, struct fs *fs, const char *params,
		    const char *bs)
{
	fs->dev = getenv("TINYFS_DEV");
	if (!fs->dev || !*fs->dev)
		return 1;
	ASSERT_EQ(0, tinyfs_load_module_params(params))
		TH_LOG("loading tinyfs.ko %s: %s", params, strerror(errno));
	if (access(STATS_DIR, F_OK))
		mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
	ASSERT_EQ(0, tinyfs_run_mkfs(fs->dev, bs));
	strcpy(fs->mnt, "/tmp/tinyfs-dio.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(fs->mnt));
	ASSERT_EQ(0, mount(fs->dev, fs->mnt, TINYFS_NAME, 0, NULL))
		TH_LOG("mount: %s", strerror(errno));
	fs->mounted = true;
	ASSERT_LE(0, stat_read(fs->dev, "direct_writes"))
		TH_LOG("no counters in " STATS_DIR " (debugfs)");
	return 0;
}

static void fs_teardown(struct fs *fs)
{
	if (fs->mounted)
		umount(fs->mnt);
	rmdir(fs->mnt);
	tinyfs_delete_module();
}

/* Unmounts, checks the image with fsck.tinyfs (it must be clean) and mounts again. */
static int remount(struct fs *fs)
{
	fs->mounted = false;
	if (umount(fs->mnt))
		return -1;
	if (tinyfs_run_fsck(fs->dev))
		return -2;
	if (mount(fs->dev, fs->mnt, TINYFS_NAME, 0, NULL))
		return -1;
	fs->mounted = true;
	return 0;
}

static void path_of(struct fs *fs, char *path, const char *name)
{
	snprintf(path, PATH_MAX, "%s/%s", fs->mnt, name);
}

/* --- O_DIRECT semantics, with the default module parameters --------------- */

FIXTURE(dio) {
	struct fs fs;
};

FIXTURE_VARIANT(dio) {
	const char *block_size;
};

FIXTURE_VARIANT_ADD(dio, bs1024) { .block_size = "1024" };
FIXTURE_VARIANT_ADD(dio, bs2048) { .block_size = "2048" };
FIXTURE_VARIANT_ADD(dio, bs4096) { .block_size = "4096" };

FIXTURE_SETUP(dio)
{
	if (fs_setup(_metadata, &self->fs, "", variant->block_size))
		SKIP(return, "set TINYFS_DEV to a scratch block device");
}

FIXTURE_TEARDOWN(dio)
{
	fs_teardown(&self->fs);
}

TEST_F(dio, misaligned_requests_are_refused)
{
	uint8_t *buf = alloc_aligned(8192);
	char path[PATH_MAX];
	int kmsg = kmsg_open_at_end();
	int fd;

	ASSERT_NE(NULL, buf);
	fill(buf, 1, 0, 8192);
	path_of(&self->fs, path, "f");
	fd = open(path, O_RDWR | O_CREAT | O_DIRECT, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ(4096, pwrite(fd, buf, 4096, 0));
	errno = 0;
	EXPECT_EQ(-1, pwrite(fd, buf, 4096, 100));	/* offset */
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, pwrite(fd, buf, 100, 0));		/* length */
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, pwrite(fd, buf + 1, 512, 0));	/* memory */
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, pread(fd, buf, 4096, 7));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_TRUE(kmsg_logged(kmsg, "is not aligned to the device's"));
	/* Nothing of the refused writes reached the file. */
	ASSERT_EQ(4096, pread(fd, buf + 4096, 4096, 0));
	EXPECT_EQ(0, mismatches(buf + 4096, 1, 0, 4096));
	close(fd);
	close(kmsg);
	free(buf);
	EXPECT_EQ(0, remount(&self->fs));
}

TEST_F(dio, holes_read_as_zeros_and_are_filled)
{
	uint8_t *buf = alloc_aligned(65536), *zero = calloc(1, 65536);
	char path[PATH_MAX];
	uint8_t one = 1;
	int fd;

	ASSERT_NE(NULL, buf);
	path_of(&self->fs, path, "sparse");
	fd = open(path, O_RDWR | O_CREAT | O_DIRECT, 0644);
	ASSERT_LE(0, fd);
	/* A 1 MiB file that is all hole but its last byte (written through the page cache). */
	ASSERT_EQ(0, fcntl(fd, F_SETFL, 0));
	ASSERT_EQ(1, pwrite(fd, &one, 1, (1 << 20) - 1));
	ASSERT_EQ(0, fcntl(fd, F_SETFL, O_DIRECT));
	memset(buf, 0xff, 65536);
	ASSERT_EQ(65536, pread(fd, buf, 65536, 0));
	EXPECT_EQ(0, memcmp(buf, zero, 65536));
	/* Fill a hole in the middle. */
	fill(buf, 2, 65536, 16384);
	ASSERT_EQ(16384, pwrite(fd, buf, 16384, 65536));
	EXPECT_EQ(1, stat_read(self->fs.dev, "direct_writes"));
	memset(buf, 0, 65536);
	ASSERT_EQ(65536, pread(fd, buf, 65536, 32768));
	EXPECT_EQ(0, memcmp(buf, zero, 32768));
	EXPECT_EQ(0, mismatches(buf + 32768, 2, 65536, 16384));
	EXPECT_EQ(0, memcmp(buf + 49152, zero, 16384));
	close(fd);
	ASSERT_EQ(0, remount(&self->fs));
	fd = open(path, O_RDONLY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(16384, pread(fd, buf, 16384, 65536));
	EXPECT_EQ(0, mismatches(buf, 2, 65536, 16384));
	close(fd);
	free(buf);
	free(zero);
	EXPECT_EQ(0, remount(&self->fs));
}

TEST_F(dio, writes_extend_the_file)
{
	uint8_t *buf = alloc_aligned(65536);
	char path[PATH_MAX];
	struct stat st;
	off_t off;
	int fd;

	ASSERT_NE(NULL, buf);
	path_of(&self->fs, path, "grow");
	fd = open(path, O_WRONLY | O_CREAT | O_DIRECT, 0644);
	ASSERT_LE(0, fd);
	for (off = 0; off < 3 * 65536; off += 65536) {
		fill(buf, 3, off, 65536);
		ASSERT_EQ(65536, write(fd, buf, 65536));
		ASSERT_EQ(0, fstat(fd, &st));
		EXPECT_EQ(off + 65536, st.st_size);
	}
	/* A write past the end leaves a hole. */
	fill(buf, 3, 4 * 65536, 512);
	ASSERT_EQ(512, pwrite(fd, buf, 512, 4 * 65536));
	ASSERT_EQ(0, fstat(fd, &st));
	EXPECT_EQ(4 * 65536 + 512, st.st_size);
	EXPECT_EQ(3 * 65536 + 512, stat_read(self->fs.dev, "direct_write_bytes"));
	EXPECT_EQ(0, stat_read(self->fs.dev, "buffered_fallbacks"));
	close(fd);
	ASSERT_EQ(0, remount(&self->fs));
	fd = open(path, O_RDONLY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, fstat(fd, &st));
	EXPECT_EQ(4 * 65536 + 512, st.st_size);
	for (off = 0; off < 3 * 65536; off += 65536) {
		ASSERT_EQ(65536, pread(fd, buf, 65536, off));
		EXPECT_EQ(0, mismatches(buf, 3, off, 65536));
	}
	ASSERT_EQ(512, pread(fd, buf, 65536, 4 * 65536));
	EXPECT_EQ(0, mismatches(buf, 3, 4 * 65536, 512));
	close(fd);
	free(buf);
	EXPECT_EQ(0, remount(&self->fs));
}

TEST_F(dio, direct_and_buffered_io_are_coherent)
{
	uint8_t *buf = alloc_aligned(65536);
	char path[PATH_MAX];
	int bfd, dfd;

	ASSERT_NE(NULL, buf);
	path_of(&self->fs, path, "mixed");
	bfd = open(path, O_RDWR | O_CREAT, 0644);
	ASSERT_LE(0, bfd);
	dfd = open(path, O_RDWR | O_DIRECT);
	ASSERT_LE(0, dfd);
	/* Dirty page cache is written back before a direct read. */
	fill(buf, 4, 0, 65536);
	ASSERT_EQ(65536, pwrite(bfd, buf, 65536, 0));
	memset(buf, 0, 65536);
	ASSERT_EQ(65536, pread(dfd, buf, 65536, 0));
	EXPECT_EQ(0, mismatches(buf, 4, 0, 65536));
	EXPECT_EQ(1, stat_read(self->fs.dev, "direct_reads"));
	/* Cached pages are dropped by a direct write: buffered reads see the new data. */
	ASSERT_EQ(65536, pread(bfd, buf, 65536, 0));
	fill(buf, 5, 16384, 16384);
	ASSERT_EQ(16384, pwrite(dfd, buf, 16384, 16384));
	memset(buf, 0, 65536);
	ASSERT_EQ(65536, pread(bfd, buf, 65536, 0));
	EXPECT_EQ(0, mismatches(buf, 4, 0, 16384));
	EXPECT_EQ(0, mismatches(buf + 16384, 5, 16384, 16384));
	EXPECT_EQ(0, mismatches(buf + 32768, 4, 32768, 32768));
	close(bfd);
	close(dfd);
	free(buf);
	EXPECT_EQ(0, remount(&self->fs));
}

TEST_F(dio, o_sync_write_is_on_the_disk)
{
	uint8_t *buf = alloc_aligned(8192);
	char path[PATH_MAX];
	int fd;

	ASSERT_NE(NULL, buf);
	fill(buf, time(NULL) ^ getpid(), 0, 8192);
	path_of(&self->fs, path, "sync");
	fd = open(path, O_WRONLY | O_CREAT | O_DIRECT | O_SYNC, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ(8192, pwrite(fd, buf, 8192, 0));
	EXPECT_EQ(16, sectors_on_disk(self->fs.dev, buf, 8192));
	close(fd);
	free(buf);
	EXPECT_EQ(0, remount(&self->fs));
}

TEST_F(dio, nowait_write_over_cached_pages_is_eagain)
{
	uint8_t *buf = alloc_aligned(4096), *back = alloc_aligned(4096);
	struct iovec iov;
	char path[PATH_MAX];
	int bfd, dfd;

	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, back);
	path_of(&self->fs, path, "nowait");
	bfd = open(path, O_RDWR | O_CREAT, 0644);
	ASSERT_LE(0, bfd);
	fill(buf, 6, 0, 4096);
	ASSERT_EQ(4096, pwrite(bfd, buf, 4096, 0));
	ASSERT_EQ(0, fsync(bfd));
	dfd = open(path, O_RDWR | O_DIRECT);
	ASSERT_LE(0, dfd);
	fill(buf, 7, 0, 4096);
	iov.iov_base = buf;
	iov.iov_len = 4096;
	errno = 0;
	EXPECT_EQ(-1, pwritev2(dfd, &iov, 1, 0, RWF_NOWAIT));
	EXPECT_EQ(EAGAIN, errno);
	ASSERT_EQ(4096, pread(bfd, back, 4096, 0));
	EXPECT_EQ(0, mismatches(back, 6, 0, 4096)) TH_LOG("the refused write changed the file");
	close(bfd);
	close(dfd);
	free(buf);
	free(back);
	EXPECT_EQ(0, remount(&self->fs));
}

TEST_F(dio, aio_writes_and_reads)
{
	uint8_t *buf = alloc_aligned(4 * 16384);
	aio_context_t ctx = 0;
	struct iocb cb[4], *cbs[4];
	struct io_event ev[4];
	char path[PATH_MAX];
	int fd, i, got = 0;

	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, io_setup(8, &ctx));
	path_of(&self->fs, path, "aio");
	fd = open(path, O_RDWR | O_CREAT | O_DIRECT, 0644);
	ASSERT_LE(0, fd);
	/* Four writes in one submission: extending ones, waited for by the kernel. */
	for (i = 0; i < 4; i++) {
		fill(buf + i * 16384, 8, i * 16384, 16384);
		cb[i] = (struct iocb){
			.aio_fildes = fd,
			.aio_lio_opcode = IOCB_CMD_PWRITE,
			.aio_buf = (uintptr_t)(buf + i * 16384),
			.aio_nbytes = 16384,
			.aio_offset = i * 16384,
		};
		cbs[i] = &cb[i];
	}
	ASSERT_EQ(4, syscall(__NR_io_submit, ctx, 4, cbs));
	while (got < 4) {
		int n = syscall(__NR_io_getevents, ctx, 1, 4 - got, ev, NULL);

		ASSERT_LT(0, n);
		for (i = 0; i < n; i++)
			EXPECT_EQ(16384, ev[i].res);
		got += n;
	}
	/* An overwrite inside the file: a really asynchronous one. */
	fill(buf, 9, 16384, 16384);
	EXPECT_EQ(16384, aio_rw(ctx, fd, true, buf, 16384, 16384));
	memset(buf, 0, 4 * 16384);
	EXPECT_EQ(4 * 16384, aio_rw(ctx, fd, false, buf, 4 * 16384, 0));
	EXPECT_EQ(0, mismatches(buf, 8, 0, 16384));
	EXPECT_EQ(0, mismatches(buf + 16384, 9, 16384, 16384));
	EXPECT_EQ(0, mismatches(buf + 32768, 8, 32768, 32768));
	EXPECT_EQ(5, stat_read(self->fs.dev, "direct_writes"));
	close(fd);
	io_destroy(ctx);
	free(buf);
	EXPECT_EQ(0, remount(&self->fs));
}

TEST_F_TIMEOUT(dio, full_disk_is_enospc, 300)
{
	uint8_t *buf = alloc_aligned(1 << 20);
	char path[PATH_MAX];
	ssize_t w = 0;
	off_t off = 0;
	int fd;

	ASSERT_NE(NULL, buf);
	memset(buf, 0x77, 1 << 20);
	path_of(&self->fs, path, "big");
	fd = open(path, O_WRONLY | O_CREAT | O_DIRECT, 0644);
	ASSERT_LE(0, fd);
	while (off < (1ll << 30) && (w = pwrite(fd, buf, 1 << 20, off)) > 0)
		off += w;
	EXPECT_EQ(-1, w);
	EXPECT_EQ(ENOSPC, errno) TH_LOG("after %lld bytes: %s", (long long)off, strerror(errno));
	EXPECT_LT(1 << 20, off);
	close(fd);
	ASSERT_EQ(0, unlink(path));
	free(buf);
	EXPECT_EQ(0, remount(&self->fs));
}

/* --- The 2.6.27-rc1 race, made deterministic ------------------------------ */

#define HOLD_MS 1000

struct flusher {
	int fd;
	int ret;
};

static void *flush_range(void *arg)
{
	struct flusher *f = arg;

	f->ret = sync_file_range(f->fd, 0, SLOT, SYNC_FILE_RANGE_WRITE);
	return NULL;
}

/*
 * Dirties the first page of a file, starts its writeback in another thread
 * (which then holds the buffers for HOLD_MS), and once the hold has begun
 * makes an O_DIRECT write of @buf over it. Returns the write's result, with
 * errno.
 */
static ssize_t direct_write_over_held_folio(struct __test_metadata *_metadata, struct fs *fs,
					    uint8_t *buf)
{
	char path[PATH_MAX];
	struct flusher f;
	pthread_t t;
	long long holds;
	ssize_t ret;
	int bfd, dfd, i, err;

	path_of(fs, path, "held");
	bfd = open(path, O_RDWR | O_CREAT, 0644);
	dfd = open(path, O_RDWR | O_DIRECT);
	if (bfd < 0 || dfd < 0)
		return -1;
	fill(buf, 10, 0, SLOT);
	if (pwrite(bfd, buf, SLOT, 0) != SLOT || fsync(bfd))
		return -1;
	fill(buf, 11, 0, SLOT);
	if (pwrite(bfd, buf, SLOT, 0) != SLOT)
		return -1;
	holds = stat_read(fs->dev, "writeback_holds");
	f.fd = bfd;
	if (pthread_create(&t, NULL, flush_range, &f))
		return -1;
	for (i = 0; i < 10000 && stat_read(fs->dev, "writeback_holds") == holds; i++)
		usleep(1000);
	EXPECT_LT(holds, stat_read(fs->dev, "writeback_holds")) TH_LOG("writeback did not start");
	fill(buf, time(NULL) ^ getpid(), 0, SLOT);
	ret = pwrite(dfd, buf, SLOT, 0);
	err = errno;
	pthread_join(t, NULL);
	EXPECT_EQ(0, f.ret);
	close(bfd);
	close(dfd);
	errno = err;
	return ret;
}

FIXTURE(held) {
	struct fs fs;
};

FIXTURE_VARIANT(held) {
	const char *block_size;
};

FIXTURE_VARIANT_ADD(held, bs1024) { .block_size = "1024" };
FIXTURE_VARIANT_ADD(held, bs4096) { .block_size = "4096" };

FIXTURE_SETUP(held)
{
	if (fs_setup(_metadata, &self->fs, "debug_writeback_hold_ms=1000", variant->block_size))
		SKIP(return, "set TINYFS_DEV to a scratch block device");
}

FIXTURE_TEARDOWN(held)
{
	fs_teardown(&self->fs);
}

TEST_F_TIMEOUT(held, direct_write_falls_back_and_is_on_disk, 120)
{
	uint8_t *buf = alloc_aligned(SLOT), *back = alloc_aligned(SLOT);
	long long fallbacks = stat_read(self->fs.dev, "buffered_fallbacks");
	char path[PATH_MAX];
	int fd;

	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, back);
	ASSERT_EQ(SLOT, direct_write_over_held_folio(_metadata, &self->fs, buf))
		TH_LOG("O_DIRECT write over a held folio: %s", strerror(errno));
	EXPECT_EQ(fallbacks + 1, stat_read(self->fs.dev, "buffered_fallbacks"));
	EXPECT_EQ(SLOT / 512, sectors_on_disk(self->fs.dev, buf, SLOT))
		TH_LOG("the data of the fallen-back write is not on the disk");
	path_of(&self->fs, path, "held");
	fd = open(path, O_RDONLY);
	ASSERT_LE(0, fd);
	ASSERT_EQ(SLOT, pread(fd, back, SLOT, 0));
	EXPECT_EQ(0, memcmp(buf, back, SLOT));
	close(fd);
	free(buf);
	free(back);
	EXPECT_EQ(0, remount(&self->fs));
}

FIXTURE(no_fallback) {
	struct fs fs;
};

FIXTURE_SETUP(no_fallback)
{
	if (fs_setup(_metadata, &self->fs, "debug_writeback_hold_ms=1000 dio_fallback=0", "4096"))
		SKIP(return, "set TINYFS_DEV to a scratch block device");
}

FIXTURE_TEARDOWN(no_fallback)
{
	fs_teardown(&self->fs);
}

/* The negative control: without the fallback, the race is an EIO, as in 2.6.27-rc1. */
TEST_F_TIMEOUT(no_fallback, direct_write_over_held_folio_is_eio, 120)
{
	uint8_t *buf = alloc_aligned(SLOT);
	int kmsg = kmsg_open_at_end();

	ASSERT_NE(NULL, buf);
	EXPECT_EQ(-1, direct_write_over_held_folio(_metadata, &self->fs, buf));
	EXPECT_EQ(EIO, errno);
	EXPECT_EQ(0, stat_read(self->fs.dev, "buffered_fallbacks"));
	EXPECT_TRUE(kmsg_logged(kmsg, "the page cache is busy and dio_fallback=0: EIO"));
	close(kmsg);
	free(buf);
	EXPECT_EQ(0, remount(&self->fs));
}

/* --- The race --------------------------------------------------------------- */

#define RACE_SLOTS 128
#define RACE_SECONDS 8	/* at least; at most 60 s more, until a fallback */

struct race {
	int bfd, dfd;
	pthread_mutex_t lock[RACE_SLOTS];
	uint64_t version[RACE_SLOTS];	/* seed of each slot's last write (0: hole) */
	uint64_t next_seed;
	bool stop;		/* read and written with __atomic builtins */
	/* Failures, by kind. */
	int write_errors, eio, sync_errors, read_errors, read_mismatches;
	pthread_mutex_t stats;
};

enum racer { BUFFERED, BUFFERED_SYNC, DIRECT, DIRECT_AIO, DIRECT_READ, AIO_READ, RACERS };

struct racer_arg {
	struct race *r;
	enum racer kind;
	unsigned int rnd;
};

static void note(struct race *r, int *counter, long long ret)
{
	pthread_mutex_lock(&r->stats);
	(*counter)++;
	if (ret == -EIO || (ret == -1 && errno == EIO))
		r->eio++;
	pthread_mutex_unlock(&r->stats);
}

static void *racer(void *arg)
{
	struct racer_arg *a = arg;
	struct race *r = a->r;
	uint8_t *buf = alloc_aligned(SLOT);
	aio_context_t ctx = 0;	/* each thread reaps its own events */
	unsigned int slot;
	uint64_t seed;
	long long ret;
	off_t off;

	if ((a->kind == DIRECT_AIO || a->kind == AIO_READ) && io_setup(4, &ctx)) {
		note(r, &r->write_errors, -1);
		return NULL;
	}
	while (buf && !__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
		slot = rand_r(&a->rnd) % RACE_SLOTS;
		off = (off_t)slot * SLOT;
		pthread_mutex_lock(&r->lock[slot]);
		seed = __atomic_add_fetch(&r->next_seed, 1, __ATOMIC_RELAXED);
		switch (a->kind) {
		case BUFFERED:
		case BUFFERED_SYNC:
			fill(buf, seed, off, SLOT);
			ret = pwrite(r->bfd, buf, SLOT, off);
			if (ret != SLOT)
				note(r, &r->write_errors, ret);
			else
				r->version[slot] = seed;
			break;
		case DIRECT:
			fill(buf, seed, off, SLOT);
			ret = pwrite(r->dfd, buf, SLOT, off);
			if (ret != SLOT)
				note(r, &r->write_errors, ret);
			else
				r->version[slot] = seed;
			break;
		case DIRECT_AIO:
			fill(buf, seed, off, SLOT);
			ret = aio_rw(ctx, r->dfd, true, buf, SLOT, off);
			if (ret != SLOT)
				note(r, &r->write_errors, ret);
			else
				r->version[slot] = seed;
			break;
		case DIRECT_READ:
		case AIO_READ:
			memset(buf, 0, SLOT);
			if (a->kind == AIO_READ)
				ret = aio_rw(ctx, r->dfd, false, buf, SLOT, off);
			else
				ret = pread(r->dfd, buf, SLOT, off);
			/* A slot past the end of the file reads short. */
			if (ret < 0)
				note(r, &r->read_errors, ret);
			else if (r->version[slot] &&
				 (ret != SLOT || mismatches(buf, r->version[slot], off, SLOT)))
				note(r, &r->read_mismatches, 0);
			break;
		default:
			break;
		}
		pthread_mutex_unlock(&r->lock[slot]);
		if (a->kind == BUFFERED_SYNC && rand_r(&a->rnd) % 4 == 0) {
			/* Background-like writeback of a random range, or a full fsync. */
			off = (off_t)(rand_r(&a->rnd) % RACE_SLOTS) * SLOT;
			if (rand_r(&a->rnd) % 8)
				ret = sync_file_range(r->bfd, off, 8 * SLOT, SYNC_FILE_RANGE_WRITE);
			else
				ret = fsync(r->bfd);
			if (ret)
				note(r, &r->sync_errors, ret);
		}
	}
	if (ctx)
		io_destroy(ctx);
	free(buf);
	return NULL;
}

/* Bytes of the file that differ from the model (holes read as zeros). */
static long long check_model(struct race *r, int fd)
{
	uint8_t *buf = alloc_aligned(SLOT);
	long long bad = 0;
	unsigned int s, i;
	ssize_t n;

	for (s = 0; buf && s < RACE_SLOTS; s++) {
		memset(buf, 0xee, SLOT);
		n = pread(fd, buf, SLOT, (off_t)s * SLOT);
		if (n < 0)
			return -1;
		if (r->version[s]) {
			bad += n != SLOT;
			bad += mismatches(buf, r->version[s], (off_t)s * SLOT, n);
		} else {
			for (i = 0; i < n; i++)
				bad += buf[i] != 0;
		}
	}
	free(buf);
	return buf ? bad : -1;
}

FIXTURE(race) {
	struct fs fs;
};

FIXTURE_VARIANT(race) {
	const char *block_size;
};

FIXTURE_VARIANT_ADD(race, bs1024) { .block_size = "1024" };
FIXTURE_VARIANT_ADD(race, bs2048) { .block_size = "2048" };
FIXTURE_VARIANT_ADD(race, bs4096) { .block_size = "4096" };

FIXTURE_SETUP(race)
{
	/* A short hold widens ext3's window enough to be met in a few seconds. */
	if (fs_setup(_metadata, &self->fs, "debug_writeback_hold_ms=2", variant->block_size))
		SKIP(return, "set TINYFS_DEV to a scratch block device");
}

FIXTURE_TEARDOWN(race)
{
	fs_teardown(&self->fs);
}

TEST_F_TIMEOUT(race, buffered_writeback_and_direct_io, 300)
{
	static const enum racer kinds[] = {
		BUFFERED, BUFFERED_SYNC, DIRECT, DIRECT, DIRECT_AIO, DIRECT_READ, AIO_READ,
	};
	struct racer_arg args[ARRAY_SIZE(kinds)];
	pthread_t threads[ARRAY_SIZE(kinds)];
	long long fallbacks = stat_read(self->fs.dev, "buffered_fallbacks");
	struct race *r = calloc(1, sizeof(*r));
	char path[PATH_MAX];
	unsigned int i;
	int fd;

	ASSERT_NE(NULL, r);
	path_of(&self->fs, path, "race");
	r->bfd = open(path, O_RDWR | O_CREAT, 0644);
	ASSERT_LE(0, r->bfd);
	r->dfd = open(path, O_RDWR | O_DIRECT);
	ASSERT_LE(0, r->dfd);
	for (i = 0; i < RACE_SLOTS; i++)
		pthread_mutex_init(&r->lock[i], NULL);
	pthread_mutex_init(&r->stats, NULL);
	for (i = 0; i < ARRAY_SIZE(kinds); i++) {
		args[i] = (struct racer_arg){ .r = r, .kind = kinds[i], .rnd = 1 + i * 7919 };
		ASSERT_EQ(0, pthread_create(&threads[i], NULL, racer, &args[i]));
	}
	sleep(RACE_SECONDS);
	/* Until the race was met (a fallback, several a run at 2 ms), within a bound. */
	for (i = 0; i < 60 && stat_read(self->fs.dev, "buffered_fallbacks") == fallbacks; i++)
		sleep(1);
	__atomic_store_n(&r->stop, true, __ATOMIC_RELAXED);
	for (i = 0; i < ARRAY_SIZE(kinds); i++)
		pthread_join(threads[i], NULL);
	EXPECT_EQ(0, r->eio);
	EXPECT_EQ(0, r->write_errors);
	EXPECT_EQ(0, r->sync_errors);
	EXPECT_EQ(0, r->read_errors);
	EXPECT_EQ(0, r->read_mismatches);
	EXPECT_EQ(0, fsync(r->bfd));
	TH_LOG("%llu writes; %lld direct writes, %lld fallbacks, %lld direct reads",
	       (unsigned long long)r->next_seed, stat_read(self->fs.dev, "direct_writes"),
	       stat_read(self->fs.dev, "buffered_fallbacks") - fallbacks,
	       stat_read(self->fs.dev, "direct_reads"));
	EXPECT_LT(fallbacks, stat_read(self->fs.dev, "buffered_fallbacks"))
		TH_LOG("the race was not met: no O_DIRECT write fell back");
	EXPECT_EQ(0, check_model(r, r->bfd));
	EXPECT_EQ(0, check_model(r, r->dfd));
	close(r->bfd);
	close(r->dfd);
	ASSERT_EQ(0, remount(&self->fs));
	fd = open(path, O_RDONLY);
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, check_model(r, fd)) TH_LOG("after a remount");
	close(fd);
	free(r);
	EXPECT_EQ(0, remount(&self->fs));
}

TEST_HARNESS_MAIN
