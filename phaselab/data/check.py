"""Validate a directory of fastMRI volumes and load volumes, collecting every problem found."""

import logging
from collections.abc import Iterable
from pathlib import Path

from phaselab.data.errors import DataError
from phaselab.data.fastmri_io import Volume, list_volumes, read_volume

log = logging.getLogger(__name__)


def check_file(path: str | Path) -> DataError | None:
    """The problem with one volume (full validation, NaN/inf included), or None when it is fine."""
    try:
        read_volume(path)
    except DataError as err:
        return err
    return None


def check_directory(path: str | Path) -> list[DataError]:
    """Every problem in a directory of .h5 volumes: one DataError per bad file, or one for the
    directory itself when it is missing or holds no .h5 files. An empty list means all is well."""
    try:
        files = list_volumes(path)
    except DataError as err:
        return [err]
    return [err for err in map(check_file, files) if err is not None]


def load_volumes(paths: Iterable[str | Path], skip_bad: bool = False) -> list[Volume]:
    """Read volumes; a bad file raises its DataError, or is logged and skipped with ``skip_bad``."""
    volumes = []
    for path in paths:
        try:
            volumes.append(read_volume(path))
        except DataError as err:
            if not skip_bad:
                raise
            log.warning("skipping %s", err)
    return volumes
