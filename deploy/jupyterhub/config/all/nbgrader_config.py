"""nbgrader settings every user of the hub shares (instructors and students): the exchange and the course.

A student works in their home folder, which has no course configuration: without this file their
``nbgrader fetch_assignment`` looks in nbgrader's default exchange (``/usr/local/share/nbgrader/exchange``)
and never sees the instructor's release. The hub puts this folder on every server's ``JUPYTER_CONFIG_PATH``
(it could equally be copied to ``/etc/jupyter/nbgrader_config.py``).

Submissions are kept private: nbgrader's own ``submit`` leaves the submitted files readable by every user
(mode 0644) and relies on names no one can list (the inbound folder is write-only for students). Here a
submission is readable only by its author and by the instructor's group (mode 0640), which the folder's
set-group-id bit gives it; since feedback is filed under a hash of the submission's secret, a student who
cannot read another's submission cannot find that student's feedback either.
"""

import os
import secrets
import shutil
import stat

from nbgrader.exchange.default.submit import ExchangeSubmit

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

c.CourseDirectory.course_id = "rnn-course"
c.Exchange.root = os.environ.get("NBGRADER_EXCHANGE", "/srv/nbgrader/exchange")


class PrivateSubmit(ExchangeSubmit):
    """nbgrader's submit, then the submission rewritten readable only by its author and the instructor.

    Files get mode 0640 and folders 0750 (0770 for the submission itself, which the instructor may delete),
    all in the inbound folder's group (the instructor's). nbgrader's copy resets the set-group-id bit of the
    submission folder (``shutil.copytree`` copies the student's folder mode) before it writes
    ``timestamp.txt`` and ``submission_secret.txt``, and a student may not give a file to a group they are
    not in; so the files are written afresh into a new folder made directly in the set-group-id inbound
    folder, which then replaces nbgrader's copy."""

    def copy_files(self):
        super().copy_files()
        dest = os.path.join(self.inbound_path, self.assignment_filename)
        fresh = os.path.join(self.inbound_path, "." + secrets.token_hex(12))  # hidden from nbgrader's listing
        os.mkdir(fresh)
        folders = []
        for folder, _, files in os.walk(dest):
            target = os.path.normpath(os.path.join(fresh, os.path.relpath(folder, dest)))
            os.makedirs(target, exist_ok=True)
            folders.append(target)
            for name in files:
                with open(os.path.join(folder, name), "rb") as src, open(os.path.join(target, name), "wb") as out:
                    shutil.copyfileobj(src, out)
                os.chmod(os.path.join(target, name), stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP)
        for target in reversed(folders):  # last: a folder's set-group-id bit is needed while it is filled
            os.chmod(target, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP)
        shutil.rmtree(dest)
        os.rename(fresh, dest)
        os.chmod(dest, stat.S_IRWXU | stat.S_IRWXG)


c.ExchangeFactory.submit = PrivateSubmit
