# lua: Lua 5.4; its postinst makes /usr/bin/lua point at lua5.4.
packages="lua5.4"
in_all=yes
