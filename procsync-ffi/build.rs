//! Gives the shared library the name it is installed under (`libprocsync.so`), so that
//! programs linked against it record that name (see `install.sh`, docs/PORTING.md).

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libprocsync.so");
    println!("cargo:rerun-if-changed=build.rs");
}
