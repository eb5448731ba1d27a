"""The only package that touches the file system by path.

- chase: resolve a path safely below a root fd (symlinks and '..' never escape the root;
  SAFE refuses symlinks an unprivileged user could have planted)
- ops: fd-based mkdir/open/create/chown/chmod/unlink/rename/remove-tree
- atomic: replace a file atomically and durably
- accounts: passwd and group of a target root
- statx, xattr, acl, attrs, mount: statx(2), extended attributes, POSIX ACLs, file
  attributes (chattr) and mount(2), all on file descriptors
- copy: copy_tree_at, a faithful copy between directory fds that never follows a symlink
"""
