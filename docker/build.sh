#!/bin/sh
# The build step of the Dockerfile's builder stage, kept in a script so that CI runs exactly the
# same commands on machines where no container image can be built or pulled.
# Usage: docker/build.sh DESTDIR   (installs DESTDIR/tessera)
set -eu
dest="${1:?usage: docker/build.sh DESTDIR}"
cargo build --release --locked -p tessera --bin tessera
mkdir -p "$dest"
install -m 0755 target/release/tessera "$dest/tessera"
"$dest/tessera" --version
