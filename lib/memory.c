// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Guest memory: memfd MAP_SHARED regions mapped through the device IOTLB.
 *
 * Shared file memory is what lets a new process image reach the very same
 * pages: it maps the memfd again (anywhere), and the device, which keeps
 * pages pinned (PA) or a file + offset (VA), still points at them.  Private
 * anonymous memory would be lost at exec, so it is refused up front.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "internal.h"

struct vma {
	uint64_t start, end, offset;
	char perms[5];
	unsigned int maj, min;
	uint64_t inode;
};

static bool find_vma(FILE *maps, uint64_t addr, struct vma *v)
{
	char line[512];

	rewind(maps);
	while (fgets(line, sizeof(line), maps)) {
		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %4s %" SCNx64 " %x:%x %" SCNu64,
			   &v->start, &v->end, v->perms, &v->offset, &v->maj,
			   &v->min, &v->inode) != 7)
			continue;
		if (addr >= v->start && addr < v->end)
			return true;
	}
	return false;
}

/*
 * Check that [@addr, @addr + @size) is mapped MAP_SHARED from @fd at
 * @offset, one VMA at a time, and say what it is when it is not.
 */
int vdpalu_check_shared(int fd, uint64_t offset, const void *addr,
			uint64_t size)
{
	uint64_t a = (uintptr_t)addr, end = a + size;
	struct stat st;
	struct vma v;
	FILE *maps;
	int ret = 0;

	if (!size || end < a)
		return vdpalu_fail(EINVAL, "guest memory at %p: bad size %#" PRIx64,
				   addr, size);
	if (fd >= 0 && fstat(fd, &st) < 0)
		return vdpalu_fail(errno, "guest memory fd %d: %s", fd,
				   strerror(errno));
	maps = fopen("/proc/self/maps", "re");
	if (!maps)
		return vdpalu_fail(errno, "/proc/self/maps: %s", strerror(errno));
	while (a < end) {
		if (!find_vma(maps, a, &v)) {
			ret = vdpalu_fail(EFAULT, "guest memory at %#" PRIx64
					  " is not mapped", a);
			break;
		}
		if (v.perms[3] != 's') {
			ret = vdpalu_fail(EINVAL,
				"guest memory at %#" PRIx64 " is %s: a new process image could not see it; use a memfd mapped MAP_SHARED",
				a, v.inode ? "a private file mapping" :
					     "private anonymous memory");
			break;
		}
		if (fd < 0) {
			ret = vdpalu_fail(EINVAL, "guest memory at %#" PRIx64
					  ": no fd given, a new image could not map it",
					  a);
			break;
		}
		if (v.inode != st.st_ino || v.maj != major(st.st_dev) ||
		    v.min != minor(st.st_dev) ||
		    v.offset + (a - v.start) != offset + (a - (uintptr_t)addr)) {
			ret = vdpalu_fail(EINVAL, "guest memory at %#" PRIx64
					  " is not fd %d at offset %#" PRIx64,
					  a, fd, offset + (a - (uintptr_t)addr));
			break;
		}
		a = v.end;
	}
	fclose(maps);
	return ret;
}

static int add_region(struct vdpalu_dev *dev, int fd, uint64_t offset,
		      void *addr, uint64_t size, uint64_t iova, bool owned)
{
	struct vdpalu_region *r;
	unsigned int i;

	if (dev->nr_regions == VDPALU_MAX_REGIONS)
		return vdpalu_fail(ENOSPC, "more than %d guest memory regions",
				   VDPALU_MAX_REGIONS);
	for (i = 0; i < dev->nr_regions; i++) {
		r = &dev->regions[i];
		if (iova < r->iova + r->size && r->iova < iova + size)
			return vdpalu_fail(EEXIST, "iova %#" PRIx64 "+%#" PRIx64
					   " overlaps a region", iova, size);
	}
	if (vdpalu_iotlb_batch(dev, VHOST_IOTLB_BATCH_BEGIN))
		return -1;
	if (vdpalu_iotlb(dev, VHOST_IOTLB_UPDATE, iova, size, (uintptr_t)addr,
			 VHOST_ACCESS_RW)) {
		int err = errno;

		/* Close the batch; the failed UPDATE left nothing mapped. */
		vdpalu_iotlb_batch(dev, VHOST_IOTLB_BATCH_END);
		errno = err;
		return -1;
	}
	if (vdpalu_iotlb_batch(dev, VHOST_IOTLB_BATCH_END))
		return -1;
	r = &dev->regions[dev->nr_regions++];
	r->fd = fd;
	r->offset = offset;
	r->addr = addr;
	r->size = size;
	r->iova = iova;
	r->perm = VHOST_ACCESS_RW;
	r->owned = owned;
	return 0;
}

int vdpalu_mem_add(struct vdpalu_dev *dev, int fd, uint64_t offset,
		   void *addr, uint64_t size, uint64_t iova)
{
	if (vdpalu_check_shared(fd, offset, addr, size))
		return -1;
	return add_region(dev, fd, offset, addr, size, iova, false);
}

int vdpalu_mem_alloc(struct vdpalu_dev *dev, uint64_t iova, uint64_t size,
		     struct vdpalu_region **out)
{
	void *addr;
	int fd, err;

	fd = memfd_create("vdpalu-guest", MFD_CLOEXEC);
	if (fd < 0)
		return vdpalu_fail(errno, "memfd_create: %s", strerror(errno));
	if (ftruncate(fd, size) < 0) {
		err = errno;
		close(fd);
		return vdpalu_fail(err, "memfd of %#" PRIx64 " bytes: %s", size,
				   strerror(err));
	}
	addr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (addr == MAP_FAILED) {
		err = errno;
		close(fd);
		return vdpalu_fail(err, "mmap guest memory: %s", strerror(err));
	}
	if (add_region(dev, fd, 0, addr, size, iova, true)) {
		err = errno;
		munmap(addr, size);
		close(fd);
		errno = err;
		return -1;
	}
	if (out)
		*out = &dev->regions[dev->nr_regions - 1];
	return 0;
}

void *vdpalu_iova_to_va(const struct vdpalu_dev *dev, uint64_t iova)
{
	unsigned int i;

	for (i = 0; i < dev->nr_regions; i++) {
		const struct vdpalu_region *r = &dev->regions[i];

		if (iova >= r->iova && iova - r->iova < r->size)
			return (char *)r->addr + (iova - r->iova);
	}
	return NULL;
}
