//! The systemd generator; see `nix_ssd_generator::generator`.
fn main() {
    let args: Vec<String> = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
    std::process::exit(nix_ssd_generator::generator::main(&args));
}
