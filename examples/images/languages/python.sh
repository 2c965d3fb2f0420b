# python: CPython 3 from Debian. python-is-python3 provides `python` too.
packages="python3 python-is-python3"
in_all=yes
