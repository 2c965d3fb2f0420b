# go: Debian's Go toolchain. The build cache goes to $HOME/.cache (the work
# directory in hardened containers). No C compiler, so cgo is off.
packages="golang-go"
env="CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false"
in_all=yes
