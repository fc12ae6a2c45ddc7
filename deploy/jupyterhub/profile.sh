# /etc/profile.d/rnn-course.sh: the course's Python environment first on PATH in a JupyterLab terminal.
#
# Installed by root from deploy/jupyterhub/profile.sh (README, "Teaching on a JupyterHub"). A JupyterLab
# terminal on the hub runs the user's login shell (`bash -l`), and /etc/profile sets PATH afresh, dropping
# the course environment's bin folder that the hub puts first on PATH for every user's server and kernels
# (`nbgrader: command not found`, `import course_lib` failing). The hub names that folder in RNN_COURSE_BIN
# for its servers only; a shell without the variable (ssh, the console, cron) is left as it was. The rest of
# the server's environment (JUPYTER_CONFIG_PATH, NBGRADER_EXCHANGE) reaches the terminal unchanged, and the
# user's own ~/.profile still runs after this file.
if [ -n "${RNN_COURSE_BIN-}" ] && [ -d "$RNN_COURSE_BIN" ]; then
    case "$PATH" in
        "$RNN_COURSE_BIN":*) ;;
        *) PATH="$RNN_COURSE_BIN:$PATH"; export PATH ;;
    esac
fi
