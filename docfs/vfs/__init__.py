"""The filesystem without the kernel: inodes, names, caches, write staging and uploads."""
