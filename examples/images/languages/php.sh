# php: the PHP command line interpreter.
packages="php-cli"
in_all=yes
