# cpp: G++; the agent runs `c++ -std=c++17 -o a.out *.cpp`.
packages="g++ libc6-dev"
in_all=yes
