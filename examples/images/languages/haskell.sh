# haskell: GHC. Large (about 800 MB installed), so not part of `all`.
packages="ghc"
in_all=no
