// SPDX-License-Identifier: GPL-2.0
/*
 * A minimal KVM TDP FD importer in C: proves the C interface of
 * include/linux/kvm_tdp_fd.h.
 *
 * /dev/kvm_tdp_importer_c takes the ioctls of samples/include/
 * kvm_tdp_importer.h.  Each attachment is one importer with ops of its own,
 * so one open file can attach many importers to one TDP FD.  It counts
 * invalidations and remembers the last range; it keeps no translations.
 *
 * Locking: @lock (a mutex) guards the attachment slots of an open file.
 * invalidate() takes no lock: it only updates atomics of its attachment,
 * which stays allocated until unregister_importer() has returned.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/kvm_tdp_fd.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include <linux/overflow.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "kvm_tdp_importer.h"

#define KTI_C_MAX_ATTACH	64

struct kti_c_attachment {
	struct kvm_tdp_fd *tdp;
	struct kvm_tdp_importer_ops ops;
	atomic64_t invalidations;
	atomic64_t whole;
	atomic64_t last_start;
	atomic64_t last_size;
	atomic64_t faults;
	spinlock_t span_lock;	/* guards span_* */
	u64 span_start;
	u64 span_end;
};

struct kti_c_file {
	struct mutex lock;	/* guards att[] */
	struct kti_c_attachment *att[KTI_C_MAX_ATTACH];
};

static void kti_c_invalidate(void *data, unsigned long start, unsigned long size)
{
	struct kti_c_attachment *a = data;

	atomic64_inc(&a->invalidations);
	if (start == 0 && size == ~0UL)
		atomic64_inc(&a->whole);
	atomic64_set(&a->last_start, start);
	atomic64_set(&a->last_size, size);

	spin_lock(&a->span_lock);
	if (a->span_start == a->span_end) {
		a->span_start = start;
		a->span_end = size_add(start, size);
	} else {
		a->span_start = min_t(u64, a->span_start, start);
		a->span_end = max_t(u64, a->span_end, size_add(start, size));
	}
	spin_unlock(&a->span_lock);
}

/* Never registered: KTI_C_UNREGISTER_UNKNOWN passes it to unregister. */
static struct kvm_tdp_importer_ops kti_c_unknown_ops = {
	.invalidate = kti_c_invalidate,
};

static int kti_c_open(struct inode *inode, struct file *file)
{
	struct kti_c_file *f = kzalloc(sizeof(*f), GFP_KERNEL);

	if (!f)
		return -ENOMEM;
	mutex_init(&f->lock);
	file->private_data = f;
	return 0;
}

static void kti_c_detach(struct kti_c_attachment *a)
{
	a->tdp->ops->unregister_importer(a->tdp, &a->ops);
	kvm_tdp_fd_put(a->tdp);
	kfree(a);
}

static int kti_c_release(struct inode *inode, struct file *file)
{
	struct kti_c_file *f = file->private_data;
	int i;

	for (i = 0; i < KTI_C_MAX_ATTACH; i++)
		if (f->att[i])
			kti_c_detach(f->att[i]);
	mutex_destroy(&f->lock);
	kfree(f);
	return 0;
}

static long kti_c_attach(struct kti_c_file *f, void __user *uarg)
{
	struct kti_c_attachment *a;
	struct kti_attach arg;
	int i, r;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (arg.flags & ~KTI_ATTACH_NO_FAULT)
		return -EINVAL;

	for (i = 0; i < KTI_C_MAX_ATTACH; i++)
		if (!f->att[i])
			break;
	if (i == KTI_C_MAX_ATTACH)
		return -ENOSPC;

	a = kzalloc(sizeof(*a), GFP_KERNEL);
	if (!a)
		return -ENOMEM;
	a->ops.invalidate = kti_c_invalidate;
	spin_lock_init(&a->span_lock);
	a->tdp = kvm_tdp_fd_get(arg.tdp_fd);
	if (IS_ERR(a->tdp)) {
		r = PTR_ERR(a->tdp);
		kfree(a);
		return r;
	}
	r = a->tdp->ops->register_importer(a->tdp, &a->ops, a);
	if (r) {
		kvm_tdp_fd_put(a->tdp);
		kfree(a);
		return r;
	}
	f->att[i] = a;
	return i;
}

