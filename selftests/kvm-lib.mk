# SPDX-License-Identifier: GPL-2.0
#
# Builds the project's selftests with the tree's KVM selftests library.
# Used as: make -C $KDIR/tools/testing/selftests/kvm -f kvm-lib.mk ...
# so that CFLAGS, LIBKVM and its objects are exactly the tree's own.
#
# KTDP_SRCS: test sources; KTDP_OUT: where the binaries go;
# KTDP_INC: extra include directories.

include Makefile

KTDP_BINS := $(patsubst %.c,$(KTDP_OUT)/%,$(notdir $(KTDP_SRCS)))
vpath %.c $(sort $(dir $(KTDP_SRCS)))

ktdp: $(KTDP_BINS)

$(KTDP_OUT)/%: %.c $(LIBKVM_OBJS) $(wildcard $(addsuffix /*.h,$(KTDP_INC)))
	@mkdir -p $(KTDP_OUT)
	$(CC) $(CFLAGS) $(addprefix -I,$(KTDP_INC)) $(LDFLAGS) $< \
		$(LIBKVM_OBJS) $(LDLIBS) -o $@

.PHONY: ktdp
