# c: GCC and the C library headers; the agent runs `cc -o a.out *.c -lm`.
packages="gcc libc6-dev"
in_all=yes
