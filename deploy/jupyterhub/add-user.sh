#!/bin/sh
# Create a Unix user for the class, with a private home folder (0700), and set the password read from stdin.
#   usage: sudo deploy/jupyterhub/add-user.sh NAME < password-file
# Debian's useradd creates homes that every user can read (0755) unless HOME_MODE is set: a student's home
# holds their nbgrader cache (their submissions), so it must not be readable by the others.
set -eu
name="$1"
useradd --create-home --shell /bin/bash --user-group -K HOME_MODE=0700 "$name"
chmod 0700 "/home/$name"
IFS= read -r password
printf '%s:%s\n' "$name" "$password" | chpasswd
