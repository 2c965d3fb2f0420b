# perl: the full perl package (minbase only has perl-base).
packages="perl"
in_all=yes
