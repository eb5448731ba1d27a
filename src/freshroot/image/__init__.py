"""Portable service images: [portable.NAME] -> NAME_VERSION.raw (squashfs or erofs)."""
