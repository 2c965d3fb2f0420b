# bash: the minbase root file system already has bash.
packages=""
in_all=yes
