"""Removing a worker's scratch folder: files a student's code left, read as hostile."""

from __future__ import annotations

import os


def remove_tree(path: str, dir_fd: int | None = None) -> None:
    """Remove a worker's scratch folder whatever it left there (links, FIFOs, folders nested thousands deep)
    without following a link, without recursion, with two descriptors open at most, and without ever raising:
    each folder's subfolders are first moved up to the top, then it is emptied and removed. Where the worker had
    namespaces, the folder is only the empty mount point of its view. `dir_fd`: `path` is relative to it."""
    try:
        os.rmdir(path, dir_fd=dir_fd)
        return
    except FileNotFoundError:
        return
    except OSError:
        pass
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        top = os.open(path, flags, dir_fd=dir_fd)
    except OSError:
        return
    moved = 0
    kept: set[str] = set()  # folders that could not be removed (not ours): never looked at again
    try:
        while True:
            folders = [name for name in _emptied(top) if name not in kept]
            if not folders:
                break
            for name in folders:
                try:
                    inner = os.open(name, flags, dir_fd=top)
                except OSError:
                    kept.add(name)
                    continue
                try:
                    for sub in _emptied(inner):
                        moved += 1
                        os.rename(sub, f".ag-{moved}", src_dir_fd=inner, dst_dir_fd=top)
                except OSError:
                    pass
                finally:
                    os.close(inner)
                try:
                    os.rmdir(name, dir_fd=top)
                except OSError:
                    kept.add(name)
    finally:
        os.close(top)
    try:
        os.rmdir(path, dir_fd=dir_fd)
    except OSError:
        pass


def _emptied(folder: int) -> list[str]:
    """Unlink everything but folders in the open folder `folder`; return the names of its folders."""
    folders = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.name)
                    continue
                try:
                    os.unlink(entry.name, dir_fd=folder)
                except OSError:
                    pass
    except OSError:
        pass
    return folders
