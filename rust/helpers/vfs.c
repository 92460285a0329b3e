// SPDX-License-Identifier: GPL-2.0

/*
 * Helpers for the VFS abstractions in rust/kernel/fs/: the static inline
 * functions of <linux/fs.h>, <linux/buffer_head.h>, <linux/pagemap.h> and
 * <linux/blkdev.h> that Rust cannot call directly.
 */

#include <linux/blkdev.h>
#include <linux/buffer_head.h>
#include <linux/dcache.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/pagemap.h>

__rust_helper struct buffer_head *rust_helper_sb_bread(struct super_block *sb,
						       sector_t block)
{
	return sb_bread(sb, block);
}

__rust_helper void rust_helper_get_bh(struct buffer_head *bh)
{
	get_bh(bh);
}

__rust_helper void rust_helper_put_bh(struct buffer_head *bh)
{
	put_bh(bh);
}

__rust_helper void rust_helper_brelse(struct buffer_head *bh)
{
	brelse(bh);
}

__rust_helper loff_t rust_helper_bdev_nr_bytes(struct block_device *bdev)
{
	return bdev_nr_bytes(bdev);
}

__rust_helper bool rust_helper_inode_is_new(struct inode *inode)
{
	return inode_state_read_once(inode) & I_NEW;
}

__rust_helper loff_t rust_helper_i_size_read(const struct inode *inode)
{
	return i_size_read(inode);
}

__rust_helper void rust_helper_i_size_write(struct inode *inode, loff_t i_size)
{
	i_size_write(inode, i_size);
}

__rust_helper void rust_helper_i_uid_write(struct inode *inode, uid_t uid)
{
	i_uid_write(inode, uid);
}

__rust_helper void rust_helper_i_gid_write(struct inode *inode, gid_t gid)
{
	i_gid_write(inode, gid);
}

__rust_helper uid_t rust_helper_i_uid_read(const struct inode *inode)
{
	return i_uid_read(inode);
}

__rust_helper gid_t rust_helper_i_gid_read(const struct inode *inode)
{
	return i_gid_read(inode);
}

__rust_helper void rust_helper_inode_set_atime(struct inode *inode, time64_t sec,
					       long nsec)
{
	inode_set_atime(inode, sec, nsec);
}

__rust_helper void rust_helper_inode_set_mtime(struct inode *inode, time64_t sec,
					       long nsec)
{
	inode_set_mtime(inode, sec, nsec);
}

__rust_helper void rust_helper_inode_set_ctime(struct inode *inode, time64_t sec,
					       long nsec)
{
	inode_set_ctime(inode, sec, nsec);
}

__rust_helper bool rust_helper_dir_emit(struct dir_context *ctx, const char *name,
					int namelen, u64 ino, unsigned int type)
{
	return dir_emit(ctx, name, namelen, ino, type);
}

__rust_helper struct dentry *rust_helper_dget(struct dentry *dentry)
{
	return dget(dentry);
}

__rust_helper void rust_helper_map_bh(struct buffer_head *bh, struct super_block *sb,
				      sector_t block)
{
	map_bh(bh, sb, block);
}

__rust_helper void rust_helper_set_buffer_new(struct buffer_head *bh)
{
	set_buffer_new(bh);
}

__rust_helper loff_t rust_helper_folio_pos(const struct folio *folio)
{
	return folio_pos(folio);
}

__rust_helper size_t rust_helper_folio_size(const struct folio *folio)
{
	return folio_size(folio);
}

__rust_helper struct timespec64 rust_helper_inode_get_atime(const struct inode *inode)
{
	return inode_get_atime(inode);
}

__rust_helper struct timespec64 rust_helper_inode_get_mtime(const struct inode *inode)
{
	return inode_get_mtime(inode);
}

__rust_helper struct timespec64 rust_helper_inode_get_ctime(const struct inode *inode)
{
	return inode_get_ctime(inode);
}

__rust_helper struct timespec64 rust_helper_inode_set_mtime_to_ts(struct inode *inode,
								  struct timespec64 ts)
{
	return inode_set_mtime_to_ts(inode, ts);
}

__rust_helper void rust_helper_mark_inode_dirty(struct inode *inode)
{
	mark_inode_dirty(inode);
}

__rust_helper struct buffer_head *rust_helper_sb_getblk(struct super_block *sb,
							sector_t block)
{
	return sb_getblk(sb, block);
}

__rust_helper void rust_helper_lock_buffer(struct buffer_head *bh)
{
	lock_buffer(bh);
}

__rust_helper void rust_helper_set_buffer_uptodate(struct buffer_head *bh)
{
	set_buffer_uptodate(bh);
}

__rust_helper struct buffer_head *rust_helper_folio_buffers(struct folio *folio)
{
	return folio_buffers(folio);
}

__rust_helper void rust_helper_folio_put(struct folio *folio)
{
	folio_put(folio);
}

__rust_helper void rust_helper_folio_zero_segment(struct folio *folio, size_t start, size_t xend)
{
	folio_zero_segment(folio, start, xend);
}

__rust_helper void rust_helper_inode_lock(struct inode *inode)
{
	inode_lock(inode);
}

__rust_helper int rust_helper_inode_trylock(struct inode *inode)
{
	return inode_trylock(inode);
}

__rust_helper void rust_helper_inode_unlock(struct inode *inode)
{
	inode_unlock(inode);
}

__rust_helper bool rust_helper_is_sync_kiocb(struct kiocb *kiocb)
{
	return is_sync_kiocb(kiocb);
}

__rust_helper bool rust_helper_iocb_is_dsync(const struct kiocb *iocb)
{
	return iocb_is_dsync(iocb);
}

__rust_helper bool rust_helper_iocb_is_nowait(const struct kiocb *iocb)
{
	return iocb->ki_flags & IOCB_NOWAIT;
}

__rust_helper ssize_t rust_helper_generic_write_sync(struct kiocb *iocb,
						     ssize_t count)
{
	return generic_write_sync(iocb, count);
}

__rust_helper unsigned int rust_helper_bdev_logical_block_size(struct block_device *bdev)
{
	return bdev_logical_block_size(bdev);
}

__rust_helper int rust_helper_iov_iter_rw(const struct iov_iter *i)
{
	return iov_iter_rw(i);
}

__rust_helper void rust_helper_file_set_fmode_nowait(struct file *file)
{
	file->f_mode |= FMODE_NOWAIT;
}
