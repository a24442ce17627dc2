//! The `converge` binary: everything happens in `converge::cli::run`.

fn main() {
    std::process::exit(converge::cli::run(std::env::args_os()));
}
