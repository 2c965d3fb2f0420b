# rust: rustc with the GCC linker.
packages="rustc"
in_all=yes