static struct kti_c_attachment *kti_c_lookup(struct kti_c_file *f, u32 id)
{
	if (id >= KTI_C_MAX_ATTACH)
		return NULL;
	return f->att[id];
}

static long kti_c_fault(struct kti_c_attachment *a, const struct kti_fault *arg)
{
	struct kvm_tdp_fault_type type = {
		.read = !!(arg->access & KTI_ACCESS_READ),
		.write = !!(arg->access & KTI_ACCESS_WRITE),
		.exec = !!(arg->access & KTI_ACCESS_EXEC),
	};

	if (arg->access & ~(KTI_ACCESS_READ | KTI_ACCESS_WRITE | KTI_ACCESS_EXEC))
		return -EINVAL;
	atomic64_inc(&a->faults);
	return a->tdp->ops->fault(a->tdp, current->mm, arg->gfn, type);
}

static long kti_c_info(struct kti_c_attachment *a, struct kti_info *arg)
{
	const struct kvm_exported_tdp_meta *meta;

	meta = a->tdp->ops->get_metadata(a->tdp);
	if (IS_ERR(meta))
		return PTR_ERR(meta);
	arg->type = meta->type;
	arg->levels = meta->levels;
	arg->max_huge_page_level = meta->max_huge_page_level;
	return 0;
}

/* KTI_C_META: the format's fields, whichever of the two layouts it is. */
static long kti_c_meta(struct kti_c_attachment *a, struct kti_c_meta *arg)
{
	const struct kvm_exported_tdp_meta_npt *npt;
	const struct kvm_exported_tdp_meta_ept *ept;
	const struct kvm_exported_tdp_meta *meta;

	meta = a->tdp->ops->get_metadata(a->tdp);
	if (IS_ERR(meta))
		return PTR_ERR(meta);
	arg->type = meta->type;
	arg->levels = meta->levels;
	arg->max_huge_page_level = meta->max_huge_page_level;
	arg->present_mask = meta->present_mask;
	arg->present_value = meta->present_value;
	arg->mmio_mask = meta->mmio_mask;
	arg->mmio_value = meta->mmio_value;
	switch (meta->type) {
	case KVM_TDP_FD_TYPE_NPT:
		npt = container_of(meta, struct kvm_exported_tdp_meta_npt, hdr);
		arg->pfn_mask = npt->pfn_mask;
		arg->fmt_mask = npt->nx_mask;
		arg->accessed_mask = npt->accessed_mask;
		arg->dirty_mask = npt->dirty_mask;
		arg->kvm_sw_mask = npt->kvm_sw_mask;
		memcpy(arg->rsvd_bits_mask, npt->rsvd_bits_mask,
		       sizeof(arg->rsvd_bits_mask));
		return 0;
	case KVM_TDP_FD_TYPE_EPT:
		ept = container_of(meta, struct kvm_exported_tdp_meta_ept, hdr);
		arg->pfn_mask = ept->pfn_mask;
		arg->fmt_mask = ept->exec_mask;
		arg->accessed_mask = ept->accessed_mask;
		arg->dirty_mask = ept->dirty_mask;
		arg->kvm_sw_mask = ept->kvm_sw_mask;
		memcpy(arg->rsvd_bits_mask, ept->rsvd_bits_mask,
		       sizeof(arg->rsvd_bits_mask));
		return 0;
	default:
		return -EPROTO;
	}
}

static void kti_c_stats(struct kti_c_attachment *a, struct kti_stats *arg)
{
	u32 id = arg->id;

	memset(arg, 0, sizeof(*arg));
	arg->id = id;
	arg->invalidations = atomic64_read(&a->invalidations);
	arg->whole = atomic64_read(&a->whole);
	arg->last_start = atomic64_read(&a->last_start);
	arg->last_size = atomic64_read(&a->last_size);
	arg->faults = atomic64_read(&a->faults);

	spin_lock(&a->span_lock);
	arg->span_start = a->span_start;
	arg->span_end = a->span_end;
	a->span_start = 0;
	a->span_end = 0;
	spin_unlock(&a->span_lock);
}

