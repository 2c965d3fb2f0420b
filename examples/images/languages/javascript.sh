# javascript: Node.js from Debian.
packages="nodejs"
in_all=yes
