"""What the watcher (:mod:`.watch`) reads from and writes to nbgrader's exchange, trusting only what it sees.

The exchange's inbound folder is writable by every student. A submission is taken for ``<student>`` only if
that Unix user owns its folder (or the watcher's own user does: a demo under one account); ids with
characters outside ``[A-Za-z0-9_.@-]`` (or a leading ``.``/``-``) are ignored (:func:`unusable`). Files are
copied into ``submitted/`` without following links or opening FIFOs, with size caps, and ``timestamp.txt``
is written from the time the watcher trusts (:func:`copy_submission`). A note for a submission that was not
graded is filed where ``release_feedback`` files feedback (:func:`release_page`).
"""

from __future__ import annotations

import datetime
import os
import pwd
import re
import shutil
import tempfile

from nbgrader.utils import notebook_hash

from .prepare import MAX_FILE_BYTES, read_regular

STUDENT_ID = re.compile(r"[A-Za-z0-9_@][A-Za-z0-9_.@-]{0,63}\Z")  # no glob, path or option characters
MAX_FILES, MAX_TOTAL_BYTES, MAX_SECRET_BYTES = 200, 64 * 1024 * 1024, 1024


def unusable(item, student: str) -> str | None:
    """Why an inbound entry is not taken as ``student``'s submission (None: it is)."""
    if not STUDENT_ID.match(student):
        return "the student id has characters outside A-Z a-z 0-9 _ . @ - (or starts with . or -)"
    try:
        info = item.stat(follow_symlinks=False)
    except OSError as error:
        return f"cannot be read: {error}"
    if not item.is_dir(follow_symlinks=False):
        return "not a folder"
    try:
        owner = pwd.getpwnam(student).pw_uid
    except KeyError:
        owner = None
    if info.st_uid not in (owner, os.geteuid()):
        return f"owned by uid {info.st_uid}, not by the user {student}: taken for a forgery, not graded"
    return None


def read_secret(inbound: str, name: str) -> str | None:
    """The ``submission_secret.txt`` of inbound submission ``name`` (None: none, or not readable as text)."""
    try:
        secret = read_regular(os.path.join(inbound, name, "submission_secret.txt"), MAX_SECRET_BYTES)
        return secret.decode("utf-8") or None
    except (OSError, ValueError):
        return None


def copy_submission(source: str, dest: str, assignment: str, when: float) -> list[str]:
    """Copy the inbound submission ``source`` to ``dest`` (its folder in ``submitted/``), replacing what is
    there: regular files only, no links followed, size caps, and ``timestamp.txt`` saying ``when`` (the
    gradebook's submission time, hence the late penalty); returns what was left out."""
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    tmp = tempfile.mkdtemp(dir=os.path.dirname(dest), prefix=f".{assignment}-")
    left_out, count, total = [], 0, 0
    try:
        for dirpath, dirnames, filenames, dir_fd in os.fwalk(source, follow_symlinks=False):
            relative_dir = os.path.relpath(dirpath, source)
            for sub in list(dirnames):
                if os.path.islink(os.path.join(dirpath, sub)) or count >= MAX_FILES:
                    left_out.append(os.path.join(relative_dir, sub) + " (a link, or too many files)")
                    dirnames.remove(sub)
                    continue
                os.makedirs(os.path.join(tmp, relative_dir, sub), exist_ok=True)
                count += 1
            for filename in sorted(filenames):
                relative = os.path.normpath(os.path.join(relative_dir, filename))
                if count >= MAX_FILES or total >= MAX_TOTAL_BYTES:
                    left_out.append(f"{relative} (more than {MAX_FILES} files or "
                                    f"{MAX_TOTAL_BYTES >> 20} MiB)")
                    continue
                if relative == "timestamp.txt":
                    continue  # written below, from the time the watcher trusts
                try:
                    data = read_regular(filename, MAX_FILE_BYTES, dir_fd=dir_fd)
                except (OSError, ValueError) as error:
                    left_out.append(f"{relative} ({error})")
                    continue
                with open(os.path.join(tmp, relative), "xb") as f:
                    f.write(data)
                count, total = count + 1, total + len(data)
        with open(os.path.join(tmp, "timestamp.txt"), "w", encoding="utf-8") as f:
            f.write(datetime.datetime.fromtimestamp(when, datetime.timezone.utc).strftime(
                "%Y-%m-%d %H:%M:%S.%f UTC"))
        if os.path.lexists(dest):
            shutil.rmtree(dest) if os.path.isdir(dest) and not os.path.islink(dest) else os.remove(dest)
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return left_out


def release_page(outbound: str, secret: str, notebooks, page: str) -> None:
    """Release ``page`` as the feedback of each of ``notebooks`` of the submission with ``secret``, where
    ``release_feedback`` files it (``<outbound>/<hash of secret and notebook>.html``)."""
    os.makedirs(outbound, exist_ok=True)
    os.chmod(outbound, 0o711)  # as release_feedback makes it: nobody lists it
    for notebook in notebooks:
        target = os.path.join(outbound, notebook_hash(secret=secret, notebook_id=notebook) + ".html")
        fd, tmp = tempfile.mkstemp(dir=outbound, prefix=".note-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(page)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)


__all__ = ["STUDENT_ID", "copy_submission", "read_secret", "release_page", "unusable"]
