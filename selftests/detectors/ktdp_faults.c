// SPDX-License-Identifier: GPL-2.0
/*
 * A module that commits one deliberate kernel bug per load, so that
 * `make check-detectors` can prove each detector the test kernel claims
 * (KASAN, KFENCE, UBSAN, DEBUG_LIST, DEBUG_VM, lockdep, kmemleak, hung task,
 * soft lockup, RCU stall, atomic sleep) is compiled in, fires, and is caught
 * by scripts/check.sh's log scan.  Never loaded by `make check`.
 *
 *   insmod ktdp_faults.ko fault=NAME
 *
 * The load fails with -EAGAIN once the bug has been committed (nothing stays
 * loaded; hung_task alone stays, for its thread), or with -EINVAL for an
 * unknown NAME.
 */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/kfence.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/mmdebug.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/spinlock.h>

static char *fault = "";
module_param(fault, charp, 0444);
MODULE_PARM_DESC(fault, "the bug to commit");

/* Out of the compiler's sight, so that no bug below is folded away. */
static int index_or_shift = 4;
module_param(index_or_shift, int, 0444);

static noinline int kasan_uaf(void)
{
	volatile char *p = kmalloc(64, GFP_KERNEL);

	if (!p)
		return -ENOMEM;
	kfree((void *)p);
	return p[8];
}

static noinline int kfence_uaf(void)
{
	int i;

	/* KFENCE hands out one sampled object every 100 ms or so. */
	for (i = 0; i < 20000; i++) {
		volatile char *p = kmalloc(32, GFP_KERNEL);

		if (!p)
			return -ENOMEM;
		if (is_kfence_address((void *)p)) {
			kfree((void *)p);
			return p[0];
		}
		kfree((void *)p);
		usleep_range(500, 1000);
	}
	pr_err("ktdp_faults: no KFENCE object in 20000 allocations\n");
	return -ENODEV;
}

static noinline int ubsan_bounds(void)
{
	volatile int a[4] = { 1, 2, 3, 4 };

	return a[index_or_shift];
}

static noinline int ubsan_shift(void)
{
	volatile int one = 1;

	return one << (index_or_shift * 10);
}

static noinline int list_double_del(void)
{
	LIST_HEAD(head);
	struct list_head e;

	list_add(&e, &head);
	list_del(&e);
	list_del(&e);
	return 0;
}

static noinline int vm_page_check(void)
{
	struct page *page = alloc_page(GFP_KERNEL);

	if (!page)
		return -ENOMEM;
	VM_WARN_ON_ONCE_PAGE(index_or_shift, page);
	__free_page(page);
	return 0;
}

static DEFINE_MUTEX(lock_a);
static DEFINE_MUTEX(lock_b);

static noinline int lockdep_inversion(void)
{
	mutex_lock(&lock_a);
	mutex_lock(&lock_b);
	mutex_unlock(&lock_b);
	mutex_unlock(&lock_a);
	mutex_lock(&lock_b);
	mutex_lock(&lock_a);
	mutex_unlock(&lock_a);
	mutex_unlock(&lock_b);
	return 0;
}

static void *leaked;

static noinline int kmemleak_leak(void)
{
	int i;

	/*
	 * The only reference is overwritten: unreferenced on the next scan.
	 * Sixteen of them: a stale copy of one pointer left in memory that
	 * kmemleak scans (a stack, a register spill) hides that one object,
	 * and did so in one run of the KASAN kernel.
	 */
	for (i = 0; i < 16; i++) {
		WRITE_ONCE(leaked, kmalloc(128, GFP_KERNEL));
		WRITE_ONCE(leaked, NULL);
	}
	return 0;
}

static struct task_struct *hung;

static int hung_fn(void *unused)
{
	while (!kthread_should_stop()) {
		set_current_state(TASK_UNINTERRUPTIBLE);
		schedule_timeout(30 * HZ);
	}
	return 0;
}

/*
 * The runner lowers hung_task_timeout_secs, waits past it, and unloads the
 * module (the thread runs the module's code): the only fault that stays
 * loaded, hence 1.
 */
static noinline int hung_task(void)
{
	hung = kthread_run(hung_fn, NULL, "ktdp_hung");
	return IS_ERR(hung) ? PTR_ERR(hung) : 1;
}

static noinline int soft_lockup(void)
{
	int i;

	/* The runner lowers watchdog_thresh: a lockup after 2 * thresh s. */
	preempt_disable();
	for (i = 0; i < 6000; i++)
		mdelay(1);
	preempt_enable();
	return 0;
}

static DECLARE_COMPLETION(gp_done);

static int gp_fn(void *unused)
{
	synchronize_rcu();
	complete(&gp_done);
	return 0;
}

static noinline int rcu_stall(void)
{
	struct task_struct *t;
	int i;

	/*
	 * A reader that does not end for 8 s while another task waits for a
	 * grace period; the runner lowers rcu_cpu_stall_timeout to 3 s.
	 */
	rcu_read_lock();
	t = kthread_run(gp_fn, NULL, "ktdp_gp");
	if (IS_ERR(t)) {
		rcu_read_unlock();
		return PTR_ERR(t);
	}
	for (i = 0; i < 8000; i++)
		mdelay(1);
	rcu_read_unlock();
	/* The thread runs this module's code: wait for it to end. */
	wait_for_completion(&gp_done);
	return 0;
}

static DEFINE_SPINLOCK(atomic_lock);
static DEFINE_MUTEX(sleeping_lock);

static noinline int atomic_sleep(void)
{
	/* mutex_lock() may sleep (might_sleep()); msleep() alone does not say. */
	spin_lock(&atomic_lock);
	mutex_lock(&sleeping_lock);
	mutex_unlock(&sleeping_lock);
	spin_unlock(&atomic_lock);
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(void);
} faults[] = {
	{ "kasan", kasan_uaf },
	{ "kfence", kfence_uaf },
	{ "ubsan_bounds", ubsan_bounds },
	{ "ubsan_shift", ubsan_shift },
	{ "debug_list", list_double_del },
	{ "debug_vm", vm_page_check },
	{ "lockdep", lockdep_inversion },
	{ "kmemleak", kmemleak_leak },
	{ "hung_task", hung_task },
	{ "soft_lockup", soft_lockup },
	{ "rcu_stall", rcu_stall },
	{ "atomic_sleep", atomic_sleep },
};

static int __init ktdp_faults_init(void)
{
	int i, ret;

	for (i = 0; i < ARRAY_SIZE(faults); i++) {
		if (strcmp(fault, faults[i].name))
			continue;
		pr_info("ktdp_faults: committing %s\n", fault);
		ret = faults[i].fn();
		pr_info("ktdp_faults: %s done (%d)\n", fault, ret);
		return ret == 1 ? 0 : -EAGAIN;
	}
	return -EINVAL;
}
module_init(ktdp_faults_init);

static void __exit ktdp_faults_exit(void)
{
	if (!IS_ERR_OR_NULL(hung))
		kthread_stop(hung);
}
module_exit(ktdp_faults_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Deliberate kernel bugs that prove the test kernel's detectors");
