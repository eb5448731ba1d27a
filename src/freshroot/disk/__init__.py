"""``[disk]``: the partitions of the disk a machine is installed on, made by systemd-repart."""
