/* fsutil.h - small file-system helpers shared by the metadata journals. */
#ifndef KAFSCALE_FSUTIL_H
#define KAFSCALE_FSUTIL_H
/* fsync of a directory (makes a create or rename in it durable). 0 or -1. */
int fs_fsync_dir(const char *dir);
/* mkdir -p with mode 0755. 0 or -1 (errno set). */
int fs_mkdirs(const char *path);
#endif
