"""Files a service writes are its own: folders 0700, files 0600, a umask of 077 while it runs."""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_UMASK = 0o077
FOLDER_MODE = 0o700
FILE_MODE = 0o600


def serve_privately(data_folder: Path, database: Path | None = None) -> None:
    """Before a service opens anything: every file it creates from now on is 0600 and every
    folder 0700 (umask 077), its data folder is 0700, and an SQLite database already there
    (with its -wal, -shm and lock files, which SQLite creates with the database's mode) is 0600.

    Raises:
        OSError: a folder or file cannot be changed (not ours, a read-only file system).
    """
    os.umask(PRIVATE_UMASK)
    folders = {data_folder} if database is None else {data_folder, database.parent}
    for folder in folders:
        if folder.is_dir():
            folder.chmod(FOLDER_MODE)
    if database is not None and database.parent.is_dir():
        for path in database.parent.glob(database.name + "*"):
            if path.is_file():
                path.chmod(FILE_MODE)
