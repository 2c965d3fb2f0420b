# ruby: Ruby from Debian.
packages="ruby"
in_all=yes
