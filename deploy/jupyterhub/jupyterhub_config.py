"""JupyterHub for a class taking the course: local Unix users, one JupyterLab each, nbgrader's exchange.

Run as root, from a checkout of this repository whose ``.venv`` (``make install``) every user can read
(README, "Teaching on a JupyterHub"):

    sudo RNN_COURSE_INSTRUCTORS="teacher" RNN_COURSE_STUDENTS="ana ben" \
        .venv/bin/jupyterhub -f deploy/jupyterhub/jupyterhub_config.py

* Users log in with their Unix password (PAM, JupyterHub's default) and get a JupyterLab server that runs as
  their own Unix user (LocalProcessSpawner), from this checkout's Python environment.
* Every server reads ``deploy/jupyterhub/config/all`` (nbgrader's exchange root and the course id, so a
  student's ``nbgrader fetch_assignment`` finds the instructor's release); instructors' servers also read
  ``config/instructors`` (their course directory, the formgrader), students' ``config/students`` (no
  formgrader, no assignment creation). ``JUPYTER_CONFIG_PATH`` points there, so nothing is copied to /etc.
* A JupyterLab terminal gets the same environment as the kernels: the server's variables pass to it, but it
  runs the user's login shell, whose /etc/profile sets PATH afresh; ``profile.sh``, which root installs as
  ``/etc/profile.d/rnn-course.sh``, puts this environment's ``bin`` (named in ``RNN_COURSE_BIN``, set for
  the servers only) back in front. Without it ``nbgrader`` is "command not found" in a terminal; the hub
  warns at start when the file is missing.
* The formgrader opens in its own browser tab, at ``/user/<instructor>/formgrader``: JupyterHub forbids
  framing single-user pages (``Content-Security-Policy: frame-ancestors 'none'``), which leaves the
  formgrader panel inside JupyterLab blank (nbgrader issues #1870, #1947). We keep that protection.

Environment (all optional except the roster):

==========================  =================================================================================
``RNN_COURSE_INSTRUCTORS``  Unix users who teach (space-separated); they may use the formgrader
``RNN_COURSE_STUDENTS``     Unix users who take the course (space-separated)
``RNN_COURSE_EXCHANGE``     nbgrader's exchange root, shared by every user (default ``/srv/nbgrader/exchange``)
``RNN_HUB_STATE``           where the hub keeps its database and cookie secret (default ``/srv/jupyterhub``)
``RNN_HUB_ADMIN_TOKEN``     if set, a ``course-admin`` service with this API token may manage users,
                            servers and tokens (for scripts: starting every server before class, tests)
==========================  =================================================================================
"""

import os
import sys

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = os.path.join(HERE, "config")
ENV_BIN = os.path.dirname(sys.executable)  # the Python environment this hub runs from serves every user

instructors = os.environ.get("RNN_COURSE_INSTRUCTORS", "").split()
students = os.environ.get("RNN_COURSE_STUDENTS", "").split()
if not instructors:
    raise SystemExit("RNN_COURSE_INSTRUCTORS is empty: name at least one Unix user who teaches the course")
if set(instructors) & set(students):
    raise SystemExit(f"users listed as both instructor and student: {sorted(set(instructors) & set(students))}")
exchange = os.environ.get("RNN_COURSE_EXCHANGE", "/srv/nbgrader/exchange")
state = os.environ.get("RNN_HUB_STATE", "/srv/jupyterhub")

# --- the hub ---------------------------------------------------------------------------------------------
c.JupyterHub.bind_url = "http://127.0.0.1:8000"  # put TLS in front (nginx, or ssl_cert/ssl_key) to serve a class
c.JupyterHub.db_url = "sqlite:///" + os.path.join(state, "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = os.path.join(state, "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.pid_file = os.path.join(state, "jupyterhub-proxy.pid")

# --- who may log in: the roster, as Unix users (PAM) -----------------------------------------------------
c.Authenticator.allowed_users = set(students)
c.Authenticator.admin_users = set()  # instructors are not hub admins: they need no power over other servers
c.JupyterHub.load_groups = {
    "instructors": {"users": instructors},
    "students": {"users": students},
}
c.Authenticator.allowed_users |= set(instructors)

token = os.environ.get("RNN_HUB_ADMIN_TOKEN")
if token:
    c.JupyterHub.services = [{"name": "course-admin", "api_token": token}]
    c.JupyterHub.load_roles = [{
        "name": "course-admin",
        "services": ["course-admin"],
        "scopes": ["admin:users", "admin:servers", "tokens", "read:users", "list:users", "access:servers"],
    }]

# --- each user's server: JupyterLab as that Unix user, from this environment --------------------------------
c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
c.Spawner.http_timeout = 120  # a cold start on a busy machine imports JupyterLab, nbgrader and jupytext
c.Spawner.start_timeout = 120


def _course_environment(spawner):
    role = "instructors" if spawner.user.name in instructors else "students"
    spawner.environment.update({
        "PATH": os.pathsep.join([ENV_BIN, "/usr/local/bin", "/usr/bin", "/bin"]),  # nbgrader runs `alembic`
        "JUPYTER_CONFIG_PATH": os.pathsep.join([os.path.join(CONFIG, role), os.path.join(CONFIG, "all")]),
        "NBGRADER_EXCHANGE": exchange,  # read by config/all and by the course's own nbgrader_config.py
        "RNN_COURSE_BIN": ENV_BIN,  # for /etc/profile.d/rnn-course.sh: the same PATH in a terminal's login shell
    })


c.Spawner.pre_spawn_hook = _course_environment

PROFILE = "/etc/profile.d/rnn-course.sh"
if not os.path.isfile(PROFILE):
    print(f"[rnn-course] {PROFILE} is missing: `nbgrader` will not be found in the users' JupyterLab terminals"
          f" (install -m 0644 {os.path.join(HERE, 'profile.sh')} {PROFILE})", file=sys.stderr)