/* KTI_STATS for a struct kti_stats of any size this module knows. */
static bool kti_c_is_stats(unsigned int cmd)
{
	return _IOC_DIR(cmd) == _IOC_DIR(KTI_STATS) &&
	       _IOC_TYPE(cmd) == KTI_MAGIC &&
	       _IOC_NR(cmd) == _IOC_NR(KTI_STATS) &&
	       _IOC_SIZE(cmd) >= KTI_STATS_SIZE_V1 &&
	       _IOC_SIZE(cmd) <= sizeof(struct kti_stats) &&
	       _IOC_SIZE(cmd) % 8 == 0;
}

static long kti_c_get(void __user *uarg)
{
	struct kvm_tdp_fd *tdp;
	s32 fd;

	if (get_user(fd, (s32 __user *)uarg))
		return -EFAULT;
	tdp = kvm_tdp_fd_get(fd);
	if (IS_ERR(tdp))
		return PTR_ERR(tdp);
	if (!tdp->file || !tdp->ops)
		pr_err("kvm_tdp_fd_get(%d) returned an incomplete object\n", fd);
	kvm_tdp_fd_put(tdp);
	return 0;
}

static long kti_c_ioctl(struct file *file, unsigned int cmd, unsigned long uarg)
{
	struct kti_c_file *f = file->private_data;
	void __user *argp = (void __user *)uarg;
	struct kti_c_attachment *a;
	union {
		struct kti_fault fault;
		struct kti_info info;
		struct kti_stats stats;
		struct kti_c_meta meta;
		u32 id;
	} arg;
	size_t size = _IOC_SIZE(cmd);
	long r;

	/* The caller's size is kept: only that much is copied back. */
	if (kti_c_is_stats(cmd))
		cmd = KTI_STATS;
	if (cmd == KTI_C_GET)
		return kti_c_get(argp);

	guard(mutex)(&f->lock);
	if (cmd == KTI_ATTACH)
		return kti_c_attach(f, argp);

	if (size > sizeof(arg) || size < sizeof(u32))
		return -ENOTTY;
	if (copy_from_user(&arg, argp, size))
		return -EFAULT;
	a = kti_c_lookup(f, arg.id);
	if (!a)
		return -ENOENT;

	switch (cmd) {
	case KTI_DETACH:
		f->att[arg.id] = NULL;
		kti_c_detach(a);
		return 0;
	case KTI_FAULT:
		return kti_c_fault(a, &arg.fault);
	case KTI_INFO:
		r = kti_c_info(a, &arg.info);
		break;
	case KTI_STATS:
		kti_c_stats(a, &arg.stats);
		r = 0;
		break;
	case KTI_C_META:
		r = kti_c_meta(a, &arg.meta);
		break;
	case KTI_C_REGISTER_AGAIN:
		return a->tdp->ops->register_importer(a->tdp, &a->ops, a);
	case KTI_C_UNREGISTER_UNKNOWN:
		a->tdp->ops->unregister_importer(a->tdp, &kti_c_unknown_ops);
		return 0;
	default:
		return -ENOTTY;
	}
	if (!r && copy_to_user(argp, &arg, size))
		r = -EFAULT;
	return r;
}

static const struct file_operations kti_c_fops = {
	.owner = THIS_MODULE,
	.open = kti_c_open,
	.release = kti_c_release,
	.unlocked_ioctl = kti_c_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
};

static struct miscdevice kti_c_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "kvm_tdp_importer_c",
	.fops = &kti_c_fops,
};

module_misc_device(kti_c_misc);

MODULE_DESCRIPTION("Minimal KVM TDP FD importer in C (sample)");
MODULE_AUTHOR("kvm-tdp-fd developers");
MODULE_LICENSE("GPL");
