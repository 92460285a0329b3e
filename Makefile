# SPDX-License-Identifier: GPL-2.0
#
# tinyfs developer entry points (see README.md). Kbuild reads ./Kbuild, not
# this file, when the module is built out of tree with M=.

SHELL := /bin/bash
H := harness

.PHONY: all run check setup build prepare config guest patches clean distclean help

all: run

help:
	@echo 'make run        set up, build, boot a guest and show tinyfs working (the main job)'
	@echo 'make check      set up, build and run every test; ends with "N passed, N failed"'
	@echo 'make setup      install the toolchain and tools (Debian 12, as root)'
	@echo 'make build      build the kernel, tinyfs.ko (in tree and out of tree), kselftests'
	@echo 'make guest CMD="..."  boot the built kernel and run CMD in the guest'
	@echo 'make patches [OUT=dir]  export the series as git format-patch files'
	@echo 'make clean      remove build output (keeps the unpacked source)'
	@echo 'make distclean  remove the whole cache'

run: setup
	@$(H)/kernel.sh build
	@$(H)/demo.sh

check:
	@$(H)/check.sh

setup:
	@$(H)/setup.sh

build prepare config:
	@$(H)/kernel.sh $@

guest:
	@$(H)/guest.sh --timeout $${TIMEOUT:-600} -- sh -c '$(CMD)'

OUT ?= $(or $(TINYFS_CACHE),.cache)/series
patches:
	@$(H)/kernel.sh export $(OUT)

clean:
	rm -rf $(or $(TINYFS_CACHE),.cache)/{kbuild,oot,kselftest,cargo,results,guest}

distclean:
	rm -rf $(or $(TINYFS_CACHE),.cache)
