"""The only package that touches the file system by path.

- chase: resolve a path safely below a root fd (symlinks and '..' never escape the root;
  SAFE refuses symlinks an unprivileged user could have planted)
- ops: fd-based mkdir/open/create/chown/chmod/unlink/rename/remove-tree
- atomic: replace a file, a symlink or any node atomically (and durably)
- walk: DirStack, the iterative walks' bounded set of directory fds; non-blocking opens
- accounts: passwd and group of a target root
- statx, xattr, acl, attrs, mount: statx(2), extended attributes, POSIX ACLs, file
  attributes (chattr) and mount(2), all on file descriptors
- copy: the one tree copy between directory fds, never following a symlink (CopyPolicy:
  faithful for migrate, systemd's for tmpfiles' C)
- durable: fsync a tree, and whether one tree is contained in another
"""
